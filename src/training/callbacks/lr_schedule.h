// Step-wise learning-rate schedules, a pure function of the global step so
// a resumed run needs no state beyond the step: cosine with linear warm-up,
// one-cycle, and step decay. ReduceLROnPlateau is its own callback.
#pragma once
#include "training/callback.h"

namespace cifar {

class LearningRateSchedule : public Callback {
 public:
  enum class Kind { kCosine, kOneCycle, kStep };
  struct Options {
    Kind kind = Kind::kCosine;
    double base_lr = 1e-3;
    int warmup_epochs = 0;
    int step_size = 30;      // kStep: epochs between decays
    double gamma = 0.1;      // kStep: decay factor
  };
  explicit LearningRateSchedule(Options options) : o_(options) {}

  std::string name() const override { return "lr_schedule"; }
  void on_train_begin(TrainContext& ctx) override;
  void on_batch_begin(int64_t step_in_epoch, TrainContext& ctx) override;

  // The rate for optimiser step `step` (0-based) of `total` steps.
  double rate_at(int64_t step, int64_t steps_per_epoch, int64_t total) const;
  int64_t warmup_steps(int64_t steps_per_epoch, int64_t total) const;

 private:
  Options o_;
};

}  // namespace cifar
