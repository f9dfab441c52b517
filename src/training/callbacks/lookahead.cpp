#include "training/callbacks/lookahead.h"

#include <cmath>

#include "common/error.h"
#include "models/net.h"

namespace cifar {
namespace {

// The tensors that follow: parameters, and the floating-point buffers
// (batch-norm statistics; not its integer batch count).
std::vector<torch::Tensor> followed(Net& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p);
  for (const auto& b : model.buffers()) {
    if (b.is_floating_point()) out.push_back(b);
  }
  return out;
}

}  // namespace

double Lookahead::decay(int64_t step, int64_t total) {
  const double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(std::max<int64_t>(total, 1)));
  return std::pow(0.95, kEvery) * t * t * t;
}

void Lookahead::on_train_begin(TrainContext& ctx) {
  const auto fast = followed(ctx.model());
  if (slow_.empty()) {
    torch::NoGradGuard no_grad;
    for (const auto& t : fast) slow_.push_back(t.detach().clone());
    return;
  }
  // A resumed run's, from its checkpoint: they must fit this model.
  bool fits = slow_.size() == fast.size();
  for (size_t i = 0; fits && i < fast.size(); ++i) {
    fits = slow_[i].sizes() == fast[i].sizes() && slow_[i].scalar_type() == fast[i].scalar_type();
  }
  if (!fits) throw UserError("the checkpoint's lookahead weights do not fit its model (corrupt?)");
}

void Lookahead::on_batch_end(int64_t step, const Logs&, TrainContext& ctx) {
  if (ctx.global_step() % kEvery != 0 && step + 1 < ctx.steps_per_epoch()) return;
  sync(ctx, decay(ctx.global_step(), ctx.steps_per_epoch() * ctx.epochs()));
}

void Lookahead::sync(TrainContext& ctx, double d) {
  torch::NoGradGuard no_grad;
  auto fast = followed(ctx.model());
  for (size_t i = 0; i < fast.size(); ++i) {
    slow_[i].lerp_(fast[i].detach(), 1.0 - d);
    fast[i].detach().copy_(slow_[i]);
  }
}

NamedTensors Lookahead::tensor_state() const {
  NamedTensors out;
  for (size_t i = 0; i < slow_.size(); ++i) out["slow_" + std::to_string(i)] = slow_[i];
  return out;
}

void Lookahead::load_tensor_state(const NamedTensors& tensors) {
  std::vector<torch::Tensor> slow;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto it = tensors.find("slow_" + std::to_string(i));
    if (it == tensors.end()) throw UserError("the checkpoint's lookahead weights are incomplete (corrupt?)");
    slow.push_back(it->second.clone());
  }
  slow_ = std::move(slow);
}

}  // namespace cifar
