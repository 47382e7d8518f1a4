// Float matrices to HDF5 through the C API, each return code checked.
#include "io/hdf5/matrix_file.h"

#include <cstdio>
#include <stdexcept>

#include "io/hdf5/h5_util.h"

namespace distvae {

void write_float_matrices(const std::string& path, const std::vector<FloatMatrix>& arrays,
                          const std::vector<int32_t>* labels) {
  H5QuietErrors quiet;
  const std::string tmp = path + ".tmp";
  {
    H5Handle file(H5_CHECK(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp));
    for (const FloatMatrix& a : arrays) {
      const std::string where = tmp + ": " + a.name;
      const hsize_t dims[2] = {hsize_t(a.rows), hsize_t(a.cols)};
      H5Handle space(H5_CHECK(H5Screate_simple(2, dims, nullptr), where));
      H5Handle ds(H5_CHECK(H5Dcreate2(file.get(), a.name.c_str(), H5T_IEEE_F32LE, space.get(),
                                      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                           where));
      if (a.rows * a.cols > 0)
        H5_CHECK(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data),
                 where);
    }
    if (labels) {
      const std::string where = tmp + ": labels";
      const hsize_t n = labels->size();
      H5Handle space(H5_CHECK(H5Screate_simple(1, &n, nullptr), where));
      H5Handle ds(H5_CHECK(H5Dcreate2(file.get(), "labels", H5T_STD_I32LE, space.get(), H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT),
                           where));
      if (n)
        H5_CHECK(
            H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels->data()),
            where);
    }
    file.close(tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(tmp + ": cannot rename to " + path);
}

}  // namespace distvae
