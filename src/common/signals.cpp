#include "common/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "common/error.h"

namespace cifar {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    // Second signal: the user means it. Async-signal-safe exit.
    const char msg[] = "\nsecond signal: aborting now\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(128 + sig);
  }
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // SLURM's `--signal=USR1@T` warning before the time limit.
  sigaction(SIGUSR1, &sa, nullptr);
}

void restore_default_signals() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

std::string signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : std::to_string(sig);
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
