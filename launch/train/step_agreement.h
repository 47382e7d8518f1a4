// The end-of-step agreement: what every rank must decide alike at a step boundary, reached in one
// all-reduce of a few flags (a flag is set when any rank set it): preemption, a timed checkpoint,
// and which loss terms or gradients went non-finite. `distvae train` acts on all of it; `distvae
// bench` runs the same agreement, so its step time includes the scans and the flag all-reduce.
#pragma once

#include <string>

#include "core/backend.h"
#include "dist/communicator.h"
#include "launch/train/train_step.h"

namespace distvae {

struct StepAgreement {
  bool preempt = false;         // a preemption signal reached some rank
  bool checkpoint_due = false;  // rank 0's clock says a timed checkpoint is due
  // The non-finite terms, comma-separated ("KL term, decoder gradients"); empty when the step is
  // good and its update may be applied.
  std::string nonfinite;
};

// Called on every rank after Trainee::step and before the update. checkpoint_due counts on rank 0
// only (one clock decides for every rank).
StepAgreement agree_on_step(const StepResult& r, Trainee& trainee, Backend<float>& be,
                            Communicator& comm, bool checkpoint_due);

}  // namespace distvae
