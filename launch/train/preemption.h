// Preemption: SIGTERM and SIGUSR1 (SLURM's warning before a time limit or preemption, see
// launch/slurm/train.sbatch) and a first SIGINT (Ctrl-C at a terminal) only set a flag; the
// trainer checks it at step boundaries, the ranks agree through an all-reduce, checkpoint and exit
// with kExitPreempted. A second SIGINT exits at once (code 130), saying so.
#pragma once

namespace distvae {

// The documented exit code of a run that stopped for preemption after writing its checkpoint
// (EX_TEMPFAIL: try again, with --resume).
constexpr int kExitPreempted = 75;
// The exit code of a job aborted because a rank stopped making progress (train.hang_timeout).
constexpr int kExitHung = 3;
// The exit code of a run stopped by a NaN or Inf (train.on_nonfinite: stop).
constexpr int kExitNonFinite = 4;

// Blocks SIGTERM, SIGUSR1 and SIGINT in the calling thread and starts the one thread that takes
// them with sigwait (idempotent). Call first in main, before MPI, oneDNN or the loader start
// threads: they inherit the mask, so a signal never interrupts a system call of theirs half-way (a
// 2-rank run stopped by SIGTERM corrupted its heap when the signal landed on an arbitrary thread).
// Until arm_preemption(), a signal there ends the process as its default action would.
void start_signal_thread();
// From now on the signals only set the flag (the trainer, once it can checkpoint). ANNOUNCE: this
// process (rank 0) prints what a Ctrl-C does; the others stay quiet.
void arm_preemption(bool announce);
bool preemption_requested();

// Under SLURM (SLURM_JOB_ID set), asks the scheduler to requeue this job; returns whether
// scontrol succeeded. Prints nothing.
bool request_slurm_requeue();

}  // namespace distvae
