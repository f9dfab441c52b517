// --time-budget's plan, and its corrections. The plan is made before the
// first step from a few timed steps (training/time_budget.h), so that
// one-cycle and cosine schedules know their length from the start. A few
// steps misjudge an epoch by some percent (its validation, the epoch's
// callbacks), and a shared machine's speed drifts by 10% over a run, so
// every epoch's end checks the plan against the mean epoch so far and
// moves it either way; the schedule stretches or shrinks to the new length
// from there. The plan is this callback's state, kept in checkpoints, so a
// resumed run keeps it (a resumed process, which cannot time the whole
// run, corrects nothing).
#pragma once
#include <iosfwd>
#include <nlohmann/json.hpp>

#include "training/callback.h"

namespace cifar {

struct BudgetPlan {
  double budget_seconds = 0;
  int requested_epochs = 0;       // --epochs (the smaller wins)
  int epochs = 0;                 // the plan
  double images_per_second = 0;   // the timed steps'
  double epoch_seconds = 0;       // an epoch's steps and its validation, from the timed steps
  double final_eval_seconds = 0;  // the test split, as the run evaluates it
  double measure_seconds = 0;     // the timing itself, part of the budget
  int epochs_from_steps = 0;      // the plan before any epoch corrected it
  double timed_epoch_seconds = 0; // the mean epoch so far, validation included; 0 before the first ends

  // Epochs that fit when `done` epochs took `spent` seconds (the timing
  // included) and each further one takes `per_epoch`: at least `at_least`,
  // at most requested_epochs.
  int epochs_that_fit(int done, double spent, double per_epoch, int at_least) const;
  // The plan after `done` epochs of `mean` seconds, the last of them
  // `last`, `spent` seconds in all (the timing included): what fits at the
  // slower of the two, lengthened only when one more epoch fits even 5%
  // slower, so that noise does not move the schedule back and forth.
  int corrected(int done, double spent, double mean, double last) const;

  nlohmann::json to_json() const;
  static BudgetPlan from_json(const nlohmann::json& j);
  // "11 of 14 epochs fit in 10 min at 950 img/s (...)".
  std::string describe() const;
};

class TimeBudget : public Callback {
 public:
  explicit TimeBudget(std::ostream& out) : out_(out) {}
  std::string name() const override { return "time_budget"; }

  void set_plan(const BudgetPlan& plan) { plan_ = plan; }
  bool has_plan() const { return plan_.epochs > 0; }
  const BudgetPlan& plan() const { return plan_; }

  void on_epoch_begin(int epoch, TrainContext& ctx) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  nlohmann::json state() const override { return has_plan() ? plan_.to_json() : nlohmann::json::object(); }
  void load_state(const nlohmann::json& state) override;

 private:
  std::ostream& out_;
  BudgetPlan plan_;
  bool timing_ = false;  // this process started the run at its first step
  double fit_seconds_before_ = 0;  // the context's fit_seconds() at the last epoch's end
};

}  // namespace cifar
