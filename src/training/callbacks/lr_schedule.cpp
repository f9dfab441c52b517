#include "training/callbacks/lr_schedule.h"

#include <cmath>
#include <iostream>

namespace cifar {

double LearningRateSchedule::rate_at(int64_t step, int64_t steps_per_epoch, int64_t total) const {
  const double kPi = 3.14159265358979323846;
  const double base = o_.base_lr;
  if (o_.kind == Kind::kStep) {
    return base * std::pow(o_.gamma, static_cast<double>(step / steps_per_epoch / o_.step_size));
  }
  total = std::max<int64_t>(total, 1);
  const int64_t warmup = warmup_steps(steps_per_epoch, total);
  if (o_.kind == Kind::kCosine) {
    if (step < warmup) return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
    const double t = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
    return base * 0.5 * (1.0 + std::cos(kPi * std::min(1.0, t)));
  }
  // One-cycle: linear rise from base/25 to base, then linear fall to ~0;
  // the triangular shape that the CIFAR-10 speed runs use.
  const double start = base / 25.0, end = base * 1e-3;
  if (step < warmup) return start + (base - start) * static_cast<double>(step) / static_cast<double>(warmup);
  const double t = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  return base + (end - base) * std::min(1.0, t);
}

int64_t LearningRateSchedule::warmup_steps(int64_t steps_per_epoch, int64_t total) const {
  int64_t warmup = static_cast<int64_t>(o_.warmup_epochs) * steps_per_epoch;
  // One-cycle's usual 30% rise; also for a warm-up that would fill the whole
  // run (a preset's warm-up under a short --epochs), which would end the run
  // at the peak rate, never decayed.
  if ((o_.kind == Kind::kOneCycle && warmup == 0) || warmup >= total) warmup = total * 3 / 10;
  return warmup;
}

void LearningRateSchedule::on_train_begin(TrainContext& ctx) {
  if (o_.kind != Kind::kStep && o_.warmup_epochs > 0 && o_.warmup_epochs >= ctx.epochs() && ctx.is_writer()) {
    std::cout << "note: --warmup-epochs " << o_.warmup_epochs << " is not shorter than the run (" << ctx.epochs()
              << " epochs): warming up over its first 30% instead\n";
  }
}

void LearningRateSchedule::on_batch_begin(int64_t, TrainContext& ctx) {
  const int64_t spe = ctx.steps_per_epoch();
  ctx.set_learning_rate(rate_at(ctx.global_step(), spe, spe * ctx.epochs()));
}

}  // namespace cifar
