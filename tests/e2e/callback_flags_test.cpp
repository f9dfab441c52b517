// Keras' callback options from the command line: EarlyStopping's
// min_delta, baseline and start_from_epoch, ReduceLROnPlateau's min_delta
// and cooldown, each shown to change what a real run does.
#include "e2e_util.h"

namespace cifar {
namespace {
using testing::run_cifar10;
using testing::TempDir;
using namespace e2e;

TEST(CallbackFlags, EarlyStoppingMinDeltaAndStartEpoch) {
  TempDir stopped("es_delta"), watched_late("es_start");
  // No change counts as an improvement: with patience 1, epoch 2 stops.
  auto a = run_cifar10(tiny_run(stopped.path(), {"--epochs", "4", "--early-stopping-patience", "1",
                                                 "--early-stopping-min-delta", "100", "--skip-inference"}));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(read_json(stopped / "results/training_summary.json").at("epochs_run"), 2) << a.output;
  // The same, watched only from epoch 4 of 4: nothing stops it.
  auto b = run_cifar10(tiny_run(watched_late.path(), {"--epochs", "4", "--early-stopping-patience", "1",
                                                      "--early-stopping-min-delta", "100",
                                                      "--early-stopping-start-epoch", "4", "--skip-inference"}));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(read_json(watched_late / "results/training_summary.json").at("epochs_run"), 4) << b.output;
}

TEST(CallbackFlags, EarlyStoppingBaselineMustBeBeaten) {
  TempDir out("es_baseline");
  // A val_loss no run reaches: after patience 2 with no value beating it, the run stops.
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "5", "--early-stopping-patience", "2",
                                             "--early-stopping-baseline", "0.001", "--skip-inference"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(out / "results/training_summary.json").at("epochs_run"), 2) << r.output;
  for (const char* bad : {"abc", "1e999", " 1"}) {
    auto e = run_cifar10(tiny_run(out.path(), {"--early-stopping-baseline", bad}));
    EXPECT_NE(single_error_line(e).find("invalid --early-stopping-baseline"), std::string::npos) << e.output;
  }
}

TEST(CallbackFlags, PlateauMinDeltaAndCooldown) {
  TempDir out("plateau");
  // Nothing improves by 100: patience 1 reduces after epoch 2; a cooldown
  // of 2 counts down through epochs 3 and 4 (Keras' order: counted down
  // first, so only epoch 3 is skipped), and epoch 4 reduces again.
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "4", "--lr-schedule", "plateau", "--plateau-patience", "1",
                                             "--plateau-min-delta", "100", "--plateau-cooldown", "2",
                                             "--plateau-factor", "0.5", "--early-stopping-patience", "0",
                                             "--skip-inference"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto history = read_json(out / "results/training_history.json");
  ASSERT_EQ(history.size(), 4u);
  const std::vector<double> expected{0.001, 0.001, 0.0005, 0.0005};
  for (size_t e = 0; e < 4; ++e) {
    EXPECT_NEAR(history[e].at("learning_rate").get<double>(), expected[e], 1e-12) << "epoch " << e + 1;
  }
  const auto meta = read_checkpoint((out / "checkpoints/latest_model.pt").string()).meta;
  EXPECT_NEAR(meta.at("learning_rate").get<double>(), 0.00025, 1e-12);
}

}  // namespace
}  // namespace cifar
