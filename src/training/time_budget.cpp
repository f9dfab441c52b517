#include "training/time_budget.h"

#include <algorithm>

namespace cifar {
namespace {

// Steps timed, after one untimed step that pays for the kernels' first
// use (oneDNN primitives, cuDNN autotuning): enough for a steady rate,
// a second or two on two CPU cores.
constexpr int kTimedSteps = 4;
// Images for the evaluation rate: a tenth of a validation split.
constexpr int64_t kTimedEvalImages = 500;

}  // namespace

BudgetPlan plan_time_budget(Trainer& trainer, double budget_seconds, int64_t final_views) {
  BudgetPlan plan;
  plan.budget_seconds = budget_seconds;
  plan.requested_epochs = trainer.epochs();
  const Trainer::Timings t = trainer.time_steps_and_evaluation(kTimedSteps, kTimedEvalImages);
  plan.images_per_second = static_cast<double>(trainer.batch_size()) / std::max(t.step_seconds, 1e-9);
  plan.epoch_seconds = t.step_seconds * static_cast<double>(trainer.steps_per_epoch()) +
                       t.eval_image_seconds * static_cast<double>(trainer.validation_images());
  plan.final_eval_seconds = t.eval_image_seconds * static_cast<double>(final_views);
  plan.measure_seconds = t.seconds;
  // Epochs already trained (a resume that is given a budget) count as done.
  const int done = trainer.start_epoch();
  plan.epochs = plan.epochs_that_fit(done, plan.measure_seconds, plan.epoch_seconds, done + 1);
  plan.epochs_from_steps = plan.epochs;
  trainer.set_epochs(plan.epochs);
  return plan;
}

}  // namespace cifar
