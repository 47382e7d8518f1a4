// Listing a folder tree of image files (PNG, JPEG) in a fixed order, with optional class labels
// from the names of the first-level sub-folders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

struct ImageFile {
  std::string path;      // as found under the root (root + "/" + rel)
  std::string rel;       // relative to the root, '/'-separated
  int64_t bytes = 0;     // file size
  int64_t mtime_ns = 0;  // last modification, nanoseconds since the epoch
  int32_t label = -1;    // index into ImageFolder::class_names, or -1 without labels
};

struct ImageFolder {
  std::string root;
  std::vector<ImageFile> files;          // sorted bytewise by path
  std::vector<std::string> class_names;  // sorted; empty without labels
};

// True for names ending in .png, .jpg, .jpeg or .jpe (any case).
bool is_image_name(const std::string& name);

// Every image file under `dir`, recursively (symbolic links to files are followed, to
// directories not), sorted bytewise by path so the order (and so the shards, the validation split
// and the labels) is the same on every machine. With labels_from_folders, each file's label is
// the index of its first-level sub-folder among all of them, sorted; a file directly in `dir` is
// then an error naming it. Throws std::runtime_error naming the folder if it is missing or
// unreadable; an empty result is not an error here.
ImageFolder list_image_folder(const std::string& dir, bool labels_from_folders);

}  // namespace distvae
