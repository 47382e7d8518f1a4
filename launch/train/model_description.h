// The "model" attribute of a checkpoint (docs/checkpoint.md): the model family, its likelihood and
// prior, and every network as its resolved layer list (kinds, shapes, fused activations, where each
// parameter lies in the network's flat values array), in JSON, so that a reader outside distvae
// (python/distvae_reader.py) rebuilds the forward passes without parsing the YAML config or
// repeating distvae's shape inference.
#pragma once

#include <string>

#include "io/data/image_batch.h"
#include "launch/config/config.h"
#include "launch/train/model_setup.h"

namespace distvae {

// The JSON text of the model's description, for ck.strings["model"].
std::string model_description(Model& m, const Config& c, const ImageGeom& g);

}  // namespace distvae
