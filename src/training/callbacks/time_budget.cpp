#include "training/callbacks/time_budget.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "common/error.h"
#include "reporting/format.h"
#include "training/callbacks/monitor.h"

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

int BudgetPlan::corrected(int done, double spent, double mean, double last) const {
  // The slower of the two: on a machine that is slowing down the last epoch
  // sees it first, so the plan shortens an epoch sooner, while the schedule
  // still has an epoch to anneal in. Shortened only at the end, a run stops
  // with its rate far from zero and loses more than the epoch.
  const double pace = std::max(mean, last);
  const int fit = epochs_that_fit(done, spent, pace, done);
  if (fit <= epochs) return fit;
  return std::max(epochs, epochs_that_fit(done, spent, pace * kLengthenSlack, done));
}

nlohmann::json BudgetPlan::to_json() const {
  return {{"budget_seconds", budget_seconds},         {"requested_epochs", requested_epochs},
          {"epochs", epochs},                         {"images_per_second", images_per_second},
          {"epoch_seconds", epoch_seconds},           {"final_eval_seconds", final_eval_seconds},
          {"measure_seconds", measure_seconds},       {"epochs_from_steps", epochs_from_steps},
          {"timed_epoch_seconds", timed_epoch_seconds}};
}

// A checkpoint is outside input: every field present, seconds and rates
// finite and not negative, epochs integers of zero or more (as --epochs).
BudgetPlan BudgetPlan::from_json(const nlohmann::json& j) {
  const auto seconds = [&](const char* key) {
    const auto& v = j.at(key);
    const double x = v.is_number() ? v.get<double>() : -1.0;
    if (!std::isfinite(x) || x < 0) {
      throw UserError(std::string("checkpoint state 'time_budget' field '") + key +
                      "' is not a finite number of zero or more (hint: resume from a checkpoint this version wrote)");
    }
    return x;
  };
  const auto epochs = [&](const char* key) {
    const int n = json_to_int(j, key);
    if (n < 0) {
      throw UserError(std::string("checkpoint state 'time_budget' field '") + key + "' is " + std::to_string(n) +
                      ", below 0 (hint: resume from a checkpoint this version wrote)");
    }
    return n;
  };
  BudgetPlan p;
  p.budget_seconds = seconds("budget_seconds");
  p.requested_epochs = epochs("requested_epochs");
  p.epochs = epochs("epochs");
  p.images_per_second = seconds("images_per_second");
  p.epoch_seconds = seconds("epoch_seconds");
  p.final_eval_seconds = seconds("final_eval_seconds");
  p.measure_seconds = seconds("measure_seconds");
  p.epochs_from_steps = epochs("epochs_from_steps");
  p.timed_epoch_seconds = seconds("timed_epoch_seconds");
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
  if (epoch == 0) {
    timing_ = has_plan() && ctx.global_step() == 0;
    fit_seconds_before_ = ctx.fit_seconds();
  }
}

void TimeBudget::on_epoch_end(int epoch, Logs& /*logs*/, TrainContext& ctx) {
  if (!timing_) return;
  // The slowest rank's time, so every rank corrects the plan alike.
  const int done = epoch + 1;
  plan_.timed_epoch_seconds = ctx.fit_seconds() / done;
  const double last = ctx.fit_seconds() - fit_seconds_before_;
  fit_seconds_before_ = ctx.fit_seconds();
  const int epochs = plan_.corrected(done, plan_.measure_seconds + ctx.fit_seconds(), plan_.timed_epoch_seconds, last);
  if (epochs == plan_.epochs) return;
  plan_.epochs = epochs;
  ctx.set_epochs(epochs);
  if (ctx.is_writer()) {
    out_ << "Time budget: " << (done == 1 ? "the first epoch took " : "epochs take ")
         << format_duration(plan_.timed_epoch_seconds) << " with validation ";
    if (done > 1) out_ << "and the last " << format_duration(last) << " ";
    out_ << "(" << format_duration(plan_.epoch_seconds) << " planned): " << epochs << " of "
         << plan_.requested_epochs << " epochs fit\n";
  }
}

}  // namespace cifar
