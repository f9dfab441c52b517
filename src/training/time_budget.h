// --time-budget: how many epochs fit. The run's own first steps are timed
// (on a copy of its state, so the run itself is untouched), and a
// validation pass and the final evaluation estimated from the model's
// evaluation speed; the epochs are then planned before the first step,
// and corrected as epochs are timed (callbacks/time_budget.h).
#pragma once
#include "training/callbacks/time_budget.h"
#include "training/trainer.h"

namespace cifar {

// Plans `trainer`'s epochs for `budget_seconds`, counted from now, given
// the evaluation the run makes after training, as images through the model
// (`final_views`: the test split's, once per TTA view, and calibration's).
// At least one epoch is planned, whatever the budget. Every rank plans
// from the slowest rank's timings, so all agree.
BudgetPlan plan_time_budget(Trainer& trainer, double budget_seconds, int64_t final_views);

}  // namespace cifar
