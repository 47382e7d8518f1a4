// A file of named float matrices: h5_tables' datasets in a file written atomically.
#include "io/hdf5/matrix_file.h"

#include <cstdio>
#include <stdexcept>

#include "io/file/atomic_file.h"
#include "io/hdf5/h5_tables.h"
#include "io/hdf5/h5_util.h"

namespace distvae {

void write_float_matrices(const std::string& path, const std::vector<FloatMatrix>& arrays,
                          const std::vector<int32_t>* labels) {
  H5QuietErrors quiet;
  const std::string tmp = temporary_path(path);
  try {
    H5Handle file(H5_CHECK(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp));
    for (const FloatMatrix& a : arrays)
      h5_write_table(file.get(), a.name, a.data, a.rows, a.cols, tmp);
    if (labels) h5_write_column(file.get(), "labels", labels->data(), int64_t(labels->size()), tmp);
    file.close(tmp);
  } catch (...) {
    std::remove(tmp.c_str());  // nothing half-written is left beside the file
    throw;
  }
  move_into_place(tmp, path);
}

}  // namespace distvae
