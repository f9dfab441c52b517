#include "training/trainer.h"

#include <csignal>
#include <iostream>

#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "common/runtime.h"
#include "common/signals.h"
#include "common/torch_compat.h"
#include "config/cli.h"
#include "outputs/run_folder.h"
#include "data/batches.h"
#include "evaluation/evaluate.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/resume.h"
#include "training/optim.h"

namespace cifar {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

torch::Tensor to_display_u8(const torch::Tensor& x, const Normalization& norm) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto mean = torch::tensor(std::vector<float>(norm.mean.begin(), norm.mean.end()), opts).view({1, 3, 1, 1});
  auto std = torch::tensor(std::vector<float>(norm.std.begin(), norm.std.end()), opts).view({1, 3, 1, 1});
  return (x.to(torch::kFloat32) * std + mean).mul(255.0).round().clamp(0, 255).to(torch::kUInt8).cpu();
}

}  // namespace

Trainer::Trainer(const Config& config, const Splits& data, NetPtr model, ModelSpec spec, torch::Device device,
                 DistributedContext& dist)
    : config_(config),
      train_(data.train.to(device)),
      val_(data.val),
      model_(std::move(model)),
      spec_(std::move(spec)),
      norm_{spec_.mean, spec_.std},
      device_(device),
      dist_(dist),
      augmenter_(config.augment) {
  model_->to(device_);
  dist_.prepare_model(*model_);
  optimizer_ = make_optimizer(config_.train, *model_);
  const auto& mp = config_.train.mixed_precision;
  autocast_ = use_bf16_autocast(mp, device_);
  steps_per_epoch_ = cifar::steps_per_epoch(train_.size(), config_.train.batch_size);
  has_batch_norm_ = has_batch_norm(*model_);
  if (config_.augment.flip && config_.augment.alternating_flip) {
    first_flips_ = first_flips(train_.size(), static_cast<uint64_t>(config_.run.seed), device_);
  }
}

Trainer::~Trainer() = default;

bool has_batch_norm(Net& model) {
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (m->name().find("BatchNorm") != std::string::npos) return true;
  }
  return false;
}

double Trainer::learning_rate() const { return get_learning_rate(*optimizer_); }
void Trainer::set_learning_rate(double lr) { cifar::set_learning_rate(*optimizer_, lr); }

void Trainer::request_stop(const std::string& reason) {
  stop_requested_ = true;
  if (stop_reason_.empty()) stop_reason_ = reason;
  // A stop asked mid-epoch (NaN loss) abandons the epoch, so nothing saves
  // the broken weights at its end.
  if (in_batch_) abandon_epoch_ = true;
}

torch::Tensor Trainer::loss_fn(const torch::Tensor& logits, const torch::Tensor& labels) const {
  namespace F = torch::nn::functional;
  return F::cross_entropy(at_least_float32(logits), labels,
                          F::CrossEntropyFuncOptions().label_smoothing(config_.train.label_smoothing));
}

void Trainer::train_step(int epoch, int64_t step, const torch::Tensor& indices) {
  const uint64_t seed = static_cast<uint64_t>(config_.run.seed);
  clear_gradients(*optimizer_);
  // A short last batch split over many ranks can leave a rank with nothing;
  // it still takes part in the gradient all-reduce, with zeros. Batch norm
  // cannot normalise a part of one image (one value per channel after the
  // cnn's dense layer or a 1x1 feature map), so such a part is left out the
  // same way; micro-batches hold two images or more.
  int64_t n = indices.size(0);
  if (n == 1 && has_batch_norm_) {
    if (!warned_single_image_) {
      std::cout << "note: rank " << dist_.rank() << " left out a batch part of one image (epoch " << epoch + 1
                << ", step " << step + 1 << "): batch norm cannot normalise a single image\n";
      warned_single_image_ = true;
    }
    n = 0;
  }
  const int64_t chunks = std::min<int64_t>(config_.train.grad_accumulation, n >= 2 ? n / 2 : n);
  dist_.begin_backward(static_cast<int>(chunks));
  if (n > 0) {
    // Dropout, stochastic depth and augmentation draw from seeds derived from
    // (seed, epoch, step): a resumed run draws what the uninterrupted run drew.
    torch::manual_seed(step_seed(seed, epoch, step, 2));
    auto batch = train_.select(indices);
    const bool alternate = config_.augment.flip && config_.augment.alternating_flip;
    auto x = augmenter_.apply(normalize_images(batch.images, norm_, weight_dtype(*model_)),
                              step_seed(seed, epoch, step, 0),
                              alternate ? alternating_flips(first_flips_, indices, epoch) : torch::Tensor());
    if (!sample_images_.defined() && is_writer()) sample_images_ = to_display_u8(x.slice(0, 0, 64), norm_);
    // Channels-last: cuDNN's and oneDNN's fast convolution layout (+25% for
    // the fast net on two CPU cores, a few percent for the CNN and ResNet).
    x = x.contiguous(at::MemoryFormat::ChannelsLast);

    // Each micro-batch's mean loss is weighted by its share of the global
    // batch times the world size; sync_gradients then averages over ranks,
    // so the result is the gradient of the global batch's mean loss even
    // when ranks hold unequal parts (at world size 1: size / n, as before).
    const int64_t global_n = global_batch_length(train_.size(), step, config_.train.batch_size);
    // tensor_split, not chunk: exactly `chunks` parts of near-equal size.
    auto xs = x.tensor_split(chunks), ys = batch.labels.tensor_split(chunks);
    for (size_t i = 0; i < xs.size(); ++i) {
      torch::Tensor logits;
      {
        compat::AutocastGuard autocast(autocast_, device_.type());
        logits = model_->forward(xs[i]);
      }
      auto loss = loss_fn(logits, ys[i]);
      (loss * (static_cast<double>(xs[i].size(0)) * dist_.world_size() / static_cast<double>(global_n))).backward();
      epoch_sums_.add(logits.detach(), ys[i], loss.detach());
    }
  }
  dist_.sync_gradients(model_->parameters());
  if (config_.train.grad_clip > 0) clip_gradients(model_->parameters(), config_.train.grad_clip);
  optimizer_->step();
  ++global_step_;
}

bool Trainer::train_epoch(int epoch) {
  // On the device once an epoch: each step's indices are a slice of it.
  const auto order = to_device_async(epoch_order(train_.size(), static_cast<uint64_t>(config_.run.seed), epoch), device_);
  const int64_t first = epoch == start_epoch_ ? start_step_ : 0;
  if (first == 0) epoch_sums_.reset(device_);
  MetricSums last_read = epoch_sums_.read();
  auto read_at = Clock::now();
  model_->train();
  in_batch_loop_ = true;
  struct LoopEnd {
    bool& flag;
    ~LoopEnd() { flag = false; }
  } loop_end{in_batch_loop_};
  for (int64_t step = first; step < steps_per_epoch_; ++step) {
    in_batch_ = true;
    for (auto& cb : callbacks_) cb->on_batch_begin(step, *this);
    auto indices = rank_batch(order, step, config_.train.batch_size, dist_.rank(), dist_.world_size());
    train_step(epoch, step, indices);
    images_trained_ += global_batch_length(train_.size(), step, config_.train.batch_size);
    step_in_epoch_ = step + 1;
    Logs running;
    if (should_read_running_logs(step, read_at)) {
      dist_.wait_for_collectives();
      const MetricSums now = epoch_sums_.read();
      read_at = Clock::now();
      // The epoch's sums, then the loss of the steps since the last reading
      // as a sum and a count.
      auto sums = torch::cat({now.to_tensor(), torch::tensor({now.loss_sum - last_read.loss_sum,
                                                              now.count - last_read.count}, torch::kFloat64)});
      last_read = now;
      // Callbacks see global numbers, not one rank's, summed over ranks in
      // one 48-byte all-reduce. A NaN on any rank thus reaches
      // TerminateOnNaN on every rank.
      if (dist_.world_size() > 1) dist_.all_reduce_sum(sums);
      running = MetricSums::from_tensor(sums.slice(0, 0, 4)).to_logs();
      running["batch_loss"] = sums[4].item<double>() / std::max(1.0, sums[5].item<double>());
    }
    for (auto& cb : callbacks_) cb->on_batch_end(step, running, *this);
    in_batch_ = false;
    if (int sig = agreed_stop_signal()) {
      stop_reason_ = "interrupted by " + signal_name(sig);
      // A NaN found at this same step leaves the last good checkpoint be.
      const bool diverged = abandon_epoch_;
      stop_requested_ = abandon_epoch_ = true;
      if (!diverged) save_checkpoint(RunFolder(config_.run.output_dir).latest_checkpoint().string());
      return false;
    }
    if (abandon_epoch_) return false;
  }
  return true;
}

// Reading the running metrics makes the host wait for the device, which on
// a GPU leaves it idle while the next step is queued, so a step reads them
// only when they will be used: a callback asks (the progress bar about to
// redraw, TensorBoard's batch scalars), the epoch ends, a stop signal came
// (a mid-epoch checkpoint follows: no undetected NaN may reach it), or
// kReadInterval passed, which bounds how late TerminateOnNaN sees a
// diverged loss. Several ranks read every step, together: the all-reduce
// of their sums is a collective.
bool Trainer::should_read_running_logs(int64_t step, Clock::time_point last_read) const {
  constexpr auto kReadInterval = std::chrono::milliseconds(250);
  if (dist_.world_size() > 1 || step + 1 >= steps_per_epoch_ || stop_signal() != 0) return true;
  if (Clock::now() - last_read >= kReadInterval) return true;
  return std::any_of(callbacks_.begin(), callbacks_.end(),
                     [&](const auto& cb) { return cb->wants_batch_logs(step, *this); });
}

// Every rank must leave the loop after the same step, or the ones still
// training wait in their next all-reduce for a peer that left (a
// deadlock users of other trainers know well). A stop signal on any rank, and a NaN stop, are agreed as a
// maximum over ranks after every step: one 16-byte all-reduce. A peer's
// signal is kept here, not in the process's signal flag, so that this
// rank's own copy of the same SIGTERM, arriving a moment later, is not
// taken for a second signal (which aborts at once).
int Trainer::agreed_stop_signal() {
  if (dist_.world_size() == 1) return stop_signal();
  const int own = stop_signal() != 0 ? stop_signal() : agreed_signal_;
  auto flags = torch::tensor({static_cast<double>(own), abandon_epoch_ ? 1.0 : 0.0}, torch::kFloat64);
  dist_.all_reduce_max(flags);
  const int sig = static_cast<int>(flags[0].item<double>());
  agreed_signal_ = sig;
  if (flags[1].item<double>() > 0 && !abandon_epoch_) {
    stop_requested_ = abandon_epoch_ = true;
    if (stop_reason_.empty()) stop_reason_ = "the loss became NaN or infinite on another rank";
  }
  return sig;
}

Logs Trainer::validate() {
  if (val_.size() == 0) return {};
  auto [begin, end] = rank_range(val_.size(), dist_.rank(), dist_.world_size());
  EvalOptions options;
  options.device = device_;
  options.autocast = autocast_;
  auto logits = predict_logits(*model_, val_.images.slice(0, begin, end), norm_, options);
  auto labels = val_.labels.slice(0, begin, end).cpu();
  MetricSums sums;
  if (labels.size(0) > 0) sums.add(logits, labels, loss_fn(logits, labels).item<double>());
  auto t = sums.to_tensor();
  dist_.all_reduce_sum(t);
  return MetricSums::from_tensor(t).to_logs("val_");
}

FitResult Trainer::fit() {
  fit_start_ = Clock::now();
  FitResult result;
  for (auto& cb : callbacks_) cb->on_train_begin(*this);
  for (int epoch = start_epoch_; epoch < config_.train.epochs && !stop_requested_; ++epoch) {
    epoch_ = epoch;
    step_in_epoch_ = epoch == start_epoch_ ? start_step_ : 0;
    // Transfer learning as the original: head only first, then everything.
    // The optimiser already holds every parameter; frozen ones get no
    // gradient and so are not stepped.
    if (config_.model.freeze_backbone) {
      const bool trainable = epoch >= config_.model.freeze_epochs;
      if (trainable == model_->backbone_frozen() && is_writer()) {
        const int head_only_until = std::min(config_.model.freeze_epochs, config_.train.epochs);
        std::cout << (trainable ? "Fine-tuning the whole model from epoch " : "Training the head only until epoch ")
                  << (trainable ? epoch + 1 : head_only_until) << "\n";
      }
      set_backbone_trainable(*model_, trainable);
    }
    for (auto& cb : callbacks_) cb->on_epoch_begin(epoch, *this);
    epoch_start_ = Clock::now();
    images_at_epoch_start_ = images_trained_;
    const bool completed = train_epoch(epoch);
    done_.train_seconds += seconds_since(epoch_start_);
    done_.images_trained += images_trained_ - images_at_epoch_start_;
    if (!completed) break;
    in_epoch_end_ = true;
    dist_.sync_buffers();  // validation reads them (and the step's collectives have finished)
    auto sums = epoch_sums_.read().to_tensor();
    dist_.all_reduce_sum(sums);
    Logs logs = MetricSums::from_tensor(sums).to_logs();
    logs.merge(validate());
    logs["learning_rate"] = learning_rate();
    auto seconds = torch::tensor({seconds_since(fit_start_)}, torch::kFloat64);
    dist_.all_reduce_max(seconds);
    fit_seconds_ = seconds.item<double>();
    for (auto& cb : callbacks_) cb->on_epoch_end(epoch, logs, *this);
    in_epoch_end_ = false;
    result.last = logs;
  }
  dist_.sync_buffers();  // the evaluation reads them (every rank leaves the loop at the same step)
  if (!abandon_epoch_) {
    for (auto& cb : callbacks_) cb->on_train_end(result.last, *this);
    // Restoring the best weights reads a file only rank 0 wrote, which a
    // rank on another machine may not see: every rank takes rank 0's.
    dist_.broadcast_model(*model_);
  }
  result.stop_reason = stop_reason_;
  // Agreed once more: a signal that came after the last step's agreement
  // must not send one rank to the evaluation and another to the exit.
  result.signal = agreed_stop_signal();
  result.diverged = abandon_epoch_ && result.signal == 0;
  result.totals = totals();
  return result;
}

Trainer::Timings Trainer::time_steps_and_evaluation(int steps, int64_t eval_images) {
  const auto start = Clock::now();
  // What the steps change, kept aside: weights, batch-norm statistics, the
  // optimiser (a fresh one takes the steps) and the trainer's counters.
  std::vector<torch::Tensor> saved;
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : model_->parameters()) saved.push_back(p.detach().clone());
    for (const auto& b : model_->buffers()) saved.push_back(b.detach().clone());
  }
  auto optimizer = make_optimizer(config_.train, *model_);
  std::swap(optimizer_, optimizer);
  const int64_t step_before = global_step_;
  const MetricSums sums_before = epoch_sums_.read();
  const auto order = to_device_async(epoch_order(train_.size(), static_cast<uint64_t>(config_.run.seed), 0), device_);
  model_->train();
  Clock::time_point t0;
  const int total = std::min<int64_t>(steps + 1, steps_per_epoch_);
  for (int i = 0; i < total; ++i) {
    if (i == 1) {
      dist_.wait_for_collectives();
      if (device_.is_cuda()) torch::cuda::synchronize();
      t0 = Clock::now();
    }
    train_step(0, i, rank_batch(order, i, config_.train.batch_size, dist_.rank(), dist_.world_size()));
  }
  dist_.wait_for_collectives();
  if (device_.is_cuda()) torch::cuda::synchronize();
  Timings t;
  t.step_seconds = total > 1 ? seconds_since(t0) / (total - 1) : 0.0;
  std::swap(optimizer_, optimizer);
  {
    torch::NoGradGuard no_grad;
    size_t k = 0;
    for (auto& p : model_->parameters()) p.detach().copy_(saved[k++]);
    for (auto& b : model_->buffers()) b.detach().copy_(saved[k++]);
  }
  clear_gradients(*optimizer_);
  global_step_ = step_before;
  epoch_sums_.reset(device_);
  epoch_sums_.assign(sums_before);
  sample_images_ = torch::Tensor();
  // Evaluation speed, on training images (an evaluation reads no state).
  const int64_t n = std::min<int64_t>(eval_images, train_.size());
  EvalOptions options;
  options.device = device_;
  options.autocast = autocast_;
  predict_logits(*model_, train_.images.slice(0, 0, std::min<int64_t>(n, 64)), norm_, options);  // first use
  const auto e0 = Clock::now();
  predict_logits(*model_, train_.images.slice(0, 0, n), norm_, options);
  t.eval_image_seconds = n > 0 ? seconds_since(e0) / static_cast<double>(n) : 0.0;
  auto slowest = torch::tensor({t.step_seconds, t.eval_image_seconds, seconds_since(start)}, torch::kFloat64);
  dist_.all_reduce_max(slowest);
  return {slowest[0].item<double>(), slowest[1].item<double>(), slowest[2].item<double>()};
}

}  // namespace cifar
