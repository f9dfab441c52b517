// SIGINT / SIGTERM / SIGUSR1 ask the run to stop after the current step (it
// then writes latest_model.pt and its outputs and exits 130 / 143 / 138); a
// second signal aborts at once, as users expect from a second Ctrl-C.
#pragma once

namespace cifar {

void install_stop_signals();
// After training: a signal ends the process at once again.
void restore_default_signals();
// The signal that asked to stop, or 0.
int stop_signal();
// For tests and for ranks told by a peer to stop.
void request_stop_signal(int signal);
void reset_stop_signal();

}  // namespace cifar
