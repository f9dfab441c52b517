// The gradient all-reduce's data: the model's gradients grouped into
// buckets (kGradientBucketBytes), filled by gradient hooks during the
// backward pass and launched in order as each fills, as PyTorch's DDP does;
// and tensors flattened by type for the few collectives outside a step.
#pragma once
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/torch.h>

#include <cstddef>
#include <functional>
#include <vector>

#include "distributed/process_group.h"

namespace cifar {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

// Tensors grouped by dtype and device into one flat buffer each, so a
// model's hundred-odd parameters cost a few collectives, not a hundred.
struct FlatGroup {
  torch::Tensor flat;
  std::vector<torch::Tensor> parts;
};
std::vector<FlatGroup> flatten_by_type(const std::vector<torch::Tensor>& tensors);
// Copies `g.flat` back into its parts.
void unflatten(const FlatGroup& g);

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

  // Groups the parameters that require a gradient into buckets of at most
  // cap_bytes, one type and device each, and gives each its slot.
  void build();
  // Whether a parameter's requires_grad changed since build().
  bool layout_changed() const;
  // Launch strictly in bucket order: ranks must issue collectives in the
  // same order, and the order in which hooks fire is not a promise.
  void launch_ready();
  // A hook's gradient for parameter k: added into its slot; the bucket is
  // launched once every parameter's last pass has arrived.
  void on_gradient(size_t k, const torch::Tensor& grad);
};

}  // namespace cifar
