#include "distributed/process_group.h"

#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/printable.h"
#include "distributed/c10d_compat.h"
#include "distributed/launcher.h"
#include "models/net.h"

namespace cifar {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Backend = compat::CollectiveBackend;
using WorkPtr = c10::intrusive_ptr<c10d::Work>;

// A peer's failure reaches this rank as a broken collective and, within
// this, as our launcher's SIGTERM (see exit_quietly_if_launcher_stops_us).
constexpr std::chrono::seconds kLauncherStopsUsWithin{2};

std::string first_line(const std::exception& e) {
  std::string what = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) what = c10->what_without_backtrace();
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

std::string rank_text(const DistEnvironment& env) {
  return "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
}

// Tensors grouped by dtype and device into one flat buffer each, so a
// model's hundred-odd parameters cost a few collectives, not a hundred.
struct FlatGroup {
  torch::Tensor flat;
  std::vector<torch::Tensor> parts;
};

std::vector<FlatGroup> flatten_by_type(const std::vector<torch::Tensor>& tensors) {
  std::vector<FlatGroup> groups;
  for (const auto& t : tensors) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const FlatGroup& g) {
      return g.parts.front().scalar_type() == t.scalar_type() && g.parts.front().device() == t.device();
    });
    if (it == groups.end()) it = groups.insert(groups.end(), FlatGroup{});
    it->parts.push_back(t);
  }
  for (auto& g : groups) {
    std::vector<torch::Tensor> views;
    for (const auto& p : g.parts) views.push_back(p.detach().reshape(-1));
    g.flat = torch::cat(views);
  }
  return groups;
}

void unflatten(const FlatGroup& g) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& p : g.parts) {
    const int64_t n = p.numel();
    p.detach().copy_(g.flat.narrow(0, offset, n).view(p.sizes()));
    offset += n;
  }
}

// The state the gradient hooks write into. Hooks hold it weakly, so one that
// fires after its context is gone does nothing.
struct GradientBuckets {
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> params;  // indices into `params`
    size_t ready = 0;            // params whose last-pass gradient has arrived
    WorkPtr work;                // set once launched
  };
  std::vector<torch::Tensor> params;  // the model's, in registration order
  std::vector<bool> hooked;
  std::vector<bool> layout;           // requires_grad of each param when the buckets were built
  std::vector<int> bucket_of;         // -1 for a frozen parameter
  std::vector<torch::Tensor> slots;  // each parameter's place in its bucket, with its strides
  std::vector<int> passes_seen;
  std::vector<Bucket> buckets;        // in reverse registration order, the order backward produces them
  size_t next_launch = 0;
  int passes = 0;
  bool active = false;
  size_t cap_bytes = kGradientBucketBytes;
  std::function<WorkPtr(torch::Tensor&)> launch;  // starts an asynchronous sum all-reduce

  void build() {
    buckets.clear();
    layout.assign(params.size(), false);
    bucket_of.assign(params.size(), -1);
    slots.assign(params.size(), torch::Tensor());
    passes_seen.assign(params.size(), 0);
    std::vector<std::vector<size_t>> groups;
    size_t bytes = 0;
    for (size_t k = params.size(); k-- > 0;) {
      const auto& p = params[k];
      layout[k] = p.requires_grad();
      if (!p.requires_grad()) continue;
      const size_t size = static_cast<size_t>(p.numel()) * p.element_size();
      const bool same_kind = !groups.empty() && params[groups.back().front()].scalar_type() == p.scalar_type() &&
                             params[groups.back().front()].device() == p.device();
      if (groups.empty() || !same_kind || bytes + size > cap_bytes) {
        groups.emplace_back();
        bytes = 0;
      }
      groups.back().push_back(k);
      bytes += size;
    }
    for (const auto& g : groups) {
      Bucket b;
      int64_t numel = 0;
      for (size_t k : g) numel += params[k].numel();
      b.flat = torch::zeros({numel}, params[g.front()].options().requires_grad(false));
      int64_t offset = 0;
      for (size_t k : g) {
        const auto& p = params[k];
        bucket_of[k] = static_cast<int>(buckets.size());
        // The parameter's own strides: the averaged gradient is handed to
        // the optimiser as this view, and AccumulateGrad and the foreach
        // optimisers want a gradient laid out as its parameter.
        auto part = b.flat.narrow(0, offset, p.numel());
        slots[k] = p.is_non_overlapping_and_dense() ? part.as_strided(p.sizes(), p.strides(), part.storage_offset())
                                                    : part.view(p.sizes());
        offset += p.numel();
      }
      b.params = g;
      buckets.push_back(std::move(b));
    }
  }

  bool layout_changed() const {
    for (size_t k = 0; k < params.size(); ++k) {
      if (params[k].requires_grad() != layout[k]) return true;
    }
    return false;
  }

  // Launch strictly in bucket order: ranks must issue collectives in the
  // same order, and the order in which hooks fire is not a promise.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].params.size()) {
      buckets[next_launch].work = launch(buckets[next_launch].flat);
      ++next_launch;
    }
  }

  void on_gradient(size_t k, const torch::Tensor& grad) {
    if (!active || bucket_of[k] < 0 || passes_seen[k] >= passes) return;
    torch::NoGradGuard no_grad;
    auto& s = slots[k];
    if (passes_seen[k] == 0) s.copy_(grad);
    else s.add_(grad);
    if (++passes_seen[k] == passes && ++buckets[bucket_of[k]].ready == buckets[bucket_of[k]].params.size()) {
      launch_ready();
    }
  }
};

// What a broken group's threads may still touch, never destroyed: the
// vector is allocated once and not freed, so no destructor runs at exit.
struct AbandonedGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> pg;
  std::shared_ptr<GradientBuckets> buckets;
};
std::vector<AbandonedGroup>& abandoned_groups() {
  static auto* groups = new std::vector<AbandonedGroup>;
  return *groups;
}

class C10dContext final : public DistributedContext {
 public:
  C10dContext(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Backend> pg, DistEnvironment env,
              std::string backend, milliseconds timeout, milliseconds backend_timeout, HostWaits waits, bool sync_bn,
              torch::Device device, size_t bucket_bytes)
      : store_(std::move(store)),
        pg_(std::move(pg)),
        env_(std::move(env)),
        backend_(std::move(backend)),
        timeout_(timeout),
        backend_timeout_(backend_timeout),
        waits_(waits),
        sync_bn_(sync_bn),
        device_(device),
        bucket_bytes_(bucket_bytes) {}

  ~C10dContext() override {
    if (!broken_) {
      try {
        compat::shutdown_backend(*pg_);
      } catch (const std::exception& e) {
        std::cerr << "warning: " << rank_text(env_) << ": closing the " << backend_ << " group: " << first_line(e) << "\n";
      }
      return;
    }
    // A group with a dead or hung peer cannot be shut down: its destructor
    // joins worker threads that may still be waiting on that peer. The
    // process is about to exit with an error, so it is left to the exit,
    // held where leak checkers see it is still in use.
    abandoned_groups().push_back({std::move(store_), std::move(pg_), std::move(buckets_)});
  }

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  int local_rank() const override { return env_.local_rank; }
  int local_world_size() const override { return env_.local_world_size; }
  std::string backend() const override { return backend_; }

  void all_reduce_sum(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::SUM, "all-reduce", Reader::kHost); }
  void all_reduce_max(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::MAX, "all-reduce (max)", Reader::kHost); }
  void broadcast(torch::Tensor& t, int root) override { broadcast(t, root, Reader::kHost); }

  // An all-reduce of one number rather than c10d's barrier: NCCL's barrier
  // guesses each rank's GPU from its rank, which is wrong across machines.
  void barrier() override {
    auto t = torch::zeros({1}, torch::kFloat32);
    reduce(t, c10d::ReduceOp::SUM, "barrier", Reader::kHost);
  }

  void broadcast_model(Net& model) override {
    torch::NoGradGuard no_grad;
    for (auto& g : flatten_by_type(model.parameters())) {
      broadcast(g.flat, 0);
      unflatten(g);
    }
    for (auto& g : flatten_by_type(model.buffers())) {
      broadcast(g.flat, 0);
      unflatten(g);
    }
    if (&model == model_) buffers_moved_ = false;
  }

  void prepare_model(Net& model) override {
    model_ = &model;
    broadcast_model(model);
    // Fresh bucket state: hooks left on another model's parameters hold
    // the old one weakly and fall silent.
    buckets_ = std::make_shared<GradientBuckets>();
    buckets_->cap_bytes = bucket_bytes_;
    buckets_->launch = [this](torch::Tensor& flat) {
      return start("gradient all-reduce", [&] {
        std::vector<torch::Tensor> v{flat};
        c10d::AllreduceOptions o;
        o.timeout = backend_timeout_;
        return pg_->allreduce(v, o);
      });
    };
    buckets_->params = model.parameters();
    buckets_->hooked.assign(buckets_->params.size(), false);
    buckets_->build();
    install_hooks();
  }

  void begin_backward(int passes) override {
    if (!model_) return;
    auto& b = *buckets_;
    // --freeze-backbone flips requires_grad between epochs: frozen
    // parameters get no gradient, so they must not hold up a bucket.
    if (b.layout_changed()) {
      b.build();
      install_hooks();
    }
    // A gradient still lent from its bucket (a caller that did not clear
    // the last step's) becomes its own: the hooks are about to overwrite it.
    for (size_t k = 0; k < b.params.size(); ++k) {
      if (b.slots[k].defined() && b.params[k].grad().is_same(b.slots[k])) {
        b.params[k].mutable_grad() = b.slots[k].clone();
      }
    }
    std::fill(b.passes_seen.begin(), b.passes_seen.end(), 0);
    for (auto& bucket : b.buckets) {
      bucket.ready = 0;
      bucket.work.reset();
    }
    b.next_launch = 0;
    b.passes = passes;
    b.active = true;
  }

  void sync_gradients(const std::vector<torch::Tensor>& params) override {
    if (!model_) {
      sync_gradients_unbucketed(params);
      return;
    }
    auto& b = *buckets_;
    torch::NoGradGuard no_grad;
    settle();  // the last step's collectives
    // A backward run without begin_backward: no hook filled anything.
    if (!b.active) {
      b.next_launch = 0;
      for (auto& bucket : b.buckets) bucket.ready = 0;
    }
    // Buckets whose hooks did not all fire (a rank with no samples this
    // step, a parameter unused by the forward pass, a backward run without
    // begin_backward) take the local gradient as it stands: whatever the
    // passes accumulated, zeros where there is none.
    for (size_t i = b.next_launch; i < b.buckets.size(); ++i) {
      auto& bucket = b.buckets[i];
      for (size_t k : bucket.params) {
        if (b.active && b.passes > 0 && b.passes_seen[k] == b.passes) continue;
        const auto& g = b.params[k].grad();
        if (g.defined()) b.slots[k].copy_(g);
        else b.slots[k].zero_();
      }
      bucket.ready = bucket.params.size();
    }
    b.launch_ready();
    for (auto& bucket : b.buckets) {
      order(bucket.work, "gradient all-reduce");
      bucket.work.reset();
      if (env_.world_size > 1) bucket.flat.div_(env_.world_size);
      // The bucket itself is the gradient, no copy: the next step's
      // clear_gradients() lets go of it before its hooks write again.
      for (size_t k : bucket.params) b.params[k].mutable_grad() = b.slots[k];
    }
    b.active = false;
    buffers_moved_ = true;
  }

  void sync_buffers() override {
    if (model_ && buffers_moved_) {
      torch::NoGradGuard no_grad;
      for (auto& g : flatten_by_type(model_->buffers())) {
        if (sync_bn_ && g.flat.is_floating_point()) {
          reduce(g.flat, c10d::ReduceOp::SUM, "all-reduce", Reader::kDevice);
          g.flat.div_(env_.world_size);
        } else {
          broadcast(g.flat, 0, Reader::kDevice);
        }
        unflatten(g);
      }
      buffers_moved_ = false;
    }
    settle();  // validation and checkpoints read the model next
  }

  void wait_for_collectives() override { settle(); }

 private:
  template <class F>
  WorkPtr start(const char* what, F&& launch) {
    try {
      return launch();
    } catch (const std::exception& e) {
      fail(what, first_line(e));
    }
  }

  // Who reads a collective's result: the host (a metric sum, a flag), or
  // only the device's later kernels (gradients, buffers).
  enum class Reader { kHost, kDevice };

  // The host reads the result: the collective must have finished, or
  // failed, within --dist-timeout.
  void wait(const WorkPtr& work, const char* what) { wait_until(work, what, Clock::now() + timeout_); }

  void wait_until(const WorkPtr& work, const char* what, Clock::time_point deadline) {
    if (!work) return;
    try {
      if (waits_ == HostWaits::kBlocking) {
        work->wait(timeout_);
        return;
      }
      // Polled here rather than by Work::wait(timeout): that sleeps a whole
      // millisecond between its checks, on steps of a few milliseconds.
      for (int polls = 0; !work->isCompleted(); ++polls) {
        if (Clock::now() >= deadline) {
          fail(what, "no answer within --dist-timeout " + std::to_string(timeout_.count() / 1000) + " s");
        }
        if (polls < 200) std::this_thread::yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (auto error = work->exception()) std::rethrow_exception(error);
      work->wait();  // no timeout: only orders this thread's stream after it
    } catch (const UserError&) {
      throw;
    } catch (const std::exception& e) {
      fail(what, describe(e));
    }
  }

  std::string describe(const std::exception& e) const {
    std::string detail = first_line(e);
    // Gloo says "timed out"; NCCL's work "ran for N milliseconds before timing out".
    if (detail.find("timed out") != std::string::npos || detail.find("Timed out") != std::string::npos ||
        detail.find("before timing out") != std::string::npos) {
      detail = "no answer within --dist-timeout " + std::to_string(timeout_.count() / 1000) + " s (" + detail + ")";
    }
    return detail;
  }

  // Only the device reads the result: stream-ordered, the host checks it at
  // the next step's settle() (kStreamOrdered), or waits now (kBlocking).
  void order(const WorkPtr& work, const char* what) {
    if (!work) return;
    if (waits_ == HostWaits::kBlocking) {
      wait(work, what);
      return;
    }
    try {
      work->wait();  // without a timeout: NCCL's does not block the host then
    } catch (const std::exception& e) {
      fail(what, describe(e));  // TORCH_NCCL_BLOCKING_WAIT=1 blocks, and times out, here
    }
    in_flight_.push_back({work, what, Clock::now() + timeout_});
  }

  void settle() {
    for (const auto& w : in_flight_) wait_until(w.work, w.what, w.deadline);
    in_flight_.clear();
  }

  [[noreturn]] void fail(const std::string& what, const std::string& detail) {
    broken_ = true;
    exit_quietly_if_launcher_stops_us(env_, kLauncherStopsUsWithin);
    throw UserError(rank_text(env_) + ": " + what + " failed: " + detail +
                        " (hint: another rank stopped or hung, see its output; raise --dist-timeout if a step is "
                        "just slow)",
                    kExitRuntime);
  }

  // NCCL reduces only CUDA tensors; the trainer's metric sums live on the CPU.
  torch::Tensor comm_tensor(const torch::Tensor& t) const {
    torch::Tensor c = t;
    if (backend_ == "nccl" && !t.is_cuda()) c = t.to(device_);
    return c.is_contiguous() ? c : c.contiguous();
  }

  void reduce(torch::Tensor& t, c10d::ReduceOp op, const char* what, Reader reader) {
    if (reader == Reader::kHost) settle();  // copying `t` to the device queues behind them
    auto comm = comm_tensor(t);
    auto work = start(what, [&] {
      std::vector<torch::Tensor> v{comm};
      c10d::AllreduceOptions o;
      o.reduceOp = op;
      o.timeout = backend_timeout_;
      return pg_->allreduce(v, o);
    });
    finish(work, what, comm, t, reader);
  }

  void broadcast(torch::Tensor& t, int root, Reader reader) {
    if (reader == Reader::kHost) settle();
    auto comm = comm_tensor(t);
    auto work = start("broadcast", [&] {
      std::vector<torch::Tensor> v{comm};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = backend_timeout_;
      return pg_->broadcast(v, o);
    });
    finish(work, "broadcast", comm, t, reader);
  }

  // A result that must be copied back into `t` is read by the host's copy.
  void finish(const WorkPtr& work, const char* what, const torch::Tensor& comm, torch::Tensor& t, Reader reader) {
    if (reader == Reader::kDevice && comm.is_same(t)) {
      order(work, what);
      return;
    }
    wait(work, what);
    if (!comm.is_same(t)) t.copy_(comm);
  }

  void install_hooks() {
    auto& b = *buckets_;
    std::weak_ptr<GradientBuckets> weak = buckets_;
    for (size_t k = 0; k < b.params.size(); ++k) {
      if (b.hooked[k] || !b.params[k].requires_grad()) continue;
      b.params[k].register_hook([weak, k](const torch::Tensor& grad) {
        if (auto s = weak.lock()) s->on_gradient(k, grad);
      });
      b.hooked[k] = true;
    }
  }

  void sync_gradients_unbucketed(const std::vector<torch::Tensor>& params) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) {
      if (!p.requires_grad()) continue;
      // No gradient counts as zeros, as in the bucketed path: every rank
      // must all-reduce the same tensors, whether it had samples or not.
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    if (grads.empty()) return;
    for (auto& g : flatten_by_type(grads)) {
      all_reduce_sum(g.flat);
      g.flat.div_(env_.world_size);
      unflatten(g);
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Backend> pg_;
  DistEnvironment env_;
  std::string backend_;
  milliseconds timeout_;          // --dist-timeout: ours to enforce
  milliseconds backend_timeout_;  // the backend's own; longer when ours is enforced by polling
  HostWaits waits_;
  bool sync_bn_;
  torch::Device device_;
  size_t bucket_bytes_;
  Net* model_ = nullptr;
  std::shared_ptr<GradientBuckets> buckets_;  // set by prepare_model
  struct InFlight {
    WorkPtr work;
    const char* what;
    Clock::time_point deadline;
  };
  std::vector<InFlight> in_flight_;  // stream-ordered, not yet seen finished
  bool buffers_moved_ = false;       // training steps since the last sync_buffers
  bool broken_ = false;
};

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

bool has_backend(const std::string& backend) {
  if (backend == "gloo") return CIFAR10_C10D_GLOO;
  if (backend == "nccl") return CIFAR10_C10D_NCCL;
  return false;
}

std::string checked_backend(const std::string& requested, const torch::Device& device) {
  // Gloo also reduces CUDA tensors (slower, through host memory), so a CUDA
  // build without NCCL still trains on several GPUs.
  const std::string backend = requested != "auto"                      ? requested
                              : device.is_cuda() && has_backend("nccl") ? "nccl"
                                                                        : "gloo";
  if (backend == "nccl" && !device.is_cuda()) {
    throw UserError("--dist-backend nccl needs CUDA devices, but this rank runs on " + device.str() +
                    " (hint: --dist-backend gloo for CPU training)");
  }
  if (backend == "nccl" && !has_backend("nccl")) {
    throw UserError("this LibTorch build has no NCCL process group (hint: --dist-backend gloo)");
  }
  if (backend == "gloo" && !has_backend("gloo")) {
    throw UserError("this build of cifar10 has no Gloo process group (LibTorch " + compat::torch_version() +
                    " without the gloo headers; hint: --dist-backend nccl on CUDA)");
  }
  return backend;
}

std::unique_ptr<DistributedContext> make_distributed_context(const DistConfig& config, const DistEnvironment& env,
                                                             const torch::Device& device, size_t bucket_bytes,
                                                             HostWaits waits) {
  if (env.world_size == 1 && config.backend == "auto") return make_single_process_context();
  const std::string backend = checked_backend(config.backend, device);
  const milliseconds timeout = std::chrono::seconds(config.timeout);
  if (waits == HostWaits::kAuto) waits = backend == "nccl" ? HostWaits::kStreamOrdered : HostWaits::kBlocking;
  // Polled waits enforce --dist-timeout; the backend's own (NCCL's
  // watchdog) is the backstop, so it must not fire first.
  const milliseconds backend_timeout =
      waits == HostWaits::kStreamOrdered ? timeout + std::chrono::seconds(kBackstopSeconds) : timeout;
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
  return std::make_unique<C10dContext>(std::move(store), std::move(pg), env, backend, timeout, backend_timeout, waits,
                                       config.sync_bn, device, bucket_bytes);
}

}  // namespace cifar
