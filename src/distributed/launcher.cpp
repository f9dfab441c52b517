#include "distributed/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "common/signals.h"
#include "common/runtime.h"
#include "distributed/process_group.h"

extern char** environ;

namespace cifar {
namespace {

using Clock = std::chrono::steady_clock;

// Signals reach the launcher through a pipe, so the supervision loop sees
// them in order with the children's exits, whichever thread the kernel
// delivered them to.
int g_signal_pipe = -1;

extern "C" void on_launcher_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  (void)!::write(g_signal_pipe, &byte, 1);
}

std::string signal_text(int sig) {
  switch (sig) {
    case SIGKILL: return "signal 9 (SIGKILL)";
    case SIGTERM: return "signal 15 (SIGTERM)";
    case SIGHUP: return "signal 1 (SIGHUP)";
    case SIGINT: return "signal 2 (SIGINT)";
    case SIGUSR1: return "signal 10 (SIGUSR1)";
    case SIGSEGV: return "signal 11 (SIGSEGV)";
    case SIGABRT: return "signal 6 (SIGABRT)";
    case SIGBUS: return "signal 7 (SIGBUS)";
    case SIGSTOP: return "signal 19 (SIGSTOP)";
    case SIGTSTP: return "signal 20 (SIGTSTP)";
    default: return "signal " + std::to_string(sig);
  }
}

// Built before fork: between fork and exec a child of a multi-threaded
// process may only make async-signal-safe calls, which setenv is not.
std::vector<std::string> worker_environment(int rank, int workers, const std::string& store_file) {
  const std::map<std::string, std::string> ours = {
      {"RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(workers)},
      {"LOCAL_RANK", std::to_string(rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(workers)},
      {"GROUP_RANK", "0"},
      {"MASTER_ADDR", "127.0.0.1"},
      {kStoreFileVariable, store_file},
      {kLocalLauncherVariable, "1"},
  };
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    if (!ours.count(kv.substr(0, kv.find('=')))) env.push_back(kv);
  }
  for (const auto& [k, v] : ours) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A folder only this user can enter (mkdtemp: mode 0700), holding the
// FileStore's file; removed with everything in it when the group is done.
class RendezvousFolder {
 public:
  RendezvousFolder() {
    // temp_directory_path() throws a bare filesystem_error when TMPDIR
    // names no folder: read TMPDIR here so the error says which.
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string base = tmpdir && *tmpdir ? tmpdir : "/tmp";
    // A launcher killed by SIGKILL cannot remove its folder: the next one
    // on this machine does. <prefix><host>.<pid>.XXXXXX says whose it was.
    remove_temps_of_dead_processes(base, "cifar10-rendezvous-");
    std::string pattern =
        (std::filesystem::path(base) / (temp_name_prefix("cifar10-rendezvous-") + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw UserError("cannot create a rendezvous folder under " + base + ": " + std::strerror(errno) +
                          " (hint: set TMPDIR to a writable folder)",
                      kExitRuntime);
    }
    path_ = pattern;
  }
  ~RendezvousFolder() {
    remove_tree(path_);
  }
  RendezvousFolder(const RendezvousFolder&) = delete;
  RendezvousFolder& operator=(const RendezvousFolder&) = delete;
  std::string store_file() const { return (path_ / "store").string(); }
  std::filesystem::path path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class Supervisor {
 public:
  Supervisor(int workers, int argc, const char* const* argv, std::string config_text)
      : workers_(workers), argv_(argv, argv + argc), config_text_(std::move(config_text)) {}

  int run() {
    install_signal_pipe();
    // The group meets through a file in a private folder, not a TCP port:
    // c10d's TCPStore listens on every interface whatever MASTER_ADDR says
    // (docs/SECURITY.md), and one machine needs no network listener. Gloo's
    // own connections stay on the loopback device.
    RendezvousFolder folder;
    if (!config_text_.empty()) pass_config_copy(folder.path() / "config");
    const pid_t self = ::getpid();
    pids_.assign(workers_, -1);
    status_.assign(workers_, 0);
    stopped_by_.assign(workers_, 0);
    std::cout << "Starting " << workers_ << " worker processes on this machine (rendezvous file " << folder.store_file()
              << "):";
    for (int r = 0; r < workers_; ++r) {
      pids_[r] = spawn(r, folder.store_file(), self);
      std::cout << " rank " << r << " pid " << pids_[r] << (r + 1 < workers_ ? "," : "\n");
    }
    std::cout << std::flush;
    supervise();
    restore_signals();
    return exit_code();
  }

 private:
  void install_signal_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw UserError(std::string("cannot create the launcher's signal pipe: ") + std::strerror(errno), kExitRuntime);
    }
    pipe_read_ = fds[0];
    g_signal_pipe = fds[1];
    struct sigaction sa {};
    sa.sa_handler = on_launcher_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    // A closed terminal or dropped ssh session: the workers stop as a
    // single process does (checkpoint, exit 129) and the launcher cleans up
    // after them. Under nohup it stays ignored, here and in the workers.
    ::sigaction(SIGHUP, nullptr, &old_hup_);
    if (old_hup_.sa_handler != SIG_IGN) ::sigaction(SIGHUP, &sa, nullptr);
    ::sigaction(SIGUSR1, &sa, &old_usr1_);  // forwarded as it is: SLURM's warning
  }

  void restore_signals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGHUP, &old_hup_, nullptr);
    ::sigaction(SIGUSR1, &old_usr1_, nullptr);
    ::close(pipe_read_);
    ::close(g_signal_pipe);
    g_signal_pipe = -1;
  }

  pid_t spawn(int rank, const std::string& store_file, pid_t parent) {
    auto env_strings = worker_environment(rank, workers_, store_file);
    auto envp = c_strings(env_strings);
    auto argv_strings = argv_;
    auto argv = c_strings(argv_strings);
    std::cout.flush();
    const pid_t pid = ::fork();
    if (pid < 0) {
      stop_all(SIGTERM);
      throw UserError(std::string("cannot start worker ") + std::to_string(rank) + ": " + std::strerror(errno),
                      kExitRuntime);
    }
    if (pid == 0) {
      // Its own process group: a terminal's Ctrl-C reaches only the
      // launcher, which forwards it once (a second SIGINT aborts a worker).
      ::setpgid(0, 0);
      // Should the launcher die (SIGKILL), its workers stop too.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(kExitRuntime);
      ::execve("/proc/self/exe", argv.data(), envp.data());
      ::_exit(127);
    }
    return pid;
  }

  int alive() const {
    int n = 0;
    for (pid_t p : pids_) n += p > 0;
    return n;
  }

  void stop_all(int sig) {
    for (pid_t p : pids_) {
      if (p <= 0) continue;
      ::kill(p, sig);
      // A stopped (SIGSTOP) worker must run to act on a stop signal.
      if (sig != SIGKILL) ::kill(p, SIGCONT);
    }
  }

  void supervise() {
    std::optional<Clock::time_point> kill_at;
    while (alive() > 0) {
      pollfd pfd{pipe_read_, POLLIN, 0};
      ::poll(&pfd, 1, 100);
      unsigned char sig = 0;
      while (::read(pipe_read_, &sig, 1) == 1) {
        forwarded_ = sig;
        stop_all(sig);
      }
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG | WUNTRACED | WCONTINUED)) > 0) {
        const auto it = std::find(pids_.begin(), pids_.end(), pid);
        if (it == pids_.end()) continue;
        const int rank = static_cast<int>(it - pids_.begin());
        // A stopped worker hangs the group without dying: the survivors'
        // timeout ends the run, and the error should name the real cause.
        if (WIFSTOPPED(status) || WIFCONTINUED(status)) {
          stopped_by_[rank] = WIFSTOPPED(status) ? WSTOPSIG(status) : 0;
          if (stopped_by_[rank] && failed_rank_ < 0 && !forwarded_) {
            std::cerr << "warning: rank " << rank << " was stopped by " << signal_text(stopped_by_[rank])
                      << "; the other ranks wait for it at most --dist-timeout\n";
          }
          continue;
        }
        *it = -1;
        status_[rank] = status;
        if (failed_rank_ < 0 && failed(status)) {
          failed_rank_ = rank;
          for (int r = 0; r < workers_; ++r) {
            if (stopped_by_[r]) hung_by_.emplace_back(r, stopped_by_[r]);
          }
          stop_all(SIGTERM);
          kill_at = Clock::now() + std::chrono::seconds(kWorkerStopGraceSeconds);
        }
      }
      if (kill_at && Clock::now() > *kill_at) {
        stop_all(SIGKILL);
        kill_at.reset();
      }
    }
  }

  // Exits with 128+sig after a signal we forwarded are the stop we asked for.
  bool failed(int status) const {
    if (WIFEXITED(status)) {
      const int code = WEXITSTATUS(status);
      return code != 0 && !(forwarded_ && code == 128 + forwarded_);
    }
    // A worker still loading data has no handler installed yet and dies of it.
    return !(forwarded_ && WTERMSIG(status) == forwarded_);
  }

  int exit_code() const {
    if (failed_rank_ >= 0) {
      const int s = status_[failed_rank_];
      std::cerr << "error: rank " << failed_rank_
                << (WIFEXITED(s) ? " exited with status " + std::to_string(WEXITSTATUS(s))
                                 : " was killed by " + signal_text(WTERMSIG(s)));
      for (const auto& [rank, sig] : hung_by_) {
        std::cerr << "; rank " << rank << " had been stopped by " << signal_text(sig) << " and hung the group";
      }
      std::cerr << (workers_ > 1 ? "; stopped the other workers" : "") << "\n";
      return WIFEXITED(s) ? WEXITSTATUS(s) : kExitRuntime;
    }
    const int s = status_[0];
    return WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
  }

  int workers_;
  // The workers' --config names a copy of the bytes this process read.
  void pass_config_copy(const std::filesystem::path& copy) {
    write_file_atomic(copy, config_text_);
    for (size_t i = 1; i < argv_.size(); ++i) {
      if (argv_[i] == "--config" && i + 1 < argv_.size()) argv_[i + 1] = copy.string();
      if (argv_[i].rfind("--config=", 0) == 0) argv_[i] = "--config=" + copy.string();
    }
  }

  std::vector<std::string> argv_;
  std::string config_text_;
  std::vector<pid_t> pids_;
  std::vector<int> status_;
  std::vector<int> stopped_by_;                // the stop signal of a stopped worker, else 0
  std::vector<std::pair<int, int>> hung_by_;  // (rank, signal): stopped when the group failed
  int pipe_read_ = -1;
  int forwarded_ = 0;
  int failed_rank_ = -1;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_hup_ {};
  struct sigaction old_usr1_ {};
};

}  // namespace

int local_workers_to_start(const Config& config, const EnvMap& env) {
  if (env.count(kLocalLauncherVariable)) return 0;
  const DistEnvironment outer = detect_environment(env);
  if (config.dist.nproc_per_node > 0) {
    if (outer.world_size > 1) {
      throw UserError("--nproc-per-node starts workers itself, but this process is already rank " +
                      std::to_string(outer.rank) + " of " + std::to_string(outer.world_size) + " (started by " +
                      outer.launcher + ") (hint: leave out --nproc-per-node under torchrun, srun or mpirun)");
    }
    return config.dist.nproc_per_node;
  }
  if (config.run.strategy != "mirrored" || config.run.device == "cpu" || outer.world_size > 1) return 0;
  if (!torch::cuda::is_available()) return 0;
  const int gpus = std::min<int>(config.run.num_gpus, static_cast<int>(torch::cuda::device_count()));
  return gpus > 1 ? gpus : 0;
}

int launch_local_workers(int workers, const Config& config, int argc, const char* const* argv,
                         const std::string& config_text) {
  // Fail once, here, rather than once per worker: a device or process
  // group this build or machine lacks (plan_run checked the rest).
  checked_backend(config.dist.backend, resolve_device(config.run.device));
  Supervisor supervisor(workers, argc, argv, config_text);
  return supervisor.run();
}

void exit_quietly_if_launcher_stops_us(const DistEnvironment& env, std::chrono::milliseconds patience) {
  if (!env.local_launcher) return;
  // The launcher's SIGTERM sets the flag while this waits; whatever
  // handled the stop signals before is back afterwards.
  constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};
  constexpr int kCount = sizeof kStopSignals / sizeof kStopSignals[0];
  struct sigaction before[kCount];
  for (int i = 0; i < kCount; ++i) ::sigaction(kStopSignals[i], nullptr, &before[i]);
  install_stop_signals();
  const auto deadline = Clock::now() + patience;
  while (stop_signal() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (const int sig = stop_signal()) {
    std::fflush(nullptr);
    std::cout.flush();
    std::_Exit(128 + sig);
  }
  for (int i = 0; i < kCount; ++i) ::sigaction(kStopSignals[i], &before[i], nullptr);
}

void let_rank_zero_report(int code) {
  // Bad input is what every rank meets alike (the same files, the same
  // flags); a failed collective waited for the launcher already, and any
  // other error is this rank's own, reported at once.
  try {
    const DistEnvironment env = detect_environment(process_environment());
    if (code == kExitBadInput && env.rank != 0) {
      exit_quietly_if_launcher_stops_us(env, std::chrono::seconds(kRankZeroReportsSeconds));
    }
  } catch (const std::exception&) {
    // Variables too broken to tell the rank: this process reports.
  }
}

}  // namespace cifar
