// Preemption: SIGTERM and SIGUSR1 (SLURM's warning before a time limit or preemption, see
// launch/slurm/train.sbatch) only set a flag; the trainer checks it at step boundaries, the ranks
// agree through an all-reduce, checkpoint and exit with kExitPreempted.
#pragma once

namespace distvae {

// The documented exit code of a run that stopped for preemption after writing its checkpoint
// (EX_TEMPFAIL: try again, with --resume).
constexpr int kExitPreempted = 75;
// The exit code of a job aborted because a rank stopped making progress (train.hang_timeout).
constexpr int kExitHung = 3;
// The exit code of a run stopped by a NaN or Inf (train.on_nonfinite: stop).
constexpr int kExitNonFinite = 4;

// Installs the handlers (idempotent). A signal handler can only reach process state, so the flag
// is the one process-wide variable of the trainer.
void install_preemption_handlers();
bool preemption_requested();

// Under SLURM (SLURM_JOB_ID set), asks the scheduler to requeue this job; returns whether
// scontrol succeeded. Prints nothing.
bool request_slurm_requeue();

}  // namespace distvae
