// Trainer::fit is the whole training loop, Keras model.fit semantics: for
// each epoch, steps over the augmented training split, then validation,
// then the callbacks; resumable mid-epoch from a complete checkpoint.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "distributed/context.h"
#include "models/net.h"
#include "training/callback.h"

namespace cifar {

struct StartPoint;

// Time and work of a whole run, resumed parts included: each checkpoint
// carries the totals up to it, so a run resumed any number of times
// reports what an uninterrupted one would (less the work a kill lost,
// which was done again).
struct RunTotals {
  double train_seconds = 0;    // wall time in training steps (no validation)
  double wall_seconds = 0;     // whole fits
  int64_t images_trained = 0;  // images through completed epochs' steps, all ranks together
};

struct FitResult {
  std::string stop_reason;  // early stopping, NaN, signal; empty when all epochs ran
  bool diverged = false;    // stopped by TerminateOnNaN
  int signal = 0;           // SIGINT/SIGTERM/SIGHUP/SIGUSR1 that interrupted the run, or 0
  RunTotals totals;         // the whole run's, earlier parts included
  Logs last;                // last epoch's logs
};

// Whether the model has batch-norm layers, which cannot normalise a batch
// part of one image (the trainer leaves such a part out).
bool has_batch_norm(Net& model);

class Trainer final : public TrainContext {
 public:
  Trainer(const Config& config, const Splits& data, NetPtr model, ModelSpec spec, torch::Device device,
          DistributedContext& dist);
  ~Trainer() override;

  void add_callback(std::shared_ptr<Callback> callback) { callbacks_.push_back(std::move(callback)); }
  // Restores weights, optimiser, data position, the run's totals and every
  // callback's state from a --resume checkpoint, checked by plan_run.
  void resume(const StartPoint& start);
  FitResult fit();

  // --time-budget's measurements (time_budget.h): seconds per training step
  // over `steps` steps of the first epoch's batches, after one untimed, and
  // per image of evaluation over `eval_images` images, and the whole
  // measurement's seconds, all the slowest rank's, so every rank plans
  // alike. The model, its buffers and the optimiser are put back as they
  // were: the run itself is untouched.
  struct Timings {
    double step_seconds = 0;
    double eval_image_seconds = 0;
    double seconds = 0;
  };
  Timings time_steps_and_evaluation(int steps, int64_t eval_images);
  int start_epoch() const { return start_epoch_; }
  int64_t validation_images() const { return val_.size(); }
  // The stop signal, agreed across ranks (a collective); 0 = go on. fit()
  // asks after every step; the caller asks once more after it restores the
  // default signal handlers, for a signal that came in between.
  int agreed_stop_signal();

  // TrainContext
  Net& model() override { return *model_; }
  double learning_rate() const override;
  void set_learning_rate(double lr) override;
  void request_stop(const std::string& reason) override;
  bool is_writer() const override { return dist_.is_writer(); }
  int epochs() const override { return config_.train.epochs; }
  void set_epochs(int epochs) override { config_.train.epochs = epochs; }
  double fit_seconds() const override { return fit_seconds_; }
  int64_t steps_per_epoch() const override { return steps_per_epoch_; }
  int64_t global_step() const override { return global_step_; }
  int64_t batch_size() const override { return config_.train.batch_size; }
  void save_checkpoint(const std::string& path) override;
  torch::Tensor sample_images() const override { return sample_images_; }

 private:
  bool train_epoch(int epoch);  // false when the epoch was abandoned
  void train_step(int epoch, int64_t step, const torch::Tensor& indices);
  using Clock = std::chrono::steady_clock;
  bool should_read_running_logs(int64_t step, Clock::time_point last_read) const;
  Logs validate();
  RunTotals totals() const;
  torch::Tensor loss_fn(const torch::Tensor& logits, const torch::Tensor& labels) const;
  nlohmann::json run_state() const;

  Config config_;
  ImageSet train_;  // on the training device
  ImageSet val_;
  NetPtr model_;
  ModelSpec spec_;
  Normalization norm_;
  torch::Device device_;
  DistributedContext& dist_;
  Augmenter augmenter_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  bool autocast_ = false;
  bool has_batch_norm_ = false;
  bool in_epoch_end_ = false;  // validation and epoch-end callbacks running
  bool warned_single_image_ = false;
  int64_t images_trained_ = 0;  // global images through training steps
  // The run's totals: done_ holds completed epochs' steps (earlier parts
  // included); the wall time is this fit's plus the earlier parts'.
  RunTotals done_;
  double earlier_wall_seconds_ = 0;
  Clock::time_point fit_start_ = Clock::now();
  Clock::time_point epoch_start_ = Clock::now();
  int64_t images_at_epoch_start_ = 0;
  double fit_seconds_ = 0;  // at the last epoch's end, the slowest rank's
  bool in_batch_loop_ = false;  // inside train_epoch's steps

  int64_t steps_per_epoch_ = 0;
  int start_epoch_ = 0;
  int64_t start_step_ = 0;
  int epoch_ = 0;
  int64_t step_in_epoch_ = 0;
  int64_t global_step_ = 0;
  DeviceMetricSums epoch_sums_;  // this rank's, this epoch
  bool in_batch_ = false;
  bool stop_requested_ = false;
  bool abandon_epoch_ = false;
  int agreed_signal_ = 0;  // a stop signal agreed with the other ranks
  std::string stop_reason_;
  torch::Tensor sample_images_;
  torch::Tensor first_flips_;      // --alternating-flip's, on the device
};

}  // namespace cifar
