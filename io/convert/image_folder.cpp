// Listing a folder tree of image files in a fixed order, with labels from sub-folder names.
#include "io/convert/image_folder.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace distvae {
namespace {

namespace fs = std::filesystem;

}  // namespace

bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".jpe";
}

ImageFolder list_image_folder(const std::string& dir, bool labels_from_folders) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(dir + ": no such directory (expected a folder of PNG / JPEG images)");
  ImageFolder out;
  out.root = dir;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) throw std::runtime_error(dir + ": cannot list directory: " + ec.message());
  for (auto end = fs::recursive_directory_iterator(); it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(dir + ": cannot list directory: " + ec.message());
    const fs::directory_entry& e = *it;
    if (!e.is_regular_file(ec) || !is_image_name(e.path().filename().string())) continue;
    ImageFile f;
    f.path = e.path().string();
    f.rel = e.path().lexically_relative(dir).generic_string();
    f.bytes = static_cast<int64_t>(e.file_size(ec));
    if (ec) f.bytes = -1;
    const auto t = e.last_write_time(ec);
    f.mtime_ns =
        ec ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    out.files.push_back(std::move(f));
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const ImageFile& a, const ImageFile& b) { return a.path < b.path; });
  if (!labels_from_folders) return out;

  for (const ImageFile& f : out.files) {
    const size_t slash = f.rel.find('/');
    if (slash == std::string::npos)
      throw std::runtime_error(f.path + " is directly in " + dir +
                               "; with labels from folders every image must sit in a sub-folder "
                               "named after its class (" +
                               dir + "/<class>/...)");
    out.class_names.push_back(f.rel.substr(0, slash));
  }
  std::sort(out.class_names.begin(), out.class_names.end());
  out.class_names.erase(std::unique(out.class_names.begin(), out.class_names.end()),
                        out.class_names.end());
  for (ImageFile& f : out.files) {
    const std::string cls = f.rel.substr(0, f.rel.find('/'));
    f.label =
        static_cast<int32_t>(std::lower_bound(out.class_names.begin(), out.class_names.end(), cls) -
                             out.class_names.begin());
  }
  return out;
}

}  // namespace distvae
