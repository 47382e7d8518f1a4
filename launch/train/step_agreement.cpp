// The step-boundary flags and their one all-reduce (sum: a flag is set when any rank set it).
#include "launch/train/step_agreement.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "launch/train/preemption.h"

namespace distvae {

namespace {

enum StepFlag {
  kPreempt,
  kCheckpointDue,
  kBadReconstruction,  // or the generator's loss
  kBadKl,
  kBadPriorTerm,      // T(z) or softplus(T(z))
  kBadDiscriminator,  // discriminator gradients (its update was skipped)
  kBadNet0,           // the main networks' gradients: encoder and decoder, or the generator
  kBadNet1,
  kNumFlags
};

std::string nonfinite_terms(const double (&v)[kNumFlags], bool gan,
                            std::span<const TrainedNet> main) {
  std::string t;
  if (std::all_of(v + kBadReconstruction, v + kNumFlags, [](double f) { return f == 0; }))
    return t;  // the usual step: no text built, nothing allocated
  auto add = [&](int flag, const std::string& what) {
    if (v[flag] > 0) t += (t.empty() ? "" : ", ") + what;
  };
  add(kBadReconstruction, gan ? "generator loss" : "reconstruction term log p(x|z)");
  add(kBadKl, "KL term");
  add(kBadPriorTerm, "prior term T(z)");
  add(kBadDiscriminator, "discriminator gradients");
  for (size_t i = 0; i < main.size(); ++i)
    add(int(kBadNet0 + i), main[i].net->name() + " gradients");
  return t;
}

}  // namespace

StepAgreement agree_on_step(const StepResult& r, Trainee& trainee, Backend<float>& be,
                            Communicator& comm, bool checkpoint_due) {
  const bool gan = trainee.model().gan != nullptr;
  const VaeStats& st = r.vae;
  double v[kNumFlags] = {};
  v[kPreempt] = preemption_requested() ? 1 : 0;
  v[kCheckpointDue] = comm.rank() == 0 && checkpoint_due ? 1 : 0;
  v[kBadReconstruction] = std::isfinite(gan ? r.gen.loss : st.log_px_given_z) ? 0 : 1;
  v[kBadKl] = std::isfinite(st.kl) ? 0 : 1;
  v[kBadPriorTerm] = std::isfinite(st.prior_cost) ? 0 : 1;
  v[kBadDiscriminator] = r.disc_skipped;
  const std::span<TrainedNet> main = trainee.main_nets();
  for (size_t i = 0; i < main.size(); ++i) {
    const std::span<const float> g = main[i].reduced_grads();
    v[kBadNet0 + i] = be.all_finite(g.data(), g.size()) ? 0 : 1;
  }
  if (comm.size() > 1) comm.allreduce(v, kNumFlags, ReduceOp::sum);
  return {v[kPreempt] > 0, v[kCheckpointDue] > 0, nonfinite_terms(v, gan, main)};
}

}  // namespace distvae
