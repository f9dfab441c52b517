#include "training/callbacks/time_budget.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "reporting/format.h"

namespace cifar {
namespace {

// Left unplanned: the last epochs, after the last correction, still vary
// by a few percent.
constexpr double kMargin = 0.02;
// Lengthening needs the extra epoch to fit at a mean this much slower.
constexpr double kLengthenSlack = 1.05;

}  // namespace

int BudgetPlan::epochs_that_fit(int done, double spent, double per_epoch, int at_least) const {
  const double left = budget_seconds * (1.0 - kMargin) - spent - final_eval_seconds;
  const double more = std::floor(std::max(0.0, left) / std::max(per_epoch, 1e-9));
  const double total = std::max<double>(done + std::min(more, 1e6), at_least);
  return static_cast<int>(std::min<double>(total, requested_epochs));
}

int BudgetPlan::corrected(int done, double spent, double mean) const {
  const int fit = epochs_that_fit(done, spent, mean, done);
  if (fit <= epochs) return fit;
  return std::max(epochs, epochs_that_fit(done, spent, mean * kLengthenSlack, done));
}

nlohmann::json BudgetPlan::to_json() const {
  return {{"budget_seconds", budget_seconds},         {"requested_epochs", requested_epochs},
          {"epochs", epochs},                         {"images_per_second", images_per_second},
          {"epoch_seconds", epoch_seconds},           {"final_eval_seconds", final_eval_seconds},
          {"measure_seconds", measure_seconds},       {"epochs_from_steps", epochs_from_steps},
          {"timed_epoch_seconds", timed_epoch_seconds}};
}

BudgetPlan BudgetPlan::from_json(const nlohmann::json& j) {
  BudgetPlan p;
  p.budget_seconds = j.at("budget_seconds").get<double>();
  p.requested_epochs = j.at("requested_epochs").get<int>();
  p.epochs = j.at("epochs").get<int>();
  p.images_per_second = j.at("images_per_second").get<double>();
  p.epoch_seconds = j.at("epoch_seconds").get<double>();
  p.final_eval_seconds = j.at("final_eval_seconds").get<double>();
  p.measure_seconds = j.at("measure_seconds").get<double>();
  p.epochs_from_steps = j.at("epochs_from_steps").get<int>();
  p.timed_epoch_seconds = j.at("timed_epoch_seconds").get<double>();
  return p;
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

void TimeBudget::load_state(const nlohmann::json& state) {
  if (state.contains("epochs")) plan_ = BudgetPlan::from_json(state);
}

void TimeBudget::on_epoch_begin(int epoch, TrainContext& ctx) {
  // Only a process that ran the run from its first step knows the time it
  // has spent; a resumed one keeps the plan its checkpoint holds.
  if (epoch == 0) timing_ = has_plan() && ctx.global_step() == 0;
}

void TimeBudget::on_epoch_end(int epoch, Logs& /*logs*/, TrainContext& ctx) {
  if (!timing_) return;
  // The slowest rank's time, so every rank corrects the plan alike.
  const int done = epoch + 1;
  plan_.timed_epoch_seconds = ctx.fit_seconds() / done;
  const int epochs = plan_.corrected(done, plan_.measure_seconds + ctx.fit_seconds(), plan_.timed_epoch_seconds);
  if (epochs == plan_.epochs) return;
  plan_.epochs = epochs;
  ctx.set_epochs(epochs);
  if (ctx.is_writer()) {
    out_ << "Time budget: " << (done == 1 ? "the first epoch took " : "epochs take ")
         << format_duration(plan_.timed_epoch_seconds) << " with validation (" << format_duration(plan_.epoch_seconds)
         << " planned): " << epochs << " of " << plan_.requested_epochs << " epochs fit\n";
  }
}

}  // namespace cifar
