// Config -> VaeSpec, and VAE parameters/optimizer state <-> checkpoint arrays.
#include "launch/vae_setup.h"

#include <stdexcept>

namespace distvae {

VaeSpec vae_spec_from(const Config& c, const ImageGeom& g) {
  VaeSpec s;
  s.image = Shape{g.channels, g.height, g.width};
  s.latent = c.model.latent;
  s.encoder = c.model.encoder;
  s.decoder = c.model.decoder;
  s.likelihood = c.model.likelihood == "bernoulli" ? Likelihood::bernoulli : Likelihood::gaussian;
  s.learned_variance = c.model.gaussian_variance == "learned";
  s.fixed_logvar = c.model.gaussian_logvar;
  s.logvar_floor = c.model.logvar_floor;
  s.estimator = c.objective.estimator == "A" ? Estimator::A : Estimator::B;
  s.samples = c.objective.samples;
  return s;
}

std::string param_layout(const ParamStore<float>& ps) {
  std::string s;
  for (const ParamSlice& p : ps.slices()) s += p.name + " " + p.shape.str() + "\n";
  return s;
}

namespace {

std::vector<float> to_vector(Backend<float>& be, const float* p, size_t n) {
  std::vector<float> v(n);
  be.to_host(p, v.data(), n);
  return v;
}

void put(Backend<float>& be, const Checkpoint& ck, const std::string& path, const std::string& name,
         float* dst, size_t n) {
  auto it = ck.arrays.find(name);
  if (it == ck.arrays.end()) throw std::runtime_error(path + ": missing array '" + name + "'");
  if (it->second.size() != n)
    throw std::runtime_error(path + ": array '" + name + "' has " +
                             std::to_string(it->second.size()) + " values, expected " +
                             std::to_string(n));
  be.to_device(it->second.data(), dst, n);
}

}  // namespace

void save_vae(Checkpoint& ck, Vae<float>& vae, const VaeOptimizers* opt) {
  for (Network<float>* net : {&vae.encoder(), &vae.decoder()}) {
    ParamStore<float>& ps = net->params();
    Backend<float>& be = vae.backend();
    ck.arrays[net->name() + ".values"] = to_vector(be, ps.values(), ps.size());
    ck.strings[net->name() + ".layout"] = param_layout(ps);
    if (!opt) continue;
    const auto& st = (net == &vae.encoder() ? opt->encoder : opt->decoder)->state();
    if (st.m) ck.arrays[net->name() + ".opt_m"] = to_vector(be, st.m, st.n);
    if (st.v) ck.arrays[net->name() + ".opt_v"] = to_vector(be, st.v, st.n);
    ck.ints[net->name() + ".opt_step"] = st.step;
  }
}

void load_vae(const Checkpoint& ck, const std::string& path, Vae<float>& vae, VaeOptimizers* opt) {
  for (Network<float>* net : {&vae.encoder(), &vae.decoder()}) {
    ParamStore<float>& ps = net->params();
    Backend<float>& be = vae.backend();
    auto it = ck.strings.find(net->name() + ".layout");
    if (it == ck.strings.end())
      throw std::runtime_error(path + ": not a distvae VAE checkpoint (no " + net->name() +
                               " layout)");
    const std::string mine = param_layout(ps);
    if (it->second != mine)
      throw std::runtime_error(path + ": written by another architecture: its " + net->name() +
                               " has parameters\n" + it->second + "but this config's has\n" + mine);
    put(be, ck, path, net->name() + ".values", ps.values(), ps.size());
    if (!opt) continue;
    auto& st = (net == &vae.encoder() ? opt->encoder : opt->decoder)->state();
    if (st.m) put(be, ck, path, net->name() + ".opt_m", st.m, st.n);
    if (st.v) put(be, ck, path, net->name() + ".opt_v", st.v, st.n);
    st.step = ck.ints.at(net->name() + ".opt_step");
  }
}

LoadedVae load_vae_checkpoint(const std::string& path, int max_batch,
                              const std::function<void(VaeSpec&)>& adjust) {
  const Checkpoint ck = read_checkpoint(path);
  auto text = ck.strings.find("config");
  if (text == ck.strings.end()) throw std::runtime_error(path + ": checkpoint has no config");
  LoadedVae m;
  m.config = parse_config(text->second, path + " (stored config)");
  for (const char* k : {"image.height", "image.width", "image.channels"})
    if (!ck.ints.count(k)) throw std::runtime_error(path + ": checkpoint has no " + k);
  m.geom = ImageGeom{ck.ints.at("image.height"), ck.ints.at("image.width"),
                     ck.ints.at("image.channels")};
  VaeSpec spec = vae_spec_from(m.config, m.geom);
  if (adjust) adjust(spec);
  m.backend = make_backend(m.config.train.backend);
  m.vae = std::make_unique<Vae<float>>(*m.backend, spec,
                                       max_batch > 0 ? max_batch : m.config.eval.iw_batch);
  load_vae(ck, path, *m.vae, nullptr);
  return m;
}

void require_same_images(const ImageGeom& data, const std::string& data_name,
                         const LoadedVae& model, const std::string& checkpoint) {
  auto text = [](const ImageGeom& g) {
    return std::to_string(g.height) + "x" + std::to_string(g.width) + "x" +
           std::to_string(g.channels);
  };
  if (data.height != model.geom.height || data.width != model.geom.width ||
      data.channels != model.geom.channels)
    throw std::runtime_error(data_name + ": images are " + text(data) + " but " + checkpoint +
                             " was trained on " + text(model.geom));
}

}  // namespace distvae
