// A conversion's completion marker for one split of a dataset: <dir>/<prefix>-<split>.done next to
// the split's shards <prefix>-<split>-NNNNN.h5, written (atomically) by the converter once every
// shard of the split is in place, and removed when a conversion of that split starts. It lists
// each shard's file name and `convert_key` attribute, a line each ("name<TAB>key"). A shard that
// carries a convert_key its split's marker does not list belongs to a conversion that did not
// finish (killed, or still running): io/data/dataset.h refuses it. Shards written without a
// convert_key (by other tools, or before markers existed) are not checked.
#pragma once

#include <map>
#include <string>

namespace distvae {

// The marker of the split a shard path belongs to; empty when the file name is not of the form
// <prefix>-<split>-NNNNN.h5.
std::string completion_marker_path(const std::string& shard_path);

// Writes the marker (a temporary file, then renamed) listing file name -> convert_key.
void write_completion_marker(const std::string& marker,
                             const std::map<std::string, std::string>& keys);

// The listed file name -> convert_key pairs; empty when there is no marker.
std::map<std::string, std::string> read_completion_marker(const std::string& marker);

// Removes the marker if present; throws when it exists and cannot be removed.
void remove_completion_marker(const std::string& marker);

}  // namespace distvae
