// Each callback driven with scripted metric sequences: the epoch it fires
// at, the learning rates it sets, and what it saves, against Keras 3.
#include <cmath>

#include "common/error.h"
#include "fake_train_context.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/lookahead.h"
#include "training/callbacks/lr_schedule.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/progress.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/terminate_on_nan.h"

namespace cifar {
namespace {

class RecordingContext : public testing::FakeTrainContext {
 public:
  std::vector<std::string> stops;
  std::vector<std::string> saves;
  void request_stop(const std::string& reason) override { stops.push_back(reason); }
  void save_checkpoint(const std::string& path) override { saves.push_back(path); }
};

// Feeds `values` of `key` as epochs 0..n-1; returns the epoch whose end
// asked to stop, or -1.
int run_until_stop(Callback& cb, RecordingContext& ctx, const std::string& key, const std::vector<double>& values) {
  cb.on_train_begin(ctx);
  for (size_t e = 0; e < values.size(); ++e) {
    Logs logs{{key, values[e]}};
    cb.on_epoch_end(static_cast<int>(e), logs, ctx);
    if (!ctx.stops.empty()) return static_cast<int>(e);
  }
  return -1;
}

EarlyStopping::Options es(int patience, const std::string& monitor = "val_loss") {
  EarlyStopping::Options o;
  o.monitor.name = monitor;
  o.patience = patience;
  return o;
}

TEST(EarlyStopping, StopsAfterPatienceEpochsWithoutImprovement) {
  RecordingContext ctx;
  EarlyStopping cb(es(2));
  // best at epoch 1; epochs 2 and 3 do not improve -> stop at epoch 3.
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {1.0, 0.5, 0.6, 0.5, 0.1}), 3);
  EXPECT_EQ(cb.best_epoch(), 1);
  EXPECT_EQ(cb.stopped_epoch(), 3);
}

TEST(EarlyStopping, PatienceZeroStopsAtFirstNonImprovingEpochButNotEpochZero) {
  RecordingContext ctx;
  EarlyStopping cb(es(0));
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {1.0, 0.9, 0.95}), 2);
}

TEST(EarlyStopping, MinDeltaIsAbsoluteAndImprovementStrict) {
  RecordingContext ctx;
  auto o = es(1);
  o.monitor.min_delta = -0.1;  // Keras uses |min_delta|
  EarlyStopping cb(o);
  // 0.95 is not better than 1.0 by more than 0.1 -> stop at epoch 1.
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {1.0, 0.95, 0.5}), 1);
}

TEST(EarlyStopping, AccuracyIsMaximisedInAutoMode) {
  RecordingContext ctx;
  EarlyStopping cb(es(1, "val_accuracy"));
  EXPECT_EQ(run_until_stop(cb, ctx, "val_accuracy", {0.5, 0.6, 0.6}), 2);
  EXPECT_EQ(cb.best_epoch(), 1);
}

TEST(EarlyStopping, BaselineMustBeBeatenToResetWait) {
  RecordingContext ctx;
  auto o = es(2);
  o.baseline = 0.5;
  EarlyStopping cb(o);
  // Improvements above the baseline do not reset wait (Keras returns
  // before the stop test on any improvement): wait 1, 2, then 3 at the
  // first non-improving epoch -> stop there. Without a baseline wait would
  // be 1 at epoch 2.
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {1.0, 0.9, 0.95, 0.96}), 2);
  RecordingContext plain_ctx;
  EarlyStopping plain(es(2));
  EXPECT_EQ(run_until_stop(plain, plain_ctx, "val_loss", {1.0, 0.9, 0.95, 0.96}), 3);
}

TEST(EarlyStopping, StartFromEpochIgnoresEarlierEpochs) {
  RecordingContext ctx;
  auto o = es(1);
  o.start_from_epoch = 3;
  EarlyStopping cb(o);
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {1.0, 2.0, 3.0, 4.0, 5.0}), 4);
}

TEST(EarlyStopping, MissingMonitorSkipsTheEpoch) {
  RecordingContext ctx;
  EarlyStopping cb(es(0));
  EXPECT_EQ(run_until_stop(cb, ctx, "loss", {1.0, 2.0, 3.0}), -1);
}

TEST(EarlyStopping, RestoresBestWeightsAtTrainEnd) {
  RecordingContext ctx;
  auto o = es(5);
  o.restore_best_weights = true;
  EarlyStopping cb(o);
  cb.on_train_begin(ctx);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> snapshots;
  const std::vector<double> losses{1.0, 0.4, 0.7};
  for (int e = 0; e < 3; ++e) {
    ctx.net->fc->weight.fill_(static_cast<double>(e));
    snapshots.push_back(ctx.net->fc->weight.clone());
    Logs logs{{"val_loss", losses[e]}};
    cb.on_epoch_end(e, logs, ctx);
  }
  cb.on_train_end({}, ctx);
  EXPECT_TRUE(torch::equal(ctx.net->fc->weight, snapshots[1]));
}

TEST(EarlyStopping, StateRoundTripContinuesTheCount) {
  RecordingContext a;
  EarlyStopping first(es(3));
  run_until_stop(first, a, "val_loss", {1.0, 0.5, 0.6});  // wait = 1
  EarlyStopping second(es(3));
  second.load_state(nlohmann::json::parse(first.state().dump()));
  RecordingContext b;
  second.on_train_begin(b);  // must not reset the restored state
  Logs l3{{"val_loss", 0.7}}, l4{{"val_loss", 0.8}};
  second.on_epoch_end(3, l3, b);
  EXPECT_TRUE(b.stops.empty());
  second.on_epoch_end(4, l4, b);
  EXPECT_EQ(b.stops.size(), 1u);
  EXPECT_EQ(second.best_epoch(), 1);
}

TEST(ReduceLROnPlateau, ReducesAfterPatienceThenCoolsDown) {
  RecordingContext ctx;
  ctx.lr = 1.0;
  ReduceLROnPlateau::Options o;
  o.factor = 0.5;
  o.patience = 2;
  o.cooldown = 1;
  o.min_lr = 0.2;
  ReduceLROnPlateau cb(o);
  cb.on_train_begin(ctx);
  const std::vector<double> loss{1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  std::vector<double> logged, after;
  for (int e = 0; e < static_cast<int>(loss.size()); ++e) {
    Logs logs{{"val_loss", loss[e]}};
    cb.on_epoch_end(e, logs, ctx);
    logged.push_back(logs.at("learning_rate"));
    after.push_back(ctx.lr);
  }
  // Keras' order: e0 best; e1 wait 1; e2 wait 2 -> 0.5, cooldown 1; e3 the
  // cooldown counts down to 0 first, so the same epoch already waits (1);
  // e4 wait 2 -> 0.25; e5 cooldown + wait 1; e6 -> max(0.125, 0.2) = 0.2;
  // e7 wait 1; e8 wait 2 but lr is at min_lr: no change.
  EXPECT_EQ(after, (std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2}));
  EXPECT_EQ(logged[2], 1.0);  // logged before the reduction, as Keras
  EXPECT_EQ(logged[3], 0.5);
}

// The default min_lr, 1e-6, is above its float32 value (Keras compares in
// float32): a rate that reached it must not be "reduced" again, which
// printed a reduction every `patience` epochs and re-armed the cooldown.
TEST(ReduceLROnPlateau, RateAtTheDefaultMinLrIsNotReducedAgain) {
  RecordingContext ctx;
  ctx.lr = 2e-6;
  ReduceLROnPlateau::Options o;
  o.factor = 0.5;
  o.patience = 1;
  o.cooldown = 2;
  o.min_lr = 1e-6;
  ReduceLROnPlateau cb(o);
  cb.on_train_begin(ctx);
  ::testing::internal::CaptureStdout();
  for (int e = 0; e < 6; ++e) {
    Logs logs{{"val_loss", 1.0}};
    cb.on_epoch_end(e, logs, ctx);
  }
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(ctx.lr, 1e-6);
  // e1 reduces and starts a cooldown of 2 (counted down in e2 and e3);
  // from e3 on it waits, with the rate at its floor.
  EXPECT_EQ(printed, "Epoch 2: ReduceLROnPlateau reducing learning rate to 1.000e-06\n");
  EXPECT_EQ(cb.state()["cooldown_counter"], 0);
  EXPECT_EQ(cb.state()["wait"], 3);
}

// One format per kind: accuracies as percentages, losses and rates to four
// significant digits, in scientific notation below 1e-3 (a reduced
// learning rate printed as 0.0000 hid every reduction from the console).
TEST(ProgressBar, NumbersPrintInOneFormatPerKind) {
  RecordingContext ctx;
  std::ostringstream out;
  ProgressBar bar(out, false);
  bar.on_epoch_begin(0, ctx);
  Logs logs{{"learning_rate", 2e-6}, {"loss", 1.23456}, {"accuracy", 0.0}, {"batch_loss_recent", 9.0}};
  bar.on_epoch_end(0, logs, ctx);
  const std::string line = out.str();
  EXPECT_NE(line.find(" - accuracy: 0.00% - learning_rate: 2.000e-06 - loss: 1.235\n"), std::string::npos)
      << line;
  EXPECT_EQ(line.find("batch_"), std::string::npos) << line;
}

TEST(ReduceLROnPlateau, ImprovementNeedsMoreThanMinDelta) {
  RecordingContext ctx;
  ctx.lr = 1.0;
  ReduceLROnPlateau::Options o;
  o.patience = 1;
  ReduceLROnPlateau cb(o);  // min_delta 1e-4, factor 0.1
  cb.on_train_begin(ctx);
  Logs l0{{"val_loss", 1.0}}, l1{{"val_loss", 1.0 - 5e-5}};
  cb.on_epoch_end(0, l0, ctx);
  cb.on_epoch_end(1, l1, ctx);
  EXPECT_DOUBLE_EQ(ctx.lr, 0.1);
}

TEST(ReduceLROnPlateau, FactorOfOneIsRefused) {
  ReduceLROnPlateau::Options o;
  o.factor = 1.0;
  EXPECT_THROW(ReduceLROnPlateau{o}, UserError);
}

TEST(ModelCheckpoint, BestOnlySavesOnStrictImprovementLatestEveryEpoch) {
  RecordingContext ctx;
  ModelCheckpoint best("best.pt", Monitor{"val_loss"}, true), latest("latest.pt", Monitor{"val_loss"}, false);
  best.on_train_begin(ctx);
  latest.on_train_begin(ctx);
  for (double v : {1.0, 0.8, 0.8, 0.9, 0.7}) {
    Logs logs{{"val_loss", v}};
    best.on_epoch_end(0, logs, ctx);
    latest.on_epoch_end(0, logs, ctx);
  }
  const auto count = [&](const std::string& p) { return std::count(ctx.saves.begin(), ctx.saves.end(), p); };
  EXPECT_EQ(count("best.pt"), 3);  // 1.0, 0.8, 0.7 (the tie does not save)
  EXPECT_EQ(count("latest.pt"), 5);
  EXPECT_EQ(best.state().at("best"), 0.7);
}

// ---- Keras 3's first value: best starts as None ------------------------------
// keras/src/callbacks/monitor_callback.py: _is_improvement(current, None) is
// True, so the first monitored value is the first best even when it is NaN;
// tf-keras 2.15 started at +-inf, where a NaN never improves.

TEST(EarlyStopping, AFirstNaNIsTheFirstBestAsInKeras3) {
  RecordingContext ctx;
  EarlyStopping cb(es(1));
  // e0 NaN: best = NaN, wait 0; e1: nothing beats a NaN best, wait 1 ->
  // stop. tf-keras: e0 waits (NaN < inf is false), e1 improves, no stop.
  EXPECT_EQ(run_until_stop(cb, ctx, "val_loss", {NAN, 1.0, 0.5}), 1);
  EXPECT_EQ(cb.best_epoch(), 0);
  EXPECT_EQ(cb.state().at("best"), "nan");
}

TEST(ReduceLROnPlateau, AFirstNaNIsTheFirstBestAsInKeras3) {
  RecordingContext ctx;
  ctx.lr = 1.0;
  ReduceLROnPlateau::Options o;
  o.factor = 0.5;
  o.patience = 1;
  ReduceLROnPlateau cb(o);
  cb.on_train_begin(ctx);
  std::vector<double> after;
  for (double v : {std::nan(""), 1.0}) {
    Logs logs{{"val_loss", v}};
    cb.on_epoch_end(static_cast<int>(after.size()), logs, ctx);
    after.push_back(ctx.lr);
  }
  // e0 is an improvement (no reduction); e1 cannot beat NaN: wait 1 ->
  // reduce. tf-keras reduced at e0 already.
  EXPECT_EQ(after, (std::vector<double>{1.0, 0.5}));
}

TEST(ModelCheckpoint, AFirstNaNSavesAsInKeras3) {
  RecordingContext ctx;
  ModelCheckpoint best("best.pt", Monitor{"val_loss"}, true);
  best.on_train_begin(ctx);
  Logs e0{{"val_loss", NAN}};
  best.on_epoch_end(0, e0, ctx);
  EXPECT_EQ(ctx.saves, std::vector<std::string>{"best.pt"});
  Logs e1{{"val_loss", 1.0}};
  best.on_epoch_end(1, e1, ctx);
  EXPECT_EQ(ctx.saves.size(), 1u);  // nothing beats a NaN best, as in Keras
}

// Keras 3's ModelCheckpoint._should_save_model: with save_best_only and the
// monitor missing from the logs it warns "Can save best model only with
// <monitor> available." and saves (tf-keras 2.15 skipped).
TEST(ModelCheckpoint, BestOnlyWithTheMonitorMissingWarnsOnceAndSaves) {
  RecordingContext ctx;
  ModelCheckpoint best("best.pt", Monitor{"val_loss"}, true);
  best.on_train_begin(ctx);
  ::testing::internal::CaptureStderr();
  for (int e = 0; e < 3; ++e) {
    Logs logs{{"loss", 1.0 - e * 0.1}};
    best.on_epoch_end(e, logs, ctx);
  }
  const std::string warned = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(ctx.saves, std::vector<std::string>(3, "best.pt"));
  EXPECT_EQ(warned, "warning: ModelCheckpoint monitors 'val_loss', which this run does not log: saving best.pt every "
                    "epoch\n");
  EXPECT_TRUE(best.state().at("best").is_null()) << best.state();
}

// "No best yet" is part of a checkpoint: a run checkpointed before its
// first monitored value (or whose monitor was missing) resumes as Keras 3
// would go on, its next value the first best, even a NaN; a NaN best stays
// NaN.
TEST(Callbacks, NoBestYetAndANaNBestRoundTripThroughCheckpointState) {
  auto reload = [](const Callback& from, Callback& to) { to.load_state(nlohmann::json::parse(from.state().dump())); };
  {
    RecordingContext ctx;
    ModelCheckpoint fresh("best.pt", Monitor{"val_loss"}, true), resumed("best.pt", Monitor{"val_loss"}, true);
    fresh.on_train_begin(ctx);
    EXPECT_TRUE(fresh.state().at("best").is_null()) << fresh.state();
    reload(fresh, resumed);
    resumed.on_train_begin(ctx);
    Logs nan{{"val_loss", NAN}};
    resumed.on_epoch_end(3, nan, ctx);
    EXPECT_EQ(ctx.saves.size(), 1u);
    ModelCheckpoint again("best.pt", Monitor{"val_loss"}, true);
    reload(resumed, again);
    EXPECT_EQ(again.state().at("best"), "nan");
  }
  {
    RecordingContext ctx;
    EarlyStopping fresh(es(5)), resumed(es(5));
    fresh.on_train_begin(ctx);
    EXPECT_TRUE(fresh.state().at("best").is_null()) << fresh.state();
    reload(fresh, resumed);
    EXPECT_EQ(run_until_stop(resumed, ctx, "val_loss", {NAN, 1.0}), -1);
    EXPECT_EQ(resumed.best_epoch(), 0);
    EXPECT_EQ(resumed.state().at("best"), "nan");
  }
  {
    RecordingContext ctx;
    ctx.lr = 1.0;
    ReduceLROnPlateau::Options o;
    o.patience = 1;
    ReduceLROnPlateau fresh(o), resumed(o);
    fresh.on_train_begin(ctx);
    EXPECT_TRUE(fresh.state().at("best").is_null()) << fresh.state();
    reload(fresh, resumed);
    resumed.on_train_begin(ctx);
    Logs nan{{"val_loss", NAN}};
    resumed.on_epoch_end(0, nan, ctx);
    EXPECT_EQ(ctx.lr, 1.0);  // an improvement, not a wait
    EXPECT_EQ(resumed.state().at("best"), "nan");
  }
}

TEST(TerminateOnNaN, StopsOnNaNOrInfiniteLoss) {
  RecordingContext ctx;
  TerminateOnNaN cb;
  cb.on_batch_end(0, {{"batch_loss", 1.0}}, ctx);
  EXPECT_TRUE(ctx.stops.empty());
  cb.on_batch_end(1, {{"batch_loss", std::nan("")}}, ctx);
  ASSERT_EQ(ctx.stops.size(), 1u);
  EXPECT_NE(ctx.stops[0].find("NaN"), std::string::npos);
  cb.on_batch_end(2, {{"batch_loss", INFINITY}}, ctx);
  EXPECT_NE(ctx.stops[1].find("infinite"), std::string::npos);
}

TEST(LearningRateSchedule, CosineWarmsUpThenDecaysToZero) {
  LearningRateSchedule::Options o;
  o.base_lr = 1.0;
  o.warmup_epochs = 1;
  LearningRateSchedule s(o);
  EXPECT_DOUBLE_EQ(s.rate_at(0, 10, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.rate_at(9, 10, 100), 1.0);
  EXPECT_NEAR(s.rate_at(55, 10, 100), 0.5, 1e-12);
  EXPECT_NEAR(s.rate_at(100, 10, 100), 0.0, 1e-12);
}

TEST(LearningRateSchedule, OneCycleRisesThenFalls) {
  LearningRateSchedule::Options o;
  o.kind = LearningRateSchedule::Kind::kOneCycle;
  o.base_lr = 1.0;
  LearningRateSchedule s(o);
  EXPECT_DOUBLE_EQ(s.rate_at(0, 10, 100), 0.04);
  EXPECT_DOUBLE_EQ(s.rate_at(30, 10, 100), 1.0);
  EXPECT_LT(s.rate_at(99, 10, 100), 0.02);
}

// A warm-up not shorter than the run (the quick preset's two epochs under
// --epochs 1) would end the run at the peak rate; it becomes the usual 30%.
TEST(LearningRateSchedule, AWarmupAsLongAsTheRunStillDecays) {
  for (auto kind : {LearningRateSchedule::Kind::kOneCycle, LearningRateSchedule::Kind::kCosine}) {
    LearningRateSchedule::Options o;
    o.kind = kind;
    o.base_lr = 1.0;
    o.warmup_epochs = 10;
    LearningRateSchedule s(o);
    EXPECT_EQ(s.warmup_steps(10, 20), 6);
    EXPECT_LT(s.rate_at(19, 10, 20), 0.1);
    EXPECT_EQ(s.warmup_steps(10, 200), 100);  // shorter than the run: as asked
  }
}

TEST(LearningRateSchedule, StepDecay) {
  LearningRateSchedule::Options o;
  o.kind = LearningRateSchedule::Kind::kStep;
  o.base_lr = 1.0;
  o.step_size = 2;
  o.gamma = 0.5;
  LearningRateSchedule s(o);
  EXPECT_DOUBLE_EQ(s.rate_at(19, 10, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.rate_at(20, 10, 100), 0.5);
  EXPECT_DOUBLE_EQ(s.rate_at(45, 10, 100), 0.25);
}

// Lookahead as airbench94: every 5 steps the slow weights take 1 - decay of
// the fast ones, and the fast ones restart from them; between syncs
// nothing moves, and the slow weights survive a checkpoint.
TEST(Lookahead, SyncsEveryFiveStepsAndAtAnEpochsEnd) {
  RecordingContext ctx;  // 4 epochs of 4 steps
  Lookahead lookahead;
  lookahead.on_train_begin(ctx);
  auto& w = ctx.net->fc->weight;
  const auto start = w.detach().clone();
  {
    torch::NoGradGuard no_grad;
    w.add_(1.0);  // the fast weights trained away
  }
  ctx.step = 3;  // no sync: not a multiple of 5, not an epoch's last step
  lookahead.on_batch_end(1, {}, ctx);
  EXPECT_TRUE(torch::equal(w.detach(), start + 1.0));
  ctx.step = 5;
  lookahead.on_batch_end(0, {}, ctx);
  const double d = Lookahead::decay(5, 16);
  EXPECT_NEAR(d, std::pow(0.95, 5) * std::pow(5.0 / 16.0, 3), 1e-12);
  EXPECT_TRUE(torch::allclose(w.detach(), start * d + (start + 1.0) * (1 - d), 1e-6, 1e-6));
  const auto saved = lookahead.tensor_state();
  EXPECT_TRUE(torch::equal(saved.at("slow_0"), w.detach()));
  {
    torch::NoGradGuard no_grad;
    w.add_(1.0);
  }
  ctx.step = 8;  // an epoch's last step (index 3 of 4)
  Lookahead resumed;
  resumed.load_tensor_state(saved);
  resumed.on_train_begin(ctx);
  resumed.on_batch_end(3, {}, ctx);
  const double d8 = Lookahead::decay(8, 16);
  EXPECT_TRUE(torch::allclose(w.detach(), saved.at("slow_0") * d8 + (saved.at("slow_0") + 1.0) * (1 - d8), 1e-6, 1e-6));
  EXPECT_DOUBLE_EQ(Lookahead::decay(16, 16), std::pow(0.95, 5));
  EXPECT_DOUBLE_EQ(Lookahead::decay(0, 16), 0.0);
}

TEST(Lookahead, SlowWeightsOfAnotherModelAreRefused) {
  RecordingContext ctx;
  Lookahead lookahead;
  lookahead.load_tensor_state({{"slow_0", torch::zeros({2, 2})}});
  EXPECT_THROW(lookahead.on_train_begin(ctx), UserError);
}

}  // namespace
}  // namespace cifar
