// The error type for anything wrong in a config file, a --set override or a command-line flag.
#pragma once

#include <stdexcept>
#include <string>

namespace distvae {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace distvae
