#include "common/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "common/error.h"

namespace cifar {
namespace {

std::atomic<int> g_signal{0};

// SIGHUP stops a run as SIGTERM does: a closed terminal or a dropped SSH
// session is the commonest way a run dies, and it should leave a
// checkpoint, not exit 129 with none.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    // A closed terminal can deliver SIGHUP twice (the shell forwards its
    // own to the job, and the kernel signals the foreground group when the
    // shell exits): a SIGHUP is never the second signal that aborts.
    if (sig == SIGHUP) return;
    // Second signal: the user means it. Async-signal-safe exit.
    const char msg[] = "\nsecond signal: aborting now\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(128 + sig);
  }
}

// An ignored SIGHUP stays ignored: `nohup cifar10 ...` asks for the run to
// outlive the terminal, and the ignored disposition is inherited across
// exec by every worker the launcher starts.
bool kept_ignored(int sig) {
  struct sigaction current {};
  return sig == SIGHUP && sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  // SIGUSR1: SLURM's `--signal=USR1@T` warning before the time limit.
  for (int sig : kStopSignals) {
    if (!kept_ignored(sig)) sigaction(sig, &sa, nullptr);
  }
}

void restore_default_signals() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig : kStopSignals) {
    if (!kept_ignored(sig)) sigaction(sig, &sa, nullptr);
  }
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGHUP: return "SIGHUP";
    default: return std::to_string(sig);
  }
}

StopSignalsCaught::StopSignalsCaught() { install_stop_signals(); }
StopSignalsCaught::~StopSignalsCaught() { restore_default_signals(); }

void throw_if_stop_requested(const std::string& what) {
  if (const int sig = stop_signal()) throw UserError("interrupted by " + signal_name(sig) + " " + what, 128 + sig);
}

int stop_signal() { return g_signal.load(); }
void request_stop_signal(int signal) { g_signal.store(signal); }
void reset_stop_signal() { g_signal.store(0); }

}  // namespace cifar
