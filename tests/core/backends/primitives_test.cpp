// Every Backend<float> primitive, called on every built float backend (cpu, dnnl, and cuda in a
// CUDA build) on a tiny input through the backend's own memory and compared with the plain-loop
// ReferenceBackend<double> on the same inputs: no loop of the fast paths is shared with it.
// The list of primitives is checked against the virtual functions declared in core/backend.h, so
// a primitive added to the interface without a case here fails the test instead of going
// untested on some backend.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.h"
#include "core/backends/cpu.h"
#include "core/backends/reference.h"
#include "core/rng.h"
#include "tests/core/backends/backend_list.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

using Vec = std::vector<float>;

Vec normals(uint64_t key, size_t n, float scale = 1.0f) {
  Vec v(n);
  normal_fill(uint64_t{31337}, stream_id(rng_purpose::test, key), 0, n, v.data());
  for (float& x : v) x *= scale;
  return v;
}

Vec uniforms(uint64_t key, size_t n) {
  Vec v(n);
  uniform_fill(uint64_t{31337}, stream_id(rng_purpose::test, key), 0, n, v.data());
  return v;
}

// A result read back to the host, widened to double (sum_squares returns one).
struct Tensor {
  std::vector<double> v;
  Tensor() = default;
  Tensor(const Vec& f) : v(f.begin(), f.end()) {}     // NOLINT: implicit on purpose
  Tensor(std::vector<double> d) : v(std::move(d)) {}  // NOLINT
};

// What one run of a primitive produced: named tensors.
using Outputs = std::map<std::string, Tensor>;

// The scalar type of a backend, for host buffers inside the generic cases below.
template <class T>
T scalar_of(Backend<T>&);

// A primitive's case: runs it on a backend (inputs uploaded, outputs downloaded) and says how
// close a float backend's outputs must be to the double reference's, max |a - b| / max |b| per
// tensor. Written once as a generic lambda, it runs on either precision.
struct Primitive {
  std::string name;
  double tol;
  std::function<Outputs(Backend<float>&)> run_float;
  std::function<Outputs(Backend<double>&)> run_double;
  template <class F>
  Primitive(std::string n, double t, F f)
      : name(std::move(n)), tol(t), run_float(f), run_double(f) {}
};

size_t x_size(const ConvGeom& g) {
  return size_t(g.B) * g.Cin * g.H * g.W;
}
size_t y_size(const ConvGeom& g) {
  return size_t(g.B) * g.Cout * g.Ho * g.Wo;
}
size_t w_size(const ConvGeom& g) {
  return size_t(g.Cout) * g.Cin * g.K * g.K;
}

constexpr double kOut = 1e-5, kGrad = 1e-4;
constexpr int kB = 3, kD = 37;  // images and values per image for the objective kernels

// The six convolution passes: which one, on conv and deconv geometries, with bias and activation.
enum class ConvPass { forward, backward_data, backward_weights };

template <class T>
Outputs run_conv(Backend<T>& be, bool deconv, ConvPass pass) {
  const ConvGeom g =
      deconv ? deconv_geom(2, 3, 4, 5, 4, 4, 2, 1, 1) : conv_geom(2, 3, 7, 6, 4, 3, 2, 1);
  BackendBuffer x(be, normals(10, x_size(g))), w(be, normals(11, w_size(g), 0.5f)),
      b(be, normals(12, size_t(g.Cout))), dy(be, normals(13, y_size(g)));
  switch (pass) {
    case ConvPass::forward: {
      BackendBuffer y(be, y_size(g));
      const ActSpec act{Act::elu, 0.7f};
      if (deconv)
        be.deconv2d_forward(x.get(), w.get(), b.get(), y.get(), g, act);
      else
        be.conv2d_forward(x.get(), w.get(), b.get(), y.get(), g, act);
      return {{"y", y.host()}};
    }
    case ConvPass::backward_data: {
      BackendBuffer dx(be, normals(14, x_size(g)));  // overwritten
      if (deconv)
        be.deconv2d_backward_data(dy.get(), w.get(), dx.get(), g);
      else
        be.conv2d_backward_data(dy.get(), w.get(), dx.get(), g);
      return {{"dx", dx.host()}};
    }
    case ConvPass::backward_weights: {
      BackendBuffer dw(be, normals(15, w_size(g))), db(be, normals(16, size_t(g.Cout)));
      if (deconv)
        be.deconv2d_backward_weights(x.get(), dy.get(), dw.get(), db.get(), g,
                                     GradWrite::accumulate);
      else
        be.conv2d_backward_weights(x.get(), dy.get(), dw.get(), db.get(), g, GradWrite::accumulate);
      return {{"dw", dw.host()}, {"db", db.host()}};
    }
  }
  return {};
}

// Linear shapes: one small, one with odd sizes.
constexpr int kLB = 5, kLIn = 13, kLOut = 7;

// A batch-norm case's shape: B images of C channels with S values each; x has a non-zero mean
// so that the centring matters.
struct BnCase {
  std::string tag;
  int B, C, S;
  size_t n() const { return size_t(B) * C * S; }
  size_t sums() const { return 2 * size_t(C) + 1; }
  Vec x() const {
    Vec v = normals(70, n(), 2.0f);
    for (float& e : v) e += 0.5f;
    return v;
  }
  // The batch's mean and invstd, for the cases after moments.
  template <class T>
  void moments(Backend<T>& be, BackendBuffer<T>& x, BackendBuffer<T>& mean,
               BackendBuffer<T>& invstd) const {
    BackendBuffer s(be, sums()), rm(be, size_t(C)), rv(be, size_t(C));
    be.batchnorm_sums(x.get(), s.get(), B, C, S);
    be.batchnorm_moments(s.get(), rm.get(), rv.get(), mean.get(), invstd.get(), C, 1e-5f, 0.1f,
                         true);
  }
};

Outputs for_bn_shapes(const std::function<Outputs(const BnCase&)>& run) {
  Outputs all;
  for (const BnCase& c : {BnCase{"channels", 4, 3, 20}, BnCase{"features", kB, kD, 1}})
    for (auto& [name, t] : run(c)) all[c.tag + " " + name] = std::move(t);
  return all;
}

std::vector<Primitive> primitives() {
  std::vector<Primitive> p;

  // ---- memory ----
  p.push_back({"name", 0, [](auto& be) {
                 EXPECT_FALSE(be.name().empty());
                 return Outputs{};
               }});
  p.push_back({"alloc", 0, [](auto& be) {
                 BackendBuffer z(be, 1000);  // zero-initialised
                 return Outputs{{"zeros", z.host()}};
               }});
  p.push_back({"release", 0, [](auto& be) {
                 auto* q = be.alloc(10);
                 be.release(q);
                 be.release(nullptr);  // a no-op, as free(nullptr)
                 return Outputs{};
               }});
  p.push_back({"to_device", 0, [](auto& be) {
                 using T = decltype(scalar_of(be));
                 BackendBuffer d(be, 517);
                 const Vec f = normals(1, 517);
                 const std::vector<T> h(f.begin(), f.end());
                 be.to_device(h.data(), d.get(), h.size());
                 return Outputs{{"round trip", d.host()}};
               }});
  p.push_back({"to_host", 0, [](auto& be) {
                 using T = decltype(scalar_of(be));
                 BackendBuffer d(be, normals(2, 300));
                 std::vector<T> h(200);
                 be.to_host(d.get() + 100, h.data(), 200);  // from an offset
                 return Outputs{{"part", h}};
               }});
  // The upload lands after the work queued before it (the copy out of d reads the old values)
  // and is there once upload_wait returns.
  p.push_back({"upload_start", 0, [](auto& be) {
                 using T = decltype(scalar_of(be));
                 BackendBuffer d(be, normals(7, 4099)), before(be, 4099);
                 const Vec f = normals(8, 4099);
                 const std::vector<T> h(f.begin(), f.end());
                 be.copy(d.get(), before.get(), 4099);
                 be.upload_start(h.data(), d.get(), h.size());
                 be.upload_wait();
                 return Outputs{{"old", before.host()}, {"new", d.host()}};
               }});
  p.push_back({"upload_wait", 0, [](auto& be) {
                 be.upload_wait();  // nothing in flight: returns at once
                 using T = decltype(scalar_of(be));
                 BackendBuffer d(be, 1000);
                 for (int i = 0; i < 3; ++i) {  // one at a time, the buffer reused each time
                   const Vec f = normals(uint64_t(40 + i), 1000);
                   const std::vector<T> h(f.begin(), f.end());
                   be.upload_start(h.data(), d.get(), h.size());
                   be.upload_wait();
                 }
                 return Outputs{{"last", d.host()}};
               }});
  p.push_back({"fill", 0, [](auto& be) {
                 BackendBuffer a(be, normals(3, 1000)), z(be, normals(4, 77));
                 be.fill(a.get() + 1, 998, -2.5f);  // leaves both ends
                 be.fill(z.get(), 77, 0.0f);
                 return Outputs{{"value", a.host()}, {"zero", z.host()}};
               }});
  p.push_back({"copy", 0, [](auto& be) {
                 BackendBuffer src(be, normals(5, 333)), dst(be, normals(6, 333));
                 be.copy(src.get() + 3, dst.get() + 7, 300);
                 return Outputs{{"dst", dst.host()}};
               }});

  // ---- linear ----
  p.push_back(
      {"linear_forward", kOut, [](auto& be) {
         BackendBuffer x(be, normals(20, kLB * kLIn)), w(be, normals(21, kLOut * kLIn)),
             b(be, normals(22, kLOut)), y1(be, kLB * kLOut), y2(be, kLB * kLOut),
             y3(be, kLB * kLOut);
         be.linear_forward(x.get(), w.get(), b.get(), y1.get(), kLB, kLIn, kLOut,
                           {Act::relu, 0.0f});
         be.linear_forward(x.get(), w.get(), nullptr, y2.get(), kLB, kLIn, kLOut,
                           {Act::sigmoid, 0.0f});
         be.linear_forward(x.get(), w.get(), b.get(), y3.get(), kLB, kLIn, kLOut, {});
         return Outputs{{"relu+bias", y1.host()}, {"sigmoid", y2.host()}, {"bias", y3.host()}};
       }});
  p.push_back({"linear_backward_data", kGrad, [](auto& be) {
                 BackendBuffer dy(be, normals(23, kLB * kLOut)), w(be, normals(21, kLOut * kLIn)),
                     dx(be, normals(24, kLB * kLIn));  // overwritten
                 be.linear_backward_data(dy.get(), w.get(), dx.get(), kLB, kLIn, kLOut);
                 return Outputs{{"dx", dx.host()}};
               }});
  p.push_back({"linear_backward_weights", kGrad, [](auto& be) {
                 // Added to a non-zero start, and written over one.
                 BackendBuffer x(be, normals(20, kLB * kLIn)), dy(be, normals(23, kLB * kLOut));
                 Outputs out;
                 for (GradWrite write : {GradWrite::accumulate, GradWrite::overwrite}) {
                   BackendBuffer dw(be, normals(25, kLOut * kLIn)), db(be, normals(26, kLOut));
                   be.linear_backward_weights(x.get(), dy.get(), dw.get(), db.get(), kLB, kLIn,
                                              kLOut, write);
                   const std::string how = write == GradWrite::accumulate ? "" : " overwritten";
                   out["dw" + how] = dw.host();
                   out["db" + how] = db.host();
                 }
                 return out;
               }});

  // ---- convolution ----
  p.push_back(
      {"conv2d_forward", kOut, [](auto& be) { return run_conv(be, false, ConvPass::forward); }});
  p.push_back({"conv2d_backward_data", kGrad,
               [](auto& be) { return run_conv(be, false, ConvPass::backward_data); }});
  p.push_back({"conv2d_backward_weights", kGrad,
               [](auto& be) { return run_conv(be, false, ConvPass::backward_weights); }});
  p.push_back(
      {"deconv2d_forward", kOut, [](auto& be) { return run_conv(be, true, ConvPass::forward); }});
  p.push_back({"deconv2d_backward_data", kGrad,
               [](auto& be) { return run_conv(be, true, ConvPass::backward_data); }});
  p.push_back({"deconv2d_backward_weights", kGrad,
               [](auto& be) { return run_conv(be, true, ConvPass::backward_weights); }});

  // ---- elementwise ----
  p.push_back({"act_forward", kOut, [](auto& be) {
                 Outputs out;
                 for (Act a : {Act::none, Act::relu, Act::leaky_relu, Act::elu, Act::softplus,
                               Act::tanh, Act::sigmoid}) {
                   BackendBuffer x(be, normals(30, 300, 3.0f)), y(be, 300);
                   be.act_forward(x.get(), y.get(), 300, {a, 0.2f});
                   out[act_name(a)] = y.host();
                 }
                 return out;
               }});
  p.push_back({"act_backward", kGrad, [](auto& be) {
                 Outputs out;
                 for (Act a : {Act::none, Act::relu, Act::leaky_relu, Act::elu, Act::softplus,
                               Act::tanh, Act::sigmoid}) {
                   // y from the reference formulas' range: (0, 1) fits every activation
                   BackendBuffer y(be, uniforms(31, 300)), dy(be, normals(32, 300));
                   be.act_backward(y.get(), dy.get(), dy.get(), 300, {a, 0.2f});  // in place
                   out[act_name(a)] = dy.host();
                 }
                 return out;
               }});
  p.push_back({"axpy", kOut, [](auto& be) {
                 BackendBuffer x(be, normals(33, 1001)), y(be, normals(34, 1001));
                 be.axpy(1001, -0.75f, x.get(), y.get());
                 return Outputs{{"y", y.host()}};
               }});
  p.push_back({"scale", kOut, [](auto& be) {
                 BackendBuffer x(be, normals(35, 1001));
                 be.scale(1001, 1.5f, x.get());
                 return Outputs{{"x", x.host()}};
               }});
  p.push_back({"mul", kOut, [](auto& be) {
                 BackendBuffer a(be, normals(37, 1001)), x(be, normals(35, 1001));
                 be.mul(1001, a.get(), x.get());
                 return Outputs{{"x", x.host()}};
               }});
  p.push_back({"sum_squares", 1e-12, [](auto& be) {
                 // Larger than one block of any reduction, smaller than the largest grid.
                 BackendBuffer x(be, normals(36, 300001));
                 return Outputs{{"sum", std::vector<double>{be.sum_squares(x.get(), 300001)}}};
               }});
  // Unequal widths (the image's channels before a feature map) and a skipped first part.
  constexpr int kD2 = 11;
  p.push_back({"split_rows", 0, [](auto& be) {
                 BackendBuffer h(be, normals(37, kB * (kD + kD2))), a(be, kB * kD), b(be, kB * kD2),
                     b_only(be, kB * kD2);
                 be.split_rows(h.get(), a.get(), b.get(), kB, kD, kD2);
                 be.split_rows(h.get(), nullptr, b_only.get(), kB, kD, kD2);
                 return Outputs{{"a", a.host()}, {"b", b.host()}, {"b without a", b_only.host()}};
               }});
  p.push_back({"join_rows", 0, [](auto& be) {
                 BackendBuffer a(be, normals(38, kB * kD)), b(be, normals(39, kB * kD2)),
                     h(be, kB * (kD + kD2));
                 be.join_rows(a.get(), b.get(), h.get(), kB, kD, kD2);
                 return Outputs{{"h", h.host()}};
               }});
  p.push_back({"all_finite", 0, [](auto& be) {
                 Vec v = normals(40, 5000);
                 BackendBuffer finite(be, v);
                 v[4321] = std::numeric_limits<float>::quiet_NaN();
                 BackendBuffer nan(be, v);
                 v[4321] = 1.0f, v[17] = -std::numeric_limits<float>::infinity();
                 BackendBuffer inf(be, v);
                 // the last one ends before the infinity
                 return Outputs{
                     {"flags", std::vector<double>{double(be.all_finite(finite.get(), 5000)),
                                                   double(be.all_finite(nan.get(), 5000)),
                                                   double(be.all_finite(inf.get(), 5000)),
                                                   double(be.all_finite(inf.get(), 17))}}};
               }});

  // ---- batch normalization, each case on images (C = 3, S = 20) and flat features (S = 1) ----
  p.push_back({"batchnorm_sums", kOut, [](auto& be) {
                 return for_bn_shapes([&](const BnCase& c) {
                   BackendBuffer x(be, c.x()), s(be, normals(72, c.sums()));
                   be.batchnorm_sums(x.get(), s.get(), c.B, c.C, c.S);
                   return Outputs{{"sums", s.host()}};
                 });
               }});
  p.push_back({"batchnorm_moments", kOut, [](auto& be) {
                 return for_bn_shapes([&](const BnCase& c) {
                   const size_t C = size_t(c.C);
                   BackendBuffer x(be, c.x()), s(be, c.sums()), mean(be, C), invstd(be, C),
                       rm(be, normals(73, C)), rv(be, uniforms(74, C)), emean(be, C),
                       einvstd(be, C);
                   be.batchnorm_sums(x.get(), s.get(), c.B, c.C, c.S);
                   be.batchnorm_moments(s.get(), rm.get(), rv.get(), mean.get(), invstd.get(), c.C,
                                        1e-3f, 0.25f, true);
                   be.batchnorm_moments(nullptr, rm.get(), rv.get(), emean.get(), einvstd.get(),
                                        c.C, 1e-3f, 0.25f, false);
                   return Outputs{{"mean", mean.host()},       {"invstd", invstd.host()},
                                  {"running_mean", rm.host()}, {"running_var", rv.host()},
                                  {"eval mean", emean.host()}, {"eval invstd", einvstd.host()}};
                 });
               }});
  p.push_back({"batchnorm_forward", kOut, [](auto& be) {
                 return for_bn_shapes([&](const BnCase& c) {
                   const size_t n = c.n(), C = size_t(c.C);
                   BackendBuffer x(be, c.x()), mean(be, C), invstd(be, C),
                       gamma(be, normals(75, C)), beta(be, normals(76, C)), y(be, n), y2(be, n);
                   c.moments(be, x, mean, invstd);
                   be.batchnorm_forward(x.get(), mean.get(), invstd.get(), gamma.get(), beta.get(),
                                        y.get(), c.B, c.C, c.S, ActSpec{Act::elu, 0.7f});
                   be.batchnorm_forward(x.get(), mean.get(), invstd.get(), gamma.get(), beta.get(),
                                        y2.get(), c.B, c.C, c.S, ActSpec{});
                   return Outputs{{"y", y.host()}, {"y without activation", y2.host()}};
                 });
               }});
  p.push_back({"batchnorm_backward_sums", kGrad, [](auto& be) {
                 return for_bn_shapes([&](const BnCase& c) {
                   const size_t C = size_t(c.C);
                   BackendBuffer x(be, c.x()), dy(be, normals(77, c.n())), mean(be, C),
                       invstd(be, C), ds(be, normals(78, c.sums()));
                   c.moments(be, x, mean, invstd);
                   be.batchnorm_backward_sums(x.get(), dy.get(), mean.get(), invstd.get(), ds.get(),
                                              c.B, c.C, c.S);
                   return Outputs{{"dsums", ds.host()}};
                 });
               }});
  p.push_back({"batchnorm_backward_data", kGrad, [](auto& be) {
                 return for_bn_shapes([&](const BnCase& c) {
                   const size_t C = size_t(c.C);
                   BackendBuffer x(be, c.x()), dy(be, normals(77, c.n())), mean(be, C),
                       invstd(be, C), gamma(be, normals(75, C)), ds(be, c.sums()),
                       dx(be, normals(79, c.n()));
                   c.moments(be, x, mean, invstd);
                   be.batchnorm_backward_sums(x.get(), dy.get(), mean.get(), invstd.get(), ds.get(),
                                              c.B, c.C, c.S);
                   be.batchnorm_backward_data(x.get(), dy.get(), mean.get(), invstd.get(),
                                              gamma.get(), ds.get(), dx.get(), c.B, c.C, c.S);
                   return Outputs{{"dx", dx.host()}};
                 });
               }});

  // ---- objective kernels ----
  p.push_back({"reparameterize", kOut, [](auto& be) {
                 BackendBuffer mu(be, normals(50, kB * kD)), lv(be, normals(51, kB * kD)),
                     eps(be, normals(52, kB * kD)), z(be, kB * kD);
                 be.reparameterize(mu.get(), lv.get(), eps.get(), z.get(), kB * kD);
                 return Outputs{{"z", z.host()}};
               }});
  p.push_back({"reparameterize_backward", kGrad, [](auto& be) {
                 BackendBuffer dz(be, normals(53, kB * kD)), lv(be, normals(51, kB * kD)),
                     eps(be, normals(52, kB * kD)), dmu(be, normals(54, kB * kD)),
                     dlv(be, normals(55, kB * kD));
                 be.reparameterize_backward(dz.get(), lv.get(), eps.get(), dmu.get(), dlv.get(),
                                            kB * kD);
                 return Outputs{{"dmu", dmu.host()}, {"dlogvar", dlv.host()}};
               }});
  p.push_back(
      {"bernoulli_log_lik", kGrad, [](auto& be) {
         BackendBuffer l(be, normals(56, kB * kD, 4.0f)), x(be, uniforms(57, kB * kD)), ll(be, kB),
             ll2(be, kB), dl(be, normals(58, kB * kD));
         be.bernoulli_log_lik(l.get(), x.get(), ll.get(), dl.get(), 0.5f, kB, kD);
         be.bernoulli_log_lik(l.get(), x.get(), ll2.get(), nullptr, 0.5f, kB, kD);
         return Outputs{{"ll", ll.host()}, {"dlogits", dl.host()}, {"ll no grad", ll2.host()}};
       }});
  p.push_back({"gaussian_log_lik", kGrad, [](auto& be) {
                 BackendBuffer m(be, normals(59, kB * kD)), lv(be, normals(60, kB * kD, 2.0f)),
                     x(be, normals(61, kB * kD)), ll(be, kB), dm(be, kB * kD), dlv(be, kB * kD),
                     ll_fixed(be, kB), dm_fixed(be, kB * kD);
                 // a floor of -1 is active for about a third of the values
                 be.gaussian_log_lik(m.get(), lv.get(), 0.0f, -1.0f, x.get(), ll.get(), dm.get(),
                                     dlv.get(), 0.25f, kB, kD);
                 be.gaussian_log_lik(m.get(), nullptr, -0.5f, -1.0f, x.get(), ll_fixed.get(),
                                     dm_fixed.get(), nullptr, 0.25f, kB, kD);
                 return Outputs{{"ll", ll.host()},
                                {"dmean", dm.host()},
                                {"dlogvar", dlv.host()},
                                {"ll fixed", ll_fixed.host()},
                                {"dmean fixed", dm_fixed.host()}};
               }});
  p.push_back(
      {"kl_std_normal", kOut, [](auto& be) {
         BackendBuffer mu(be, normals(62, kB * kD)), lv(be, normals(63, kB * kD)), kl(be, kB),
             kl_dim(be, normals(64, kD)), kl2(be, kB);
         be.kl_std_normal(mu.get(), lv.get(), kl.get(), kl_dim.get(), kB, kD);
         be.kl_std_normal(mu.get(), lv.get(), kl2.get(), nullptr, kB, kD);
         return Outputs{{"kl", kl.host()}, {"kl_dim", kl_dim.host()}, {"kl only", kl2.host()}};
       }});
  p.push_back(
      {"kl_std_normal_backward", kGrad, [](auto& be) {
         BackendBuffer mu(be, normals(62, kB * kD)), lv(be, normals(63, kB * kD)),
             w(be, uniforms(65, kD)), dmu(be, normals(66, kB * kD)), dlv(be, normals(67, kB * kD)),
             dmu1(be, normals(66, kB * kD)), dlv1(be, normals(67, kB * kD));
         be.kl_std_normal_backward(mu.get(), lv.get(), w.get(), 0.3f, dmu.get(), dlv.get(), kB, kD);
         be.kl_std_normal_backward(mu.get(), lv.get(), nullptr, 0.3f, dmu1.get(), dlv1.get(), kB,
                                   kD);
         return Outputs{{"dmu", dmu.host()},
                        {"dlogvar", dlv.host()},
                        {"dmu unweighted", dmu1.host()},
                        {"dlogvar unweighted", dlv1.host()}};
       }});
  p.push_back({"std_normal_log_density", kOut, [](auto& be) {
                 BackendBuffer z(be, normals(68, kB * kD)), lp(be, kB), lp2(be, kB),
                     dz(be, normals(69, kB * kD));
                 be.std_normal_log_density(z.get(), lp.get(), dz.get(), 0.7f, kB, kD);
                 be.std_normal_log_density(z.get(), lp2.get(), nullptr, 0.7f, kB, kD);
                 return Outputs{{"lp", lp.host()}, {"dz", dz.host()}, {"lp no grad", lp2.host()}};
               }});
  p.push_back({"normal_log_density", kOut, [](auto& be) {
                 BackendBuffer z(be, normals(70, kB * kD)), mu(be, normals(71, kB * kD)),
                     lv(be, normals(72, kB * kD)), lq(be, kB);
                 be.normal_log_density(z.get(), mu.get(), lv.get(), lq.get(), kB, kD);
                 return Outputs{{"lq", lq.host()}};
               }});

  // ---- optimizers ----
  p.push_back({"adam_update", kOut, [](auto& be) {
                 const size_t n = 4099;
                 BackendBuffer pp(be, normals(80, n)), g(be, normals(81, n, 0.1f)),
                     m(be, normals(82, n, 0.01f)), v(be, uniforms(83, n));
                 AdamArgs a;
                 a.lr = 1e-2, a.weight_decay = 0.1, a.step = 3;
                 be.adam_update(pp.get(), g.get(), m.get(), v.get(), n, a);
                 be.adam_update(pp.get(), g.get(), m.get(), v.get(), n, a);
                 return Outputs{{"p", pp.host()}, {"m", m.host()}, {"v", v.host()}};
               }});
  p.push_back({"sgd_update", kOut, [](auto& be) {
                 const size_t n = 4099;
                 BackendBuffer p1(be, normals(84, n)), p2(be, normals(84, n)),
                     g(be, normals(85, n)), vel(be, normals(86, n, 0.1f));
                 SgdArgs a;
                 a.lr = 0.05, a.momentum = 0.9, a.weight_decay = 1e-3;
                 be.sgd_update(p1.get(), g.get(), vel.get(), n, a);
                 a.momentum = 0.0;
                 be.sgd_update(p2.get(), g.get(), nullptr, n, a);
                 return Outputs{
                     {"p momentum", p1.host()}, {"velocity", vel.host()}, {"p plain", p2.host()}};
               }});
  return p;
}

// The pure virtual functions of Backend<T>, read from core/backend.h.
std::set<std::string> interface_primitives() {
  std::ifstream in(std::string(DISTVAE_SOURCE_DIR) + "/core/backend.h");
  EXPECT_TRUE(in) << "cannot read core/backend.h under " << DISTVAE_SOURCE_DIR;
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  std::set<std::string> names;
  // "virtual <return type> <name>(" -- the destructor has no return type and does not match.
  const std::regex decl(R"(virtual\s+[A-Za-z_][\w:<>\s\*&]*?[\s\*&]([a-z_]\w*)\s*\()");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), decl); it != std::sregex_iterator(); ++it)
    names.insert((*it)[1].str());
  return names;
}

// all_finite over buffers long enough to be split over threads, with one bad value placed in
// the first, a middle and the last element (the comparison with the reference backend above uses
// buffers too short to be split).
TEST(BackendPrimitives, AllFiniteFindsOneBadValueAnywhereInALongBuffer) {
  CpuBackend be;
  const size_t n = 1'000'003;
  std::vector<float> v(n, 1.0f);
  EXPECT_TRUE(be.all_finite(v.data(), n));
  for (size_t at : {size_t(0), n / 2 + 7, n - 1})
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      v[at] = bad;
      EXPECT_FALSE(be.all_finite(v.data(), n)) << "bad value " << bad << " at " << at;
      EXPECT_EQ(be.all_finite(v.data(), at), true) << "the range ends before " << at;
      v[at] = std::numeric_limits<float>::max();  // largest finite: still finite
      EXPECT_TRUE(be.all_finite(v.data(), n));
      v[at] = 1.0f;
    }
}

TEST(BackendPrimitives, TheListCoversEveryPrimitiveOfTheInterface) {
  const std::set<std::string> declared = interface_primitives();
  ASSERT_GE(declared.size(), 30u) << "parsing core/backend.h found too few primitives";
  std::set<std::string> listed;
  for (const Primitive& p : primitives()) EXPECT_TRUE(listed.insert(p.name).second) << p.name;
  for (const std::string& name : declared)
    EXPECT_TRUE(listed.count(name))
        << "Backend primitive '" << name << "' has no case in primitives_test.cpp";
  for (const std::string& name : listed)
    EXPECT_TRUE(declared.count(name)) << "'" << name << "' is not a primitive of core/backend.h";
}

class EveryPrimitive : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryPrimitive, MatchesTheDoubleReferenceBackend) {
  std::string skip;
  const std::unique_ptr<Backend<float>> be = make_test_backend(GetParam(), &skip);
  if (!be) GTEST_SKIP() << skip;
  ReferenceBackend<double> ref;
  for (const Primitive& p : primitives()) {
    SCOPED_TRACE(GetParam() + "." + p.name);
    const Outputs got = p.run_float(*be);
    const Outputs want = p.run_double(ref);
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [name, w] : want) {
      const auto it = got.find(name);
      ASSERT_NE(it, got.end()) << name;
      ASSERT_EQ(it->second.v.size(), w.v.size()) << name;
      const double err = rel_err(it->second.v.data(), w.v.data(), w.v.size());
      EXPECT_LE(err, p.tol) << name << ": rel err " << err;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, EveryPrimitive, ::testing::ValuesIn(all_backends_under_test()),
                         BackendName());

}  // namespace
}  // namespace distvae
