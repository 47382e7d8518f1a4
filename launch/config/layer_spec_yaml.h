// Parsing a network's layer list from YAML into core LayerSpecs, with errors naming the layer.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "core/layers.h"

namespace distvae {

// node: a YAML sequence of maps such as {type: linear, out: 512}. where: the key path for
// messages ("model.encoder"). Throws ConfigError naming "<where>[i]" and the problem.
std::vector<LayerSpec> parse_layer_list(const YAML::Node& node, const std::string& where);

}  // namespace distvae
