// YAML -> LayerSpec: every key is checked, so a typo in a layer is an error, not a silent default.
#include "launch/config/layer_spec_yaml.h"

#include <algorithm>
#include <set>

#include "launch/config/config_error.h"

namespace distvae {

namespace {

const std::set<std::string> kLayerKeys = {
    "type",  "out",   "in",   "kernel",   "stride", "padding", "output_padding",
    "alpha", "shape", "bias", "momentum", "eps",    "mask"};

template <class V>
V get(const YAML::Node& n, const char* key, const std::string& where, V fallback) {
  const YAML::Node v = n[key];
  if (!v) return fallback;
  try {
    return v.as<V>();
  } catch (const YAML::Exception&) {
    throw ConfigError(where + "." + key + ": cannot read '" + YAML::Dump(v) + "' as " +
                      (std::is_same_v<V, std::string> ? "a string"
                       : std::is_same_v<V, bool>      ? "a boolean"
                       : std::is_integral_v<V>        ? "an integer"
                       : std::is_floating_point_v<V>  ? "a number"
                                                      : "a list of integers"));
  }
}

// A layer type is a plain name (linear, conv2d, leaky_relu): anything else, such as text with a
// control character, is rejected here rather than carried into a dumped config.
std::string layer_type(const std::string& type, const std::string& at) {
  const bool plain = !type.empty() && std::all_of(type.begin(), type.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!plain)
    throw ConfigError(at +
                      ".type: not a layer type name (letters, digits and _ only), such as "
                      "linear or conv2d");
  return type;
}

}  // namespace

std::vector<LayerSpec> parse_layer_list(const YAML::Node& node, const std::string& where) {
  if (!node) throw ConfigError(where + ": missing (a list of layers)");
  if (!node.IsSequence())
    throw ConfigError(where + ": expected a list of layers such as [{type: linear, out: 512}]");
  std::vector<LayerSpec> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const YAML::Node n = node[i];
    LayerSpec s;
    if (n.IsScalar()) {  // "- relu" is shorthand for {type: relu}
      s.type = layer_type(n.as<std::string>(), at);
      out.push_back(s);
      continue;
    }
    if (!n.IsMap()) throw ConfigError(at + ": expected a map such as {type: linear, out: 512}");
    for (const auto& kv : n) {
      if (!kv.first.IsScalar())
        throw ConfigError(at + ": a layer key is a " +
                          (kv.first.IsMap()        ? "map"
                           : kv.first.IsSequence() ? "list"
                                                   : "null") +
                          ", expected a plain name such as type or out");
      const std::string key = kv.first.as<std::string>();
      if (!kLayerKeys.count(key))
        throw ConfigError(at + ": unknown layer key '" + key +
                          "' (expected type, out, in, kernel, stride, padding, output_padding, "
                          "alpha, shape, bias, momentum, eps, mask)");
    }
    if (!n["type"]) throw ConfigError(at + ": missing 'type'");
    s.type = layer_type(get<std::string>(n, "type", at, ""), at);
    s.out = get<int64_t>(n, "out", at, 0);
    s.in = get<int64_t>(n, "in", at, 0);
    s.kernel = get<int>(n, "kernel", at, 0);
    s.stride = get<int>(n, "stride", at, 1);
    s.padding = get<int>(n, "padding", at, 0);
    s.output_padding = get<int>(n, "output_padding", at, 0);
    s.alpha = get<float>(n, "alpha", at, s.alpha);
    s.shape = get<std::vector<int64_t>>(n, "shape", at, {});
    s.bias = get<bool>(n, "bias", at, true);
    s.momentum = get<double>(n, "momentum", at, s.momentum);
    s.eps = get<double>(n, "eps", at, s.eps);
    s.mask = get<std::string>(n, "mask", at, "");
    out.push_back(s);
  }
  return out;
}

}  // namespace distvae
