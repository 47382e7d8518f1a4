// Activation kinds shared by layers and backends; every derivative is computable from the output.
#pragma once

#include <string>

namespace distvae {

enum class Act { none, relu, leaky_relu, elu, softplus, tanh, sigmoid };

struct ActSpec {
  Act kind = Act::none;
  float alpha = 0.0f;  // leaky_relu: negative slope; elu: alpha
};

inline const char* act_name(Act a) {
  switch (a) {
    case Act::none:
      return "none";
    case Act::relu:
      return "relu";
    case Act::leaky_relu:
      return "leaky_relu";
    case Act::elu:
      return "elu";
    case Act::softplus:
      return "softplus";
    case Act::tanh:
      return "tanh";
    case Act::sigmoid:
      return "sigmoid";
  }
  return "?";
}

// Parses a layer type name into an activation; returns false when it is not one.
inline bool parse_act(const std::string& s, Act* out) {
  for (Act a : {Act::relu, Act::leaky_relu, Act::elu, Act::softplus, Act::tanh, Act::sigmoid})
    if (s == act_name(a)) {
      *out = a;
      return true;
    }
  return false;
}

}  // namespace distvae
