// SIGINT / SIGTERM / SIGUSR1 / SIGHUP ask the run to stop after the current
// step (it then writes latest_model.pt and its outputs and exits 128 + the
// signal: 130 / 143 / 138 / 129); a second signal aborts at once, as users
// expect from a second Ctrl-C, except a repeated SIGHUP (a closing terminal
// may send two). A SIGHUP ignored when the process started (nohup) stays
// ignored.
#pragma once
#include <string>

namespace cifar {

void install_stop_signals();
// After training: a signal ends the process at once again.
void restore_default_signals();
// The signal that asked to stop, or 0.
int stop_signal();
// For tests and for ranks told by a peer to stop.
void request_stop_signal(int signal);
void reset_stop_signal();
// "SIGINT", "SIGTERM", "SIGUSR1", "SIGHUP", else the number.
std::string signal_name(int sig);

// For work outside training that a signal should end cleanly (the data
// download and extraction): while one lives, a stop signal sets the flag
// instead of killing the process, so the work can check
// throw_if_stop_requested() and unwind, removing its temporaries; a second
// signal still aborts at once.
class StopSignalsCaught {
 public:
  StopSignalsCaught();
  ~StopSignalsCaught();
  StopSignalsCaught(const StopSignalsCaught&) = delete;
  StopSignalsCaught& operator=(const StopSignalsCaught&) = delete;
};
// Throws UserError "interrupted by SIG... <what>" with exit code 128 + the
// signal when one asked to stop.
void throw_if_stop_requested(const std::string& what);

}  // namespace cifar
