// The only place that knows whether the run is data-parallel. The trainer
// calls these at world size 1 too, where they cost nothing, so one code path
// serves one process and many.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

namespace cifar {

class DistributedContext {
 public:
  virtual ~DistributedContext() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  virtual int local_rank() const { return 0; }
  bool is_writer() const { return rank() == 0; }
  // Sums `t` across ranks in place.
  virtual void all_reduce_sum(torch::Tensor& /*t*/) {}
  // Copies `t` from rank `root` to every rank, in place.
  virtual void broadcast(torch::Tensor& /*t*/, int /*root*/ = 0) {}
  // Averages the gradients of `params` across ranks.
  virtual void sync_gradients(const std::vector<torch::Tensor>& /*params*/) {}
  virtual void barrier() {}
  virtual std::string backend() const { return "none"; }
};

// World size 1: no rendezvous, every collective is the identity.
std::unique_ptr<DistributedContext> make_single_process_context();

}  // namespace cifar
