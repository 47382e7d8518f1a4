// Describing a model's networks layer by layer in JSON (docs/checkpoint.md, "The model attribute").
#include "launch/train/model_description.h"

#include "io/output/json_io.h"

namespace distvae {

namespace {

Json shape_json(const Shape& s) {
  Json a = Json::array();
  for (int i = 0; i < s.rank; ++i) a.push_back(s[i]);
  return a;
}

// Where one parameter tensor lies in its network's values array: "<net>.values"[offset, offset +
// size) holds it row-major in the given shape.
Json slice_json(const ParamSlice& p) {
  return {{"name", p.name}, {"offset", p.offset}, {"shape", shape_json(p.shape)}};
}

const char* kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::linear:
      return "linear";
    case LayerKind::conv2d:
      return "conv2d";
    case LayerKind::deconv2d:
      return "deconv2d";
    case LayerKind::batchnorm:
      return "batchnorm";
    case LayerKind::activation:
      return "activation";
    case LayerKind::view:
      return "view";
    case LayerKind::with_image:
      return "autoregressive";  // out = [image | in] along channels
  }
  return "?";
}

Json layer_json(const Layer& l, const ParamStore<float>& ps) {
  Json j = {{"name", l.name},
            {"kind", kind_name(l.kind)},
            {"in", shape_json(l.in)},
            {"out", shape_json(l.out)},
            {"activation", act_name(l.act.kind)}};
  if (l.act.kind == Act::leaky_relu || l.act.kind == Act::elu) j["alpha"] = l.act.alpha;
  const auto& s = ps.slices();
  if (l.kind == LayerKind::conv2d || l.kind == LayerKind::deconv2d)
    j["kernel"] = l.geom.K, j["stride"] = l.geom.stride, j["padding"] = l.geom.pad;
  if (l.mask != ConvMask::none) {  // w * mask is used; channels from mask_channels on are unmasked
    j["mask"] = l.mask == ConvMask::A ? "A" : "B";
    j["mask_channels"] = l.mask_channels > 0 ? l.mask_channels : l.geom.Cin;
  }
  if (l.kind == LayerKind::linear || l.kind == LayerKind::conv2d || l.kind == LayerKind::deconv2d ||
      l.kind == LayerKind::batchnorm) {
    j["weight"] = slice_json(s[l.weight]);
    j["bias"] = l.has_bias ? slice_json(s[l.bias]) : Json(nullptr);
  }
  if (l.kind == LayerKind::batchnorm) {
    j["running_mean"] = slice_json(s[l.running_mean]);
    j["running_var"] = slice_json(s[l.running_var]);
    j["eps"] = l.eps, j["momentum"] = l.momentum;
  }
  return j;
}

Json network_json(const Network<float>& n) {
  Json layers = Json::array();
  for (const Layer& l : n.layers()) layers.push_back(layer_json(l, n.params()));
  return {{"values", n.name() + ".values"},
          {"input", shape_json(n.input_shape())},
          {"output", shape_json(n.output_shape())},
          {"layers", layers}};
}

const char* prior_name(const Model& m) {
  if (!m.vae) return "standard";
  switch (m.vae->prior_kind()) {
    case PriorKind::standard:
      return "standard";
    case PriorKind::implicit:
      return "implicit";
    case PriorKind::adversarial:
      return "adversarial";
  }
  return "?";
}

}  // namespace

std::string model_description(Model& m, const Config& c, const ImageGeom& g) {
  const ModelConfig& mc = c.model;
  Json nets = Json::object();
  for (Network<float>* n : checkpointed(m)) nets[n->name()] = network_json(*n);
  Json j = {{"family", mc.family},
            {"latent", mc.latent},
            {"image", {{"channels", g.channels}, {"height", g.height}, {"width", g.width}}}};
  if (m.vae) {
    j["likelihood"] = {{"kind", mc.likelihood},
                       {"variance", mc.gaussian_variance},
                       {"fixed_logvar", mc.gaussian_logvar},
                       {"logvar_floor", mc.logvar_floor}};
    j["estimator"] = c.objective.estimator;
    j["samples"] = c.objective.samples;
    j["prior"] = prior_name(m);
    if (m.latent_disc) j["discriminator_cap"] = m.latent_disc->cap();
  }
  // What distvae eval uses: test images binarized with binarize_seed (when data.binarize is
  // dynamic), reparameterization noise under binarize_seed + 1, image i keyed by its index.
  j["evaluation"] = {{"binarize", c.data.binarize == "dynamic"},
                     {"binarize_seed", c.eval.binarize_seed},
                     {"noise_seed", c.eval.binarize_seed + 1}};
  j["networks"] = nets;
  return j.dump(1);
}

}  // namespace distvae
