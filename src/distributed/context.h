// The only place that knows whether the run is data-parallel. The trainer
// calls these at world size 1 too, where they cost nothing, so one code path
// serves one process and many.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

namespace cifar {

class Net;

class DistributedContext {
 public:
  virtual ~DistributedContext() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  virtual int local_rank() const { return 0; }
  virtual int local_world_size() const { return 1; }
  bool is_writer() const { return rank() == 0; }
  // Sums `t` across ranks in place.
  virtual void all_reduce_sum(torch::Tensor& /*t*/) {}
  // Element-wise maximum across ranks, in place (stop flags every rank must agree on).
  virtual void all_reduce_max(torch::Tensor& /*t*/) {}
  // Copies `t` from rank `root` to every rank, in place.
  virtual void broadcast(torch::Tensor& /*t*/, int /*root*/ = 0) {}
  // Called once by the Trainer with the model on its device: every rank
  // starts from rank 0's parameters and buffers, and the gradient hooks that
  // let sync_gradients overlap with the backward pass are installed.
  virtual void prepare_model(Net& /*model*/) {}
  // Every rank takes rank 0's parameters and buffers.
  virtual void broadcast_model(Net& /*model*/) {}
  // Called before a step's backward passes (one per micro-batch, 0 when this
  // rank has no samples in the step): the hooks start each bucket's
  // all-reduce during the last pass.
  virtual void begin_backward(int /*passes*/) {}
  // Averages the gradients of `params` across ranks.
  virtual void sync_gradients(const std::vector<torch::Tensor>& /*params*/) {}
  // Brings the model's buffers (batch-norm running statistics), which each
  // rank's training steps move apart, into agreement: rank 0's, or their
  // mean over ranks with --sync-bn. No forward pass in training mode reads
  // them, so the Trainer calls this where they are read or saved (before
  // validation, before a checkpoint, after training) rather than every
  // step: the result is the same, rank 0's statistics or, the running
  // averages being linear, the mean of the ranks'.
  virtual void sync_buffers() {}
  // Before the host reads device memory written after a step's
  // collectives (the metric sums): they must have finished, within
  // --dist-timeout. On NCCL the host does not otherwise wait for them, and
  // a copy queued behind a hung one would wait without end.
  virtual void wait_for_collectives() {}
  virtual void barrier() {}
  virtual std::string backend() const { return "none"; }
};

// World size 1: no rendezvous, every collective is the identity.
std::unique_ptr<DistributedContext> make_single_process_context();

}  // namespace cifar
