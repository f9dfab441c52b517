#include "training/time_budget.h"

#include <chrono>
#include <cmath>

#include "reporting/format.h"

namespace cifar {
namespace {

// Steps timed, after one untimed step that pays for the kernels' first
// use (oneDNN primitives, cuDNN autotuning): enough for a steady rate,
// a second or two on two CPU cores.
constexpr int kTimedSteps = 4;
// Images for the evaluation rate: a tenth of a validation split.
constexpr int64_t kTimedEvalImages = 500;
// Left unplanned: epochs vary by a few percent.
constexpr double kMargin = 0.04;

}  // namespace

nlohmann::json BudgetPlan::to_json() const {
  return {{"budget_seconds", budget_seconds}, {"requested_epochs", requested_epochs}, {"epochs", epochs},
          {"images_per_second", images_per_second}, {"epoch_seconds", epoch_seconds},
          {"final_eval_seconds", final_eval_seconds}, {"measure_seconds", measure_seconds}};
}

std::string BudgetPlan::describe() const {
  const std::string fit = epochs < requested_epochs
                              ? std::to_string(epochs) + " of " + std::to_string(requested_epochs) + " epochs fit"
                              : "all " + std::to_string(requested_epochs) + " epochs fit";
  return fit + " in " + format_duration(budget_seconds) + " at " +
         std::to_string(static_cast<int64_t>(std::lround(images_per_second))) + " img/s (an epoch " +
         format_duration(epoch_seconds) + " with its validation, the final evaluation " +
         format_duration(final_eval_seconds) + ")";
}

BudgetPlan plan_time_budget(Trainer& trainer, double budget_seconds, int64_t final_views) {
  const auto start = std::chrono::steady_clock::now();
  BudgetPlan plan;
  plan.budget_seconds = budget_seconds;
  plan.requested_epochs = trainer.epochs();
  const Trainer::Timings t = trainer.time_steps_and_evaluation(kTimedSteps, kTimedEvalImages);
  plan.images_per_second = static_cast<double>(trainer.batch_size()) / std::max(t.step_seconds, 1e-9);
  plan.epoch_seconds = t.step_seconds * static_cast<double>(trainer.steps_per_epoch()) +
                       t.eval_image_seconds * static_cast<double>(trainer.validation_images());
  plan.final_eval_seconds = t.eval_image_seconds * static_cast<double>(final_views);
  plan.measure_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double left = budget_seconds * (1.0 - kMargin) - plan.measure_seconds - plan.final_eval_seconds;
  const double fit = std::max(1.0, std::floor(left / std::max(plan.epoch_seconds, 1e-9)));
  // Epochs already trained (a resume that is given a budget) count as done.
  plan.epochs = static_cast<int>(std::min<double>(trainer.start_epoch() + fit, plan.requested_epochs));
  trainer.set_epochs(plan.epochs);
  trainer.set_budget_record(plan.to_json());
  return plan;
}

}  // namespace cifar
