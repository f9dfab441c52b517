// Lookahead (Zhang et al. 2019) as airbench94 uses it: slow weights that
// follow the trained ("fast") ones, pulled toward them every few steps,
// after which the fast weights restart from the slow. The pull weakens as
// training ends: the slow weights keep decay = 0.95^5 x (step/total)^3 of
// themselves, so early on they are the fast weights and late they average
// over hundreds of steps. Batch-norm statistics are averaged as well.
// Also synced at every epoch's last step, so validation, checkpoints and
// the final model are the slow weights.
#pragma once
#include <vector>

#include "training/callback.h"

namespace cifar {

class Lookahead : public Callback {
 public:
  static constexpr int kEvery = 5;  // steps between syncs, airbench's

  std::string name() const override { return "lookahead"; }
  void on_train_begin(TrainContext& ctx) override;
  void on_batch_end(int64_t step_in_epoch, const Logs& running, TrainContext& ctx) override;
  NamedTensors tensor_state() const override;
  void load_tensor_state(const NamedTensors& tensors) override;

  // The share of themselves the slow weights keep at `step` of `total`.
  static double decay(int64_t step, int64_t total);

 private:
  void sync(TrainContext& ctx, double decay);
  std::vector<torch::Tensor> slow_;
};

}  // namespace cifar
