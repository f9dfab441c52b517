// The local launcher, torchrun's job on one machine: `--nproc-per-node N`
// (or the original's `--strategy mirrored`, one process per GPU present)
// starts N workers of this same binary with torchrun's variables (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
// MASTER_PORT), forwards SIGINT/SIGTERM/SIGUSR1/SIGHUP to them, and fails
// fast: when one worker fails, the others get SIGTERM (SIGKILL after a
// grace period) and the launcher exits non-zero naming that rank.
#pragma once
#include <chrono>
#include <string>

#include "config/config.h"
#include "distributed/environment.h"

namespace cifar {

// Seconds a worker gets to leave after SIGTERM when a peer has failed.
constexpr int kWorkerStopGraceSeconds = 10;

// How many workers this invocation starts on this machine; 0 = run the
// pipeline in this process. --nproc-per-node N wins; otherwise
// --strategy mirrored means one worker per GPU (min(--num-gpus, present))
// when that is more than one, and a single process on CPU. Never inside a
// worker, nor under torchrun/srun/mpirun, which already made the processes
// (--nproc-per-node there is a UserError: the group would be nested).
int local_workers_to_start(const Config& config, const EnvMap& env);

// Checks the device and process group before forking, starts
// `workers` copies of /proc/self/exe with `argv` and torchrun's variables,
// supervises them, and returns the exit code: 0 when all succeed; the
// first failed worker's status (1 when it was killed by a signal); or,
// after a forwarded stop signal, rank 0's (130/143/138/129).
// `config_text` is --config's bytes as this process read them (empty
// without --config): the workers read a private copy, so a config given
// as a pipe, or a file edited meanwhile, reaches them as it reached this
// process.
int launch_local_workers(int workers, const Config& config, int argc, const char* const* argv,
                         const std::string& config_text = "");

// Under our launcher a worker's failure reaches the others as a broken
// collective and, a moment later, as the launcher's SIGTERM; and every rank
// that reads the same bad file fails with the same error. The launcher
// names the rank that failed first, so a worker about to report such an
// error first waits up to `patience` for that SIGTERM and, when it comes,
// exits 128 + the signal without a word. Elsewhere (torchrun, srun, one
// process) it returns at once: each rank reports.
void exit_quietly_if_launcher_stops_us(const DistEnvironment& env, std::chrono::milliseconds patience);

// A peer's failure reaches a rank as a broken collective and, within this,
// as our launcher's SIGTERM.
constexpr std::chrono::seconds kLauncherStopsUsWithin{2};

// report_error's hook (common/error_report.h): under our launcher a rank
// other than 0 with bad input (exit code kExitBadInput) first gives rank
// 0, which reads the same files and flags, kRankZeroReportsSeconds to
// report it once.
void let_rank_zero_report(int code);
constexpr int kRankZeroReportsSeconds = 5;

}  // namespace cifar
