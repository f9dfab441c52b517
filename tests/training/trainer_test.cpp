// The trainer's running metrics: kept on the device, read only when a
// callback will use them, and the same numbers whenever they are read.
#include "data/dataset.h"
#include "distributed/context.h"
#include "models/registry.h"
#include "test_util.h"
#include "training/callbacks/history.h"
#include "training/trainer.h"

namespace cifar {
namespace {

TEST(MetricSums, DeviceSumsMatchTheHostSums) {
  torch::manual_seed(1);
  MetricSums host;
  DeviceMetricSums device;
  device.reset(torch::kCPU);
  for (int b : {7, 1, 16}) {
    auto logits = torch::randn({b, 10});
    auto labels = torch::randint(10, {b}, torch::kInt64);
    const double loss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
    host.add(logits, labels, loss);
    device.add(logits, labels, torch::tensor(loss));
  }
  const MetricSums read = device.read();
  EXPECT_DOUBLE_EQ(read.loss_sum, host.loss_sum);
  EXPECT_EQ(read.correct, host.correct);
  EXPECT_EQ(read.top3, host.top3);
  EXPECT_EQ(read.count, 24);
  EXPECT_GT(read.top3, read.correct);

  device.assign({1, 2, 3, 4});
  const MetricSums back = device.read();
  EXPECT_EQ(back.loss_sum + back.correct + back.top3 + back.count, 10);
  device.reset(torch::kCPU);
  EXPECT_EQ(device.read().count, 0);
}

// Records what on_batch_end received; asks for the logs every `every`th
// global step (0: never).
class Recorder : public Callback {
 public:
  explicit Recorder(int64_t every) : every_(every) {}
  std::string name() const override { return "recorder"; }
  bool wants_batch_logs(int64_t, const TrainContext& ctx) const override {
    return every_ > 0 && ctx.global_step() % every_ == 0;
  }
  void on_batch_end(int64_t step, const Logs& running, TrainContext& ctx) override {
    seen.push_back({ctx.global_step(), step, running});
  }
  struct Seen {
    int64_t global_step;
    int64_t step_in_epoch;
    Logs running;
  };
  std::vector<Seen> seen;

 private:
  int64_t every_;
};

struct Recorded {
  std::vector<Logs> epochs;
  std::vector<Recorder::Seen> batches;
};

Recorded train_mlp(int64_t read_every) {
  Config config;
  config.model.model_type = "mlp";
  config.data.train_limit = 256;
  config.data.validation_size = 64;
  config.train.batch_size = 16;
  config.train.epochs = 2;
  config.run.seed = 5;
  const auto data = read_cifar10(testing::batches_dir());
  const Splits splits = make_splits(data, config.data, 5);
  const Normalization norm = make_normalization("standard");
  const ModelSpec spec = make_spec(config.model, data.class_names, norm.mean, norm.std);
  torch::manual_seed(5);
  auto dist = make_single_process_context();
  Trainer trainer(config, splits, build_model(spec), spec, torch::kCPU, *dist);
  auto history = std::make_shared<History>();
  auto recorder = std::make_shared<Recorder>(read_every);
  trainer.add_callback(history);
  trainer.add_callback(recorder);
  trainer.fit();
  return {history->epochs(), recorder->seen};
}

TEST(Trainer, RunningLogsAreReadWhenAskedAndAtEpochEndWithoutChangingTraining) {
  const Recorded every = train_mlp(1), sparse = train_mlp(5);
  ASSERT_EQ(every.batches.size(), 32u);  // 256 images / 16, two epochs
  ASSERT_EQ(sparse.batches.size(), 32u);
  // Reading is only observing: the epochs' numbers are identical.
  ASSERT_EQ(every.epochs.size(), 2u);
  EXPECT_EQ(every.epochs, sparse.epochs);

  int read = 0;
  for (size_t i = 0; i < sparse.batches.size(); ++i) {
    const auto& b = sparse.batches[i];
    const bool asked = b.global_step % 5 == 0, last = b.step_in_epoch == 15;
    if (asked || last) EXPECT_FALSE(b.running.empty()) << "global step " << b.global_step;
    if (b.running.empty()) continue;
    ++read;
    // The same running numbers as a run that read every step.
    for (const char* key : {"loss", "accuracy", "top3_accuracy"}) {
      EXPECT_DOUBLE_EQ(b.running.at(key), every.batches[i].running.at(key)) << key << " at " << b.global_step;
    }
  }
  // MLP steps take a millisecond or so here; the time-based reading (every
  // 250 ms) would need a stall at nearly every step to read them all.
  EXPECT_LT(read, 32);

  // batch_loss is the mean over the steps since the last reading: weighted
  // by those steps it adds up to the epoch's loss.
  for (int epoch = 0; epoch < 2; ++epoch) {
    double weighted = 0;
    int64_t since = 0;
    for (const auto& b : sparse.batches) {
      if (b.global_step <= epoch * 16 || b.global_step > (epoch + 1) * 16) continue;
      ++since;
      if (b.running.empty()) continue;
      weighted += b.running.at("batch_loss") * static_cast<double>(since);
      since = 0;
    }
    EXPECT_NEAR(weighted / 16, every.epochs[epoch].at("loss"), 1e-9) << "epoch " << epoch + 1;
    EXPECT_DOUBLE_EQ(every.batches[epoch * 16 + 15].running.at("loss"), every.epochs[epoch].at("loss"));
  }
}

}  // namespace
}  // namespace cifar
