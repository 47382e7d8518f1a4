// Preloading shards into memory through the chunked HDF5 reader.
#include "io/data/image_set.h"

#include <stdexcept>

#include "io/data/dataset.h"

namespace distvae {

ImageSet load_image_set(const std::string& pattern, int64_t max_images, const std::string& key) {
  if (pattern.empty()) throw std::runtime_error(key + ": no data files given");
  Hdf5Dataset ds = [&] {
    try {
      return Hdf5Dataset::open_glob(pattern);
    } catch (const std::exception& e) {
      throw std::runtime_error(key + ": " + e.what());
    }
  }();
  const DatasetInfo& info = ds.info();
  ImageSet s;
  s.geom = ImageGeom{info.height, info.width, info.channels};
  s.count = max_images > 0 ? std::min(max_images, info.count) : info.count;
  for (const auto& f : info.files) s.files.push_back(f.path);
  s.pixels.resize(size_t(s.count * info.image_bytes()));
  ds.read_images(0, s.count, s.pixels.data());
  if (info.has_labels) {
    s.labels.resize(size_t(s.count));
    ds.read_labels(0, s.count, s.labels.data());
  }
  return s;
}

}  // namespace distvae
