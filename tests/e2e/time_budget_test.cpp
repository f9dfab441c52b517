// --time-budget as a user runs it: the epochs that fit are planned before
// the first step, corrected once by the first epoch, recorded, and kept by
// a resume; a run too long for an hour says so early.
#include <signal.h>

#include "e2e_util.h"

namespace cifar {
namespace {
using testing::Child;
using testing::run_cifar10;
using testing::TempDir;
using namespace e2e;

TEST(TimeBudget, PlansTheEpochsThatFitAndRecordsThePlan) {
  TempDir out("budget");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "200", "--time-budget", "15s", "--early-stopping-patience",
                                             "0", "--lr-schedule", "onecycle", "--skip-inference"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto summary = read_json(out / "results/training_summary.json");
  const auto& record = summary.at("time_budget");
  const int from_steps = record.at("epochs_from_steps").get<int>();
  const int planned = record.at("epochs").get<int>();
  EXPECT_GE(planned, 1);
  EXPECT_LT(planned, 200) << r.output;
  EXPECT_NE(r.output.find("Time budget: " + std::to_string(from_steps) + " of 200 epochs fit in 15.0 s at "),
            std::string::npos)
      << r.output;
  EXPECT_GT(record.at("timed_epoch_seconds").get<double>(), 0.0);
  // A correction says so when it moves the plan.
  if (planned != from_steps) {
    EXPECT_TRUE(r.output.find("Time budget: the first epoch took ") != std::string::npos ||
                r.output.find("Time budget: epochs take ") != std::string::npos)
        << r.output;
  }
  EXPECT_EQ(summary.at("epochs_run").get<int>(), planned);
  EXPECT_EQ(summary.at("stop_reason"), "completed: epoch " + std::to_string(planned) + " of " + std::to_string(planned));
  // The checkpoint holds the planned length, so a resume (and its schedule) keeps it.
  const auto meta = read_checkpoint((out / "checkpoints/latest_model.pt").string()).meta;
  EXPECT_EQ(meta.at("config").at("epochs").get<int>(), planned);
  EXPECT_EQ(meta.at("callbacks").at("time_budget").at("epochs").get<int>(), planned);
}

TEST(TimeBudget, EpochsGivenAlsoWinWhenSmaller) {
  TempDir out("budget_small");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "2", "--time-budget", "1h", "--skip-inference"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Time budget: all 2 epochs fit in 1 h 00 min"), std::string::npos) << r.output;
  EXPECT_EQ(read_json(out / "results/training_summary.json").at("epochs_run"), 2);
  // The timing runs on a copy of the state: without a budget, the same run.
  TempDir plain("budget_none");
  auto p = run_cifar10(tiny_run(plain.path(), {"--epochs", "2", "--time-budget", "none", "--skip-inference"}));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(p.output.find("Time budget"), std::string::npos) << p.output;
  expect_bit_identical(out / "checkpoints/latest_model.pt", plain / "checkpoints/latest_model.pt");
}

TEST(TimeBudget, AResumedRunKeepsThePlan) {
  TempDir out("budget_resume");
  Child run(tiny_run(out.path(), {"--epochs", "200", "--time-budget", "20s", "--early-stopping-patience", "0",
                                  "--skip-inference"}));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/", 300)) << run.output();
  run.send(SIGTERM);
  ASSERT_EQ(run.wait(300).exit_code, 143);
  const std::string latest = (out / "checkpoints/latest_model.pt").string();
  const int planned = read_checkpoint(latest).meta.at("callbacks").at("time_budget").at("epochs").get<int>();
  auto resumed = run_cifar10({"--resume", latest, "--data-dir", testing::data_root().string(),
                              "--skip-visualization"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("the run's plan of " + std::to_string(planned) + " epochs"), std::string::npos)
      << resumed.output;
  EXPECT_EQ(read_json(out / "results/training_summary.json").at("epochs_run").get<int>(), planned);
}

TEST(TimeBudget, ABadDurationIsRefused) {
  TempDir out("budget_bad");
  for (const char* bad : {"10x", "0s", "-5m", "30m1h", "8d", "1.5h"}) {
    auto r = run_cifar10(tiny_run(out.path(), {"--time-budget", bad}));
    EXPECT_NE(single_error_line(r).find("invalid --time-budget"), std::string::npos) << bad << ": " << r.output;
  }
}

// A run over an hour says so after its first steps, with what is faster.
TEST(TimeBudget, ARunLongerThanAnHourSaysSoEarly) {
  TempDir out("long");
  Child run(tiny_run(out.path(), {"--epochs", "20000", "--skip-inference"}));
  ASSERT_TRUE(run.wait_for_output("(--preset quick, a GPU, or --time-budget 1h finish sooner)", 300)) << run.output();
  EXPECT_NE(run.output().find("note: at "), std::string::npos);
  run.send(SIGTERM);
  run.wait(300);
}

// The speed-run preset (airbench94's recipe, for a GPU) trains on a CPU
// too, at a small size: its settings as recorded, lookahead weights in the
// checkpoint.
TEST(Presets, SpeedrunTrainsOnACpuAtASmallSize) {
  TempDir out("speedrun");
  auto r = run_cifar10({"--preset", "speedrun", "--epochs", "2", "--train-limit", "2048", "--validation-size", "256",
                        "--test-limit", "200", "--data-dir", testing::data_root().string(), "--output-dir",
                        out.path().string(), "--skip-visualization"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = read_json(out / "results/config.json");
  EXPECT_EQ(config.at("model-type"), "fast");
  EXPECT_EQ(config.at("width"), 64);
  EXPECT_EQ(config.at("batch-size"), 1024);
  EXPECT_EQ(config.at("lookahead"), true);
  EXPECT_EQ(config.at("alternating-flip"), true);
  const auto meta = read_checkpoint((out / "checkpoints/latest_model.pt").string()).meta;
  EXPECT_FALSE(meta.at("tensors").empty());
  EXPECT_GT(read_json(out / "results/inference_results.json").at("accuracy").get<double>(), 0.1);
}

}  // namespace
}  // namespace cifar
