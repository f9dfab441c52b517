#include "distributed/rendezvous.h"

#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/printable.h"
#include "distributed/launcher.h"

namespace cifar {
namespace {

using std::chrono::milliseconds;
using Backend = compat::CollectiveBackend;

[[noreturn]] void rendezvous_failed(const DistEnvironment& env, std::string detail, int timeout_s) {
  exit_quietly_if_launcher_stops_us(env, kLauncherStopsUsWithin);
  // c10d says "Socket Timeout", "Timed out" or (FileStore) "Wait timeout"
  // without saying for what.
  if (detail.find("imeout") != std::string::npos || detail.find("imed out") != std::string::npos) {
    detail = "no answer from every rank within --dist-timeout " + std::to_string(timeout_s) + " s (" + detail + ")";
  }
  const std::string where =
      env.store_file.empty() ? env.master_addr + ":" + std::to_string(env.master_port) : env.store_file;
  std::string hint;
  if (!env.store_file.empty()) {
    hint = "check that all " + std::to_string(env.world_size) + " workers were started";
  } else if (env.rank == 0) {
    hint = "check that MASTER_PORT is free on this machine and that all " + std::to_string(env.world_size) +
           " ranks were started";
  } else {
    hint = "check MASTER_ADDR/MASTER_PORT, that rank 0 is running and reachable";
  }
  hint += "; --dist-timeout is " + std::to_string(timeout_s) + " s";
  throw UserError(rank_text(env) + ": cannot form the process group at " + where + ": " + detail + " (hint: " + hint +
                      ")",
                  kExitRuntime);
}

// Ranks that disagree on the group's shape would fail inside Gloo ("enforce
// fail ... sizeof(impl_) == bytes.size()") or wait for a rank that never
// comes; the store tells them first. Rank 0 publishes the world size, and
// every rank counts itself in under its number.
void check_group_shape(c10d::Store& store, const DistEnvironment& env) {
  if (store.add("joined_rank_" + std::to_string(env.rank), 1) > 1) {
    throw UserError(rank_text(env) + ": another process already joined the group as rank " + std::to_string(env.rank) +
                    " (hint: give each process its own RANK; or MASTER_PORT is another group's or program's)");
  }
  const std::string key = "world_size";
  if (env.rank == 0) {
    const std::string ws = std::to_string(env.world_size);
    store.set(key, std::vector<uint8_t>(ws.begin(), ws.end()));
    return;
  }
  const auto bytes = store.get(key);
  const std::string theirs(bytes.begin(), bytes.end());
  if (theirs != std::to_string(env.world_size)) {
    throw UserError(rank_text(env) + ": rank 0 started a group of " + printable(theirs) + " ranks, this rank one of " +
                    std::to_string(env.world_size) + " (hint: give every rank the same WORLD_SIZE)");
  }
}

// The store's client reads its answers with no deadline of its own: a
// program other than a c10d store on MASTER_PORT that accepts and never
// answers held a rank for as long as it kept the connection (forever, or
// 120 s with --dist-timeout 10). Forming the group gets the timeout twice
// (reaching rank 0, then the others' arrival) and a margin; past that, this
// rank says so and exits, as a timed-out collective would.
class RendezvousWatchdog {
 public:
  RendezvousWatchdog(milliseconds limit, std::string message)
      : thread_([this, limit, message = std::move(message)] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
          std::fflush(stdout);
          std::cerr << "error: " << message << std::endl;
          std::_Exit(kExitRuntime);
        }) {}
  ~RendezvousWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  RendezvousWatchdog(const RendezvousWatchdog&) = delete;
  RendezvousWatchdog& operator=(const RendezvousWatchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: it starts once the members above exist
};

// A MASTER_ADDR no resolver knows cost the whole --dist-timeout in
// retries, hundreds of warning lines, and an error blaming a missing peer.
// A temporary failure (EAI_AGAIN) is left to the store's own retries.
void check_master_resolves(const DistEnvironment& env) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int code = ::getaddrinfo(env.master_addr.c_str(), nullptr, &hints, &found);
  if (found) ::freeaddrinfo(found);
  if (code == EAI_NONAME || code == EAI_FAIL || code == EAI_NODATA) {
    throw UserError(rank_text(env) + ": MASTER_ADDR '" + printable(env.master_addr, 100) +
                    "' is no host this machine can resolve (" + ::gai_strerror(code) +
                    ") (hint: set MASTER_ADDR to rank 0's host name or IP address)");
  }
}

#if CIFAR10_C10D_GLOO
// GLOO_SOCKET_IFNAME's names, comma-separated as PyTorch reads them; none
// when it is unset. Gloo reports a missing one as a multi-line enforce
// failure, after the rendezvous; this names it and the interfaces the
// machine has, before (the other ranks would wait for this one).
std::vector<std::string> socket_interfaces(const DistEnvironment& env) {
  const char* variable = std::getenv("GLOO_SOCKET_IFNAME");
  if (variable == nullptr || *variable == '\0') return {};
  const std::string value = variable;
  std::vector<std::string> names;
  std::stringstream list(value);
  for (std::string name; std::getline(list, name, ',');) {
    if (name.empty()) continue;
    if (::if_nametoindex(name.c_str()) == 0) {
      std::string present;
      if (struct if_nameindex* all = ::if_nameindex()) {
        for (struct if_nameindex* i = all; i->if_index != 0; ++i) present += std::string(present.empty() ? "" : ", ") + i->if_name;
        ::if_freenameindex(all);
      }
      throw UserError(rank_text(env) + ": GLOO_SOCKET_IFNAME names '" + printable(name) +
                      "', which is no network interface of this machine (hint: one of " + present +
                      ", or unset it)");
    }
    names.push_back(name);
  }
  if (names.empty()) throw UserError(rank_text(env) + ": GLOO_SOCKET_IFNAME='" + printable(value) + "' names no interface");
  return names;
}

c10::intrusive_ptr<Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, const DistEnvironment& env,
                                      milliseconds timeout, const std::vector<std::string>& interfaces) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // GLOO_SOCKET_IFNAME picks the network interfaces as in PyTorch; a local
  // group stays on loopback whatever the hostname resolves to.
  if (!interfaces.empty()) {
    for (const std::string& name : interfaces) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    }
  } else if (is_loopback_host(env.master_addr)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  // Two threads, as PyTorch: one bucket's all-reduce runs while the next waits.
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
}
#endif

#if CIFAR10_C10D_NCCL
c10::intrusive_ptr<Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, const DistEnvironment& env,
                                      milliseconds timeout, const torch::Device& device) {
  // NCCL binds a communicator to the current device: this rank's GPU.
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
}
#endif

}  // namespace

C10dGroup form_group(const DistConfig& config, const DistEnvironment& env, const torch::Device& device,
                     const std::string& backend, milliseconds backend_timeout) {
  const milliseconds timeout = std::chrono::seconds(config.timeout);
#if CIFAR10_C10D_GLOO
  const std::vector<std::string> interfaces = backend == "gloo" ? socket_interfaces(env) : std::vector<std::string>{};
#endif

  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> pg;
  const int64_t limit_s = 2 * int64_t{config.timeout} + 10;
  RendezvousWatchdog watchdog(
      std::chrono::seconds(limit_s),
      rank_text(env) + ": the group did not form within " + std::to_string(limit_s) + " s (twice --dist-timeout " +
          std::to_string(config.timeout) + " s, and 10) at " +
          (env.store_file.empty() ? env.master_addr + ":" + std::to_string(env.master_port) : env.store_file) +
          " (hint: check that MASTER_PORT is rank 0's and no other program's, and that rank 0 is running)");
  try {
    c10::intrusive_ptr<c10d::Store> base;
    if (!env.store_file.empty()) {
      base = c10::make_intrusive<c10d::FileStore>(env.store_file, env.world_size);
      base->setTimeout(timeout);
    } else {
      check_master_resolves(env);
      const bool host = env.rank == 0 && !env.store_hosted_by_launcher;
      base = c10::make_intrusive<c10d::TCPStore>(
          env.master_addr,
          compat::tcp_store_options(host, env.world_size, timeout, static_cast<uint16_t>(env.master_port)));
    }
    // Our keys under a prefix of their own: torchrun's agent keeps its keys
    // in a shared store, and a restarted group must not read the last one's.
    store = c10::make_intrusive<c10d::PrefixStore>("cifar10/" + std::to_string(env.restart_count), base);
    check_group_shape(*store, env);
#if CIFAR10_C10D_NCCL
    if (backend == "nccl") pg = make_nccl(store, env, backend_timeout, device);
#endif
#if CIFAR10_C10D_GLOO
    if (backend == "gloo") pg = make_gloo(store, env, backend_timeout, interfaces);
#endif
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    rendezvous_failed(env, first_line(e), config.timeout);
  }
  return {std::move(store), std::move(pg)};
}

}  // namespace cifar
