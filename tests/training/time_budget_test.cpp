// The time budget's corrections: the mean epoch so far moves the plan the
// first steps made, either way, within --epochs, lengthening it only with
// room to spare; a resumed process keeps the plan it has.
#include <sstream>

#include "common/error.h"
#include "fake_train_context.h"
#include "training/callbacks/time_budget.h"

namespace cifar {
namespace {

// 100 s: 98 planned (2% margin), 1 s of timing, 10 s of final evaluation,
// epochs of 10 s by the timed steps: 8 fit.
BudgetPlan plan_of_eight() {
  BudgetPlan p;
  p.budget_seconds = 100;
  p.requested_epochs = 20;
  p.epoch_seconds = 10;
  p.final_eval_seconds = 10;
  p.measure_seconds = 1;
  p.images_per_second = 100;
  p.epochs = p.epochs_that_fit(0, p.measure_seconds, p.epoch_seconds, 1);
  p.epochs_from_steps = p.epochs;
  return p;
}

// Runs `epoch` through `budget` as taking `seconds`; returns the epochs
// the context holds after it.
int run_epoch(TimeBudget& budget, testing::FakeTrainContext& ctx, int epoch, double seconds) {
  budget.on_epoch_begin(epoch, ctx);
  ctx.step += ctx.per_epoch;
  ctx.seconds += seconds;
  Logs logs = testing::epoch_logs(0, epoch);
  budget.on_epoch_end(epoch, logs, ctx);
  return ctx.planned_epochs;
}

struct BudgetRun {
  std::ostringstream out;
  TimeBudget budget{out};
  testing::FakeTrainContext ctx;
  explicit BudgetRun(const BudgetPlan& plan) {
    budget.set_plan(plan);
    ctx.planned_epochs = plan.epochs;
  }
};

TEST(TimeBudgetPlan, TheFirstStepsPlanWhatFits) {
  const BudgetPlan p = plan_of_eight();
  EXPECT_EQ(p.epochs, 8);
  // At least the one asked for, at most --epochs.
  EXPECT_EQ(p.epochs_that_fit(0, 200, 10, 1), 1);
  EXPECT_EQ(p.epochs_that_fit(3, 200, 10, 4), 4);
  EXPECT_EQ(p.epochs_that_fit(0, 1, 0.001, 1), 20);
}

TEST(TimeBudgetPlan, SlowerEpochsShortenThePlanAndFasterOnesLengthenIt) {
  BudgetRun run(plan_of_eight());
  // 98 - 1 - 12 - 10 = 75 s left: 6 more epochs of 12 s.
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 0, 12), 7);
  EXPECT_EQ(run.budget.plan().epochs, 7);
  EXPECT_EQ(run.budget.plan().epochs_from_steps, 8);
  EXPECT_EQ(run.out.str(), "Time budget: the first epoch took 12.0 s with validation (10.0 s planned): 7 of 20 "
                           "epochs fit\n");
  // 16 s more: 14 s an epoch, the last 16 s; 98 - 1 - 28 - 10 = 59 s
  // left, 3 more at the slower of the two.
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 1, 16), 5);
  EXPECT_DOUBLE_EQ(run.budget.plan().timed_epoch_seconds, 14);
  EXPECT_NE(run.out.str().find("Time budget: epochs take 14.0 s with validation and the last 16.0 s (10.0 s "
                               "planned): 5 of 20"),
            std::string::npos)
      << run.out.str();
  // A fast third epoch: 10 s an epoch, 57 s left, 5 more even at 10.5 s.
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 2, 2), 8);
  EXPECT_EQ(run.budget.plan().epochs, 8);
  EXPECT_NE(run.out.str().find("epochs take 10.0 s with validation and the last 2.0 s (10.0 s planned): 8 of 20"),
            std::string::npos)
      << run.out.str();
}

// A machine that slows down late: five epochs of 10 s, then 13 s. The mean
// (10.5 s) still fits all 8, and would until the eighth ran past the budget
// (1 + 50 + 3 x 13 + 10 = 100 s of 98); the last epoch's 13 s shortens the
// plan to 7 at the sixth's end, so the seventh, the last, has the
// schedule's end to anneal in.
TEST(TimeBudgetPlan, ASlowingMachineShortensThePlanAnEpochSooner) {
  BudgetRun run(plan_of_eight());
  for (int epoch = 0; epoch < 5; ++epoch) ASSERT_EQ(run_epoch(run.budget, run.ctx, epoch, 10), 8);
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 5, 13), 7);
  EXPECT_NE(run.out.str().find("with validation and the last 13.0 s (10.0 s planned): 7 of 20 epochs fit"),
            std::string::npos)
      << run.out.str();
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 6, 13), 7);
}

TEST(TimeBudgetPlan, LengthensOnlyWhenTheEpochFitsAtAFivePercentSlowerMean) {
  // 9.5 s: 77.5 s left, 8 more at 9.5 s but 7 at 9.975 s: kept at 8.
  BudgetRun close(plan_of_eight());
  EXPECT_EQ(run_epoch(close.budget, close.ctx, 0, 9.5), 8);
  EXPECT_EQ(close.out.str(), "");
  // 9 s: 78 s left, 8 more even at 9.45 s: 9.
  BudgetRun clear(plan_of_eight());
  EXPECT_EQ(run_epoch(clear.budget, clear.ctx, 0, 9), 9);
}

TEST(TimeBudgetPlan, AFasterFirstEpochLengthensItWithinTheEpochsAsked) {
  BudgetRun run(plan_of_eight());
  // 98 - 1 - 8 - 10 = 79 s left: 9 more epochs of 8 s.
  EXPECT_EQ(run_epoch(run.budget, run.ctx, 0, 8), 10);
  BudgetRun fast(plan_of_eight());
  EXPECT_EQ(run_epoch(fast.budget, fast.ctx, 0, 0.5), 20);
}

TEST(TimeBudgetPlan, EpochsAsPlannedChangeNothingAndSayNothing) {
  BudgetRun run(plan_of_eight());
  for (int epoch = 0; epoch < 8; ++epoch) EXPECT_EQ(run_epoch(run.budget, run.ctx, epoch, 10.5), 8);
  EXPECT_EQ(run.out.str(), "");
  EXPECT_DOUBLE_EQ(run.budget.plan().timed_epoch_seconds, 10.5);
}

TEST(TimeBudgetPlan, AResumedProcessKeepsItsPlan) {
  // Resumed inside the first epoch: the time spent before is unknown.
  std::ostringstream out;
  TimeBudget inside(out);
  inside.load_state(plan_of_eight().to_json());
  ASSERT_TRUE(inside.has_plan());
  testing::FakeTrainContext ctx;
  ctx.planned_epochs = 8;
  ctx.step = 1;
  EXPECT_EQ(run_epoch(inside, ctx, 0, 30), 8);
  // Resumed after a correction: that plan, restored whole, and no more.
  BudgetRun first(plan_of_eight());
  ASSERT_EQ(run_epoch(first.budget, first.ctx, 0, 12), 7);
  TimeBudget resumed(out);
  resumed.load_state(first.budget.state());
  EXPECT_EQ(resumed.plan().to_json(), first.budget.plan().to_json());
  testing::FakeTrainContext later;
  later.planned_epochs = 7;
  later.step = later.per_epoch;
  EXPECT_EQ(run_epoch(resumed, later, 1, 60), 7);
  EXPECT_EQ(out.str(), "");
  // Without a plan (none recorded), nothing to correct.
  TimeBudget none(out);
  none.load_state(nlohmann::json::object());
  EXPECT_FALSE(none.has_plan());
}

// A checkpoint is outside input: a damaged plan is refused, naming the
// field, before a resume could act on it (the resume turns a missing
// field's JSON error into one line about the checkpoint).
TEST(TimeBudgetPlan, ADamagedPlanInACheckpointIsRefusedNamingTheField) {
  std::ostringstream out;
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"epochs", -3}, {"epochs", 1e300}, {"budget_seconds", "nan"}, {"epoch_seconds", -1.0},
           {"final_eval_seconds", nullptr}}) {
    nlohmann::json damaged = plan_of_eight().to_json();
    damaged[key] = value;
    TimeBudget reader(out);
    try {
      reader.load_state(damaged);
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
    }
  }
  nlohmann::json missing = plan_of_eight().to_json();
  missing.erase("measure_seconds");
  EXPECT_THROW(TimeBudget(out).load_state(missing), nlohmann::json::exception);
}

}  // namespace
}  // namespace cifar
