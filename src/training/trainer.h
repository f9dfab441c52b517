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

struct CheckpointData;

struct FitResult {
  int epochs_run = 0;          // epochs completed in this process
  int next_epoch = 0;          // where a resume would continue
  std::string stop_reason;     // early stopping, NaN, signal; empty when all epochs ran
  bool diverged = false;       // stopped by TerminateOnNaN
  int signal = 0;              // SIGINT/SIGTERM that interrupted the run, or 0
  double train_seconds = 0;    // wall time in training steps (no validation)
  double wall_seconds = 0;     // whole fit
  int64_t images_trained = 0;  // images through completed epochs' steps, all ranks together
  Logs last;                   // last epoch's logs
};

// A resume continues the same run: refuses (UserError) a `config` whose
// seed, validation size, training limit, batch size or monitor differ from
// those the checkpoint (its `meta`) was trained with.
void check_resume_settings(const nlohmann::json& meta, const Config& config, const std::string& path);

// Whether the model has batch-norm layers, which cannot normalise a batch
// part of one image (the trainer leaves such a part out).
bool has_batch_norm(Net& model);

class Trainer final : public TrainContext {
 public:
  Trainer(const Config& config, const Splits& data, NetPtr model, ModelSpec spec, torch::Device device,
          DistributedContext& dist);
  ~Trainer() override;

  void add_callback(std::shared_ptr<Callback> callback) { callbacks_.push_back(std::move(callback)); }
  // Restores weights, optimiser, data position and every callback's state.
  // Takes the run's state from `checkpoint`, read from `checkpoint_path`
  // (named in errors).
  void resume(const CheckpointData& checkpoint, const std::string& checkpoint_path);
  FitResult fit();
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
  int64_t steps_per_epoch() const override { return steps_per_epoch_; }
  int64_t global_step() const override { return global_step_; }
  int64_t batch_size() const override { return config_.train.batch_size; }
  void save_checkpoint(const std::string& path) override;
  torch::Tensor sample_images() const override { return sample_images_; }

  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  bool train_epoch(int epoch);  // false when the epoch was abandoned
  void train_step(int epoch, int64_t step, const torch::Tensor& indices);
  using Clock = std::chrono::steady_clock;
  bool should_read_running_logs(int64_t step, Clock::time_point last_read) const;
  Logs validate();
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
};

}  // namespace cifar
