// Optimisers from the config: Adam (the original's), AdamW, SGD with
// momentum / Nesterov. Two parameter groups: conv and linear weights get the
// L2 weight decay (regularization_factor), biases and norm parameters none.
#pragma once
#include <torch/torch.h>

#include "config/config.h"
#include "models/net.h"

namespace cifar {

// How a step updates a group's tensors. torch::optim's Adam, AdamW and SGD
// update one parameter at a time, about nine small kernels each: some 550
// launches per ResNet-18 Adam step, host time a GPU waits on. kForeach does the
// same arithmetic with ATen's _foreach_* ops (one multi-tensor kernel per op
// and group on CUDA), as PyTorch's Python optimisers do by default on CUDA.
// On the CPU those ops run the per-tensor ops in turn, so both give the same
// numbers to the bit there (on CUDA they may differ in the last place), but
// one op at a time over every tensor streams the whole model through the
// cache once per op: a few percent slower on the CPU (docs/BENCHMARKS.md).
// kAuto therefore takes foreach where the parameters are on a GPU and
// torch::optim's per-tensor step elsewhere.
enum class StepKernels { kAuto, kForeach, kPerTensor };

// The optimisers keep torch::optim's classes and state objects, so
// checkpoints, load() and the learning-rate setters below work on both.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& config, Net& model,
                                                        StepKernels kernels = StepKernels::kAuto);

double get_learning_rate(const torch::optim::Optimizer& optimizer);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Drops every gradient instead of zeroing it, as zero_grad() does by default
// from LibTorch 2.0 (1.13 zeroes): backward then writes the first gradient
// rather than adding it to zeros, one fill kernel per tensor fewer on a GPU,
// and both versions behave alike. Everything that reads gradients takes an
// undefined one as zeros (the all-reduce, clipping, the optimisers).
void clear_gradients(torch::optim::Optimizer& optimizer);

// Scales the gradients so their global L2 norm is at most `max_norm`:
// torch::nn::utils::clip_grad_norm_'s arithmetic, without the read of the
// norm it returns, which makes the host wait for a GPU at every step.
void clip_gradients(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace cifar
