#include "distributed/c10d_context.h"

#include <iostream>
#include <thread>
#include <vector>

#include "common/error.h"
#include "distributed/gradient_buckets.h"
#include "distributed/launcher.h"
#include "models/net.h"

namespace cifar {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Backend = compat::CollectiveBackend;

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
  C10dContext(C10dGroup group, DistEnvironment env, const C10dSettings& s, torch::Device device)
      : store_(std::move(group.store)),
        pg_(std::move(group.pg)),
        env_(std::move(env)),
        backend_(s.backend),
        timeout_(s.timeout),
        backend_timeout_(s.backend_timeout),
        waits_(s.waits),
        sync_bn_(s.sync_bn),
        device_(device),
        bucket_bytes_(s.bucket_bytes) {}

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

}  // namespace

std::unique_ptr<DistributedContext> make_c10d_context(C10dGroup group, const DistEnvironment& env,
                                                      const C10dSettings& settings, const torch::Device& device) {
  return std::make_unique<C10dContext>(std::move(group), env, settings, device);
}

}  // namespace cifar
