// Config -> model networks, and network parameters/optimizer state <-> checkpoint arrays.
#include "launch/train/model_setup.h"

#include <stdexcept>

#include "core/backends/reference.h"
#include "io/data/dataset.h"

namespace distvae {

VaeSpec vae_spec_from(const Config& c, const ImageGeom& g) {
  VaeSpec s;
  s.image = Shape{g.channels, g.height, g.width};
  s.latent = c.model.latent;
  s.encoder = c.model.encoder;
  s.decoder = c.model.decoder;
  s.likelihood.kind =
      c.model.likelihood == "bernoulli" ? Likelihood::bernoulli : Likelihood::gaussian;
  s.likelihood.learned_variance = c.model.gaussian_variance == "learned";
  s.likelihood.fixed_logvar = c.model.gaussian_logvar;
  s.likelihood.logvar_floor = c.model.logvar_floor;
  s.estimator = c.objective.estimator == "A" ? Estimator::A : Estimator::B;
  s.samples = c.objective.samples;
  return s;
}

GanSpec gan_spec_from(const Config& c, const ImageGeom& g) {
  GanSpec s;
  s.image = Shape{g.channels, g.height, g.width};
  s.latent = c.model.latent;
  s.generator = c.model.generator;
  s.discriminator = c.model.discriminator;
  s.proximal = c.objective.proximal;
  s.instance_noise = c.objective.instance_noise;
  return s;
}

std::string param_layout(const ParamStore<float>& ps) {
  std::string s;
  for (const ParamSlice& p : ps.slices()) s += p.name + " " + p.shape.str() + "\n";
  return s;
}

std::vector<Network<float>*> Model::trained() {
  std::vector<Network<float>*> n;
  if (vae) n = {&vae->encoder(), &vae->decoder()};
  if (gan) n = {&gan->generator()};
  if (Discriminator<float>* d = discriminator()) n.push_back(&d->net());
  return n;
}

void Model::set_training(bool on) {
  for (Network<float>* n : checkpointed(*this)) n->set_training(on);
}

Discriminator<float>* Model::discriminator() {
  if (gan) return &gan->discriminator();
  return latent_disc.get();
}

void Model::init(uint64_t seed) {
  if (vae) vae->init(seed);
  if (latent_disc) latent_disc->net().init(seed);
  if (gan) gan->init(seed);
}

std::string check_model_against_data(const Config& c) {
  std::vector<std::string> files;
  try {
    files = expand_glob(c.data.train);
  } catch (const std::exception& e) {
    return std::string("the networks' shapes were not checked against the data (data.train: ") +
           e.what() + ")";
  }
  const DatasetInfo info = Hdf5Dataset(files).info();
  const ImageGeom g{info.height, info.width, info.channels};
  ReferenceBackend<float> be;
  build_model(c, g, be, 1);  // throws, naming the network, when a shape cannot fit
  return "the networks fit data.train's " + std::to_string(g.height) + "x" +
         std::to_string(g.width) + "x" + std::to_string(g.channels) + " images (" +
         std::to_string(files.size()) + " file(s))";
}

Model build_model(const Config& c, const ImageGeom& g, Backend<float>& be, int max_batch) {
  Model m;
  if (!is_vae_family(c.model)) {
    m.gan = std::make_unique<Gan<float>>(be, gan_spec_from(c, g), max_batch);
    return m;
  }
  m.vae = std::make_unique<Vae<float>>(be, vae_spec_from(c, g), max_batch);
  if (!has_discriminator(c.model)) return m;
  m.latent_disc = std::make_unique<Discriminator<float>>(be, "discriminator", Shape{c.model.latent},
                                                         c.model.discriminator, max_batch);
  Discriminator<float>* t = m.latent_disc.get();
  if (c.model.family == "implicit_prior_vae") {
    t->set_cap(c.model.discriminator_cap);
    // cost = -T(z): KL(q(z|x)||q(z)) = KL(q(z|x)||p(z)) - E_q T(z).
    m.vae->set_prior(PriorKind::implicit,
                     [t](const float* z, int B, float scale, float* dz, double* cost) {
                       t->output_and_input_grad(z, B, DiscOutput::logit, -scale, dz, cost);
                       for (int b = 0; b < B; ++b) cost[b] = -cost[b];
                     });
  } else {
    // cost = softplus(T(z)): the encoder pushes its codes toward the N(0, I) label.
    m.vae->set_prior(PriorKind::adversarial,
                     [t](const float* z, int B, float scale, float* dz, double* cost) {
                       t->output_and_input_grad(z, B, DiscOutput::softplus, scale, dz, cost);
                     });
  }
  return m;
}

std::vector<Network<float>*> checkpointed(Model& m) {
  std::vector<Network<float>*> n = m.trained();
  if (m.gan) n.push_back(&m.gan->snapshot());
  return n;
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

void save_networks(Checkpoint& ck, Backend<float>& be, const std::vector<NetState>& nets) {
  for (const NetState& s : nets) {
    ParamStore<float>& ps = s.net->params();
    const std::string& name = s.net->name();
    ck.arrays[name + ".values"] = to_vector(be, ps.values(), ps.values_size());
    ck.strings[name + ".layout"] = param_layout(ps);
    if (!s.opt) continue;
    const auto& st = s.opt->state();
    if (st.m) ck.arrays[name + ".opt_m"] = to_vector(be, st.m, st.n);
    if (st.v) ck.arrays[name + ".opt_v"] = to_vector(be, st.v, st.n);
    ck.ints[name + ".opt_step"] = st.step;
  }
}

void load_networks(const Checkpoint& ck, const std::string& path, Backend<float>& be,
                   const std::vector<NetState>& nets) {
  for (const NetState& s : nets) {
    ParamStore<float>& ps = s.net->params();
    const std::string& name = s.net->name();
    auto it = ck.strings.find(name + ".layout");
    if (it == ck.strings.end())
      throw std::runtime_error(path + ": has no " + name +
                               " (not a distvae checkpoint, or one of another model family)");
    const std::string mine = param_layout(ps);
    if (it->second != mine)
      throw std::runtime_error(path + ": written by another architecture: its " + name +
                               " has parameters\n" + it->second + "but this config's has\n" + mine);
    put(be, ck, path, name + ".values", ps.values(), ps.values_size());
    if (!s.opt) continue;
    auto& st = s.opt->state();
    if (st.m) put(be, ck, path, name + ".opt_m", st.m, st.n);
    if (st.v) put(be, ck, path, name + ".opt_v", st.v, st.n);
    st.step = ck.ints.at(name + ".opt_step");
  }
}

LoadedModel load_model_checkpoint(const std::string& path, int max_batch,
                                  const std::function<void(VaeSpec&)>& adjust) {
  const Checkpoint ck = read_checkpoint(path);
  auto text = ck.strings.find("config");
  if (text == ck.strings.end()) throw std::runtime_error(path + ": checkpoint has no config");
  LoadedModel m;
  m.config = parse_config(text->second, path + " (stored config)");
  for (const char* k : {"image.height", "image.width", "image.channels"})
    if (!ck.ints.count(k)) throw std::runtime_error(path + ": checkpoint has no " + k);
  m.geom = ImageGeom{ck.ints.at("image.height"), ck.ints.at("image.width"),
                     ck.ints.at("image.channels")};
  m.backend = make_backend(m.config.train.backend);
  const int batch = max_batch > 0 ? max_batch : m.config.eval.iw_batch;
  if (adjust && is_vae_family(m.config.model)) {
    // Rebuild with the adjusted spec; the discriminator and prior come from build_model.
    Config c = m.config;
    VaeSpec spec = vae_spec_from(c, m.geom);
    adjust(spec);
    c.objective.estimator = spec.estimator == Estimator::A ? "A" : "B";
    c.objective.samples = spec.samples;
    m.model = build_model(c, m.geom, *m.backend, batch);
  } else {
    m.model = build_model(m.config, m.geom, *m.backend, batch);
  }
  std::vector<NetState> nets;
  for (Network<float>* n : checkpointed(m.model)) nets.push_back({n});
  load_networks(ck, path, *m.backend, nets);
  return m;
}

Vae<float>& require_vae(const LoadedModel& m, const std::string& checkpoint,
                        const std::string& command) {
  if (!m.model.vae)
    throw std::runtime_error(command + " needs a VAE, but " + checkpoint + " holds a " +
                             m.config.model.family + " (no encoder)");
  return *m.model.vae;
}

void require_same_images(const ImageGeom& data, const std::string& data_name,
                         const LoadedModel& model, const std::string& checkpoint) {
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
