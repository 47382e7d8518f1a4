// make_backend: the one place a backend name from the config becomes a backend object.
#include <memory>
#include <stdexcept>
#include <string>

#include "core/backend.h"
#include "core/backend_dnnl.h"
#include "core/backend_reference.h"

namespace distvae {

std::unique_ptr<Backend<float>> make_backend(const std::string& name) {
  if (name == "dnnl") return std::make_unique<DnnlBackend>();
  if (name == "reference") return std::make_unique<ReferenceBackend<float>>();
  throw std::runtime_error("unknown backend '" + name + "' (expected dnnl or reference)");
}

}  // namespace distvae
