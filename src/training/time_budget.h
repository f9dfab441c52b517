// --time-budget: how many epochs fit. The run's own first steps are timed
// (on a copy of its state, so the run itself is untouched), and a
// validation pass and the final evaluation estimated from the model's
// evaluation speed; the epochs are then fixed before the first step, so
// one-cycle and cosine schedules know their length from the start, and a
// resumed run keeps the plan its checkpoint records.
#pragma once
#include <nlohmann/json.hpp>

#include "training/trainer.h"

namespace cifar {

struct BudgetPlan {
  double budget_seconds = 0;
  int requested_epochs = 0;   // --epochs (the smaller wins)
  int epochs = 0;             // the plan
  double images_per_second = 0;
  double epoch_seconds = 0;       // an epoch's steps and its validation
  double final_eval_seconds = 0;  // the test split, as the run evaluates it
  double measure_seconds = 0;     // the timing itself, part of the budget

  nlohmann::json to_json() const;
  // "11 of 14 epochs fit in 10 min at 950 img/s (...)".
  std::string describe() const;
};

// Plans `trainer`'s epochs for `budget_seconds`, counted from now, given
// the evaluation the run makes after training, as images through the model
// (`final_views`: the test split's, once per TTA view, and calibration's).
// At least one epoch is planned, whatever the budget. Every rank plans
// from the slowest rank's timings, so all agree.
BudgetPlan plan_time_budget(Trainer& trainer, double budget_seconds, int64_t final_views);

}  // namespace cifar
