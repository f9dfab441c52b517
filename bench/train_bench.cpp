// Times training on CPU (or the GPU when present) and the overhead of our
// loop: Trainer::fit with every callback of a real run, against a bare
// forward/backward/step loop over the same batches and augmentation.
// Also the share of a step spent assembling the batch (select, normalise,
// augment, channels-last), exact on CPU where every op is synchronous; the
// ATen ops one step dispatches (a proxy for a GPU's launch overhead); and
// the optimiser step alone, time and ops: torch::optim's per-tensor kernels
// against the foreach ones the trainer uses on a GPU (training/optim.h).
// Usage: bench_training MODEL [IMAGES] [BATCH] [PRESET]   (data from $CIFAR10_DATA_ROOT;
//   with BENCH_OP_NAMES set, also the ops one bare-loop step dispatches)
//   PRESET (e.g. quick) sets the rest of the configuration first.
#include <ATen/record_function.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <iostream>

#include "common/error.h"
#include "common/runtime.h"
#include "common/torch_compat.h"
#include "config/cli.h"
#include "config/presets.h"
#include "data/augment.h"
#include "data/batches.h"
#include "data/dataset.h"
#include "models/fastnet.h"
#include "models/registry.h"
#include "training/optim.h"
#include "training/callbacks/factory.h"
#include "training/trainer.h"

using namespace cifar;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

NetPtr fresh_model(const ModelSpec& spec, const ImageSet& train) {
  torch::manual_seed(1);
  auto model = build_model(spec);
  if (spec.type == "fast") {
    init_whitening(*model, normalize_images(train.images.slice(0, 0, 2000), Normalization{spec.mean, spec.std}));
  }
  return model;
}

// Top-level ATen ops dispatched while a counter lives, on every thread
// (backward runs on the autograd engine's threads on a GPU): each costs the
// host a dispatch and, on a GPU, at least one kernel launch, so the count is
// a proxy for a step's launch overhead that the CPU can measure. Ops run
// inside other ops (the per-tensor ops of a _foreach_ op on the CPU) are not
// counted.
class OpCounter {
 public:
  OpCounter() : start_(top_level_.load()) {
    names_.clear();
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&enter, &leave).scopes({at::RecordScope::FUNCTION}));
  }
  ~OpCounter() { at::removeCallback(handle_); }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;
  int64_t ops() const { return top_level_.load() - start_; }

  // With BENCH_OP_NAMES set, the last counter's ops by name: what a step
  // dispatches, to find what could go.
  static void print_names(const char* what) {
    if (names_.empty()) return;
    std::cout << "ops of one " << what << ":\n";
    for (const auto& [name, count] : names_) std::cout << "  " << count << " " << name << "\n";
  }

 private:
  static std::unique_ptr<at::ObserverContext> enter(const at::RecordFunction& fn) {
    if (depth_++ == 0) {
      ++top_level_;
      if (std::getenv("BENCH_OP_NAMES")) {
        std::lock_guard<std::mutex> lock(names_mutex_);
        ++names_[fn.name()];
      }
    }
    return nullptr;
  }
  static void leave(const at::RecordFunction&, at::ObserverContext*) { --depth_; }

  static thread_local int depth_;
  static std::atomic<int64_t> top_level_;
  static std::mutex names_mutex_;
  static std::map<std::string, int64_t> names_;
  int64_t start_;
  at::CallbackHandle handle_;
};
thread_local int OpCounter::depth_ = 0;
std::atomic<int64_t> OpCounter::top_level_{0};
std::mutex OpCounter::names_mutex_;
std::map<std::string, int64_t> OpCounter::names_;

// The ops of the trainer's second step with its callbacks: from the start of
// step 1 to the start of step 2 (added first, it runs before the others).
class StepOps final : public Callback {
 public:
  std::string name() const override { return "StepOps"; }
  void on_batch_begin(int64_t step, TrainContext&) override {
    if (step == 1) counter_.emplace();
    if (step == 2 && counter_) {
      ops = counter_->ops();
      counter_.reset();
      OpCounter::print_names("trainer step");
    }
  }
  int64_t ops = 0;

 private:
  std::optional<OpCounter> counter_;
};

int run_bench(int argc, char** argv) {
  const char* root = std::getenv("CIFAR10_DATA_ROOT");
  Config config;
  if (argc > 4) apply_preset(config, argv[4]);
  config.model.model_type = argv[1];
  config.data.data_dir = root ? root : "data";
  config.data.train_limit = argc > 2 ? std::atoi(argv[2]) : 4096;
  config.data.validation_size = 1000;
  config.train.batch_size = argc > 3 ? std::atoi(argv[3]) : 128;
  config.train.epochs = 1;
  config.train.monitor = "loss";
  config.run.output_dir = "/tmp/cifar10-bench";
  config.run.skip_visualization = true;
  const int threads = configure_threads(0);
  const torch::Device device = resolve_device("auto");

  const auto data = read_cifar10(std::filesystem::path(config.data.data_dir) / "cifar-10-batches-bin");
  Splits splits = make_splits(data, config.data, 42);
  const Normalization norm = make_normalization("standard");
  ModelSpec spec = make_spec(config.model, data.class_names, norm.mean, norm.std);
  const int64_t n = splits.train.size(), b = config.train.batch_size;

  // Bare loop: what any training script must do per step.
  double bare = 0, assembly = 0;
  int64_t step_ops = 0;
  const bool bf16 = use_bf16_autocast(config.train.mixed_precision, device);
  {
    auto model = fresh_model(spec, splits.train);
    model->to(device);
    auto optimizer = make_optimizer(config.train, *model);
    Augmenter augmenter(config.augment);
    auto train = splits.train.to(device);
    auto order = epoch_order(n, 42, 0);
    model->train();
    torch::Tensor last_loss;
    bool timed = false;  // not while warming up
    auto run_step = [&](int64_t step, bool count) {
      std::optional<OpCounter> counting;
      if (count) counting.emplace();
      const auto d0 = Clock::now();
      auto batch = train.select(rank_batch(order, step, b, 0, 1));
      // Channels-last, as the trainer feeds its models.
      auto x = augmenter.apply(normalize_images(batch.images, norm), step_seed(42, 0, step))
                   .contiguous(at::MemoryFormat::ChannelsLast);
      if (timed) assembly += seconds_since(d0);
      clear_gradients(*optimizer);
      torch::Tensor logits;
      {
        compat::AutocastGuard autocast(bf16, device.type());
        logits = model->forward(x);
      }
      auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), batch.labels);
      loss.backward();
      optimizer->step();
      last_loss = loss.detach();
      if (counting) {
        step_ops = counting->ops();
        OpCounter::print_names("bare-loop step");
      }
    };
    // Untimed first steps: CUDA's lazy start and cuDNN's choice of
    // algorithms (benchmark mode) would fall into this loop alone, which
    // runs first, and make it look three times slower than the Trainer on
    // a GPU. The Trainer below finds them done, as a second epoch would.
    for (int64_t step = 0; step < std::min<int64_t>(3, steps_per_epoch(n, b)); ++step) run_step(step, false);
    if (last_loss.defined()) (void)last_loss.item<double>();
    timed = true;
    const auto t0 = Clock::now();
    // Ops are counted on the second step, as before the warm-up was added
    // (the first allocated the optimiser's state).
    for (int64_t step = 0; step < steps_per_epoch(n, b); ++step) run_step(step, step == 1);
    // One wait at the end, as the trainer now waits only when it reads its
    // metrics: on a GPU the steps run queued behind the host.
    if (last_loss.defined()) (void)last_loss.item<double>();
    bare = seconds_since(t0);
  }

  // The optimiser step alone on the model's parameters, with fixed gradients:
  // milliseconds and top-level ops per step.
  size_t tensors = 0;
  auto time_step = [&](StepKernels kernels) {
    auto model = fresh_model(spec, splits.train);
    model->to(device);
    tensors = model->parameters().size();
    auto optimizer = make_optimizer(config.train, *model, kernels);
    torch::manual_seed(2);
    for (auto& p : model->parameters()) p.mutable_grad() = torch::randn_like(p) * 1e-3;
    const auto wait = [&] { (void)model->parameters().front().sum().item<double>(); };
    for (int i = 0; i < 3; ++i) optimizer->step();
    wait();
    int64_t ops = 0;
    {
      OpCounter counter;
      optimizer->step();
      ops = counter.ops();
    }
    const int reps = 50;
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) optimizer->step();
    wait();
    return std::make_pair(seconds_since(t0) / reps * 1e3, ops);
  };
  const auto [per_tensor_ms, per_tensor_ops] = time_step(StepKernels::kPerTensor);
  const auto [foreach_ms, foreach_ops] = time_step(StepKernels::kForeach);

  // The full loop: the Trainer with a real run's callbacks (checkpoints,
  // CSV, TensorBoard, history, progress) on the same number of steps.
  double full_steps = 0, full_epoch = 0;
  auto trainer_ops = std::make_shared<StepOps>();
  {
    auto model = fresh_model(spec, splits.train);
    auto dist = make_single_process_context();
    Trainer trainer(config, splits, model, spec, device, *dist);
    trainer.add_callback(trainer_ops);
    for (auto& cb : make_callbacks(config, RunFolder(config.run.output_dir), {}).all) trainer.add_callback(cb);
    const auto t0 = Clock::now();
    auto fit = trainer.fit();
    full_steps = fit.totals.train_seconds;
    full_epoch = seconds_since(t0);
  }
  std::cout << "model=" << spec.type << (spec.type == "resnet" ? std::to_string(spec.depth) : "") << " images=" << n
            << " batch=" << b << " threads=" << threads << " device=" << device.str() << "\n"
            << "bare loop:       " << bare << " s, " << n / bare << " img/s" << (bf16 ? " (bf16 autocast)" : "") << "\n"
            << "ops per step:    " << step_ops << " top-level ATen ops in a bare-loop step, " << trainer_ops->ops
            << " in a trainer step with its callbacks\n"
            << "batch assembly:  " << assembly << " s, " << assembly / bare * 100 << "% of the bare loop"
            << (device.is_cuda() ? " (CUDA: launch time only)" : "") << "\n"
            << "optimizer step:  " << config.train.optimizer << " on " << tensors << " tensors, per-tensor "
            << per_tensor_ms << " ms (" << per_tensor_ops << " ops), foreach " << foreach_ms << " ms (" << foreach_ops
            << " ops)\n"
            << "trainer steps:   " << full_steps << " s, " << n / full_steps << " img/s, overhead "
            << (full_steps / bare - 1) * 100 << "%\n"
            << "trainer epoch:   " << full_epoch << " s (with validation of " << splits.val.size()
            << " images and epoch-end callbacks)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_training MODEL [IMAGES] [BATCH] [PRESET]   (data from $CIFAR10_DATA_ROOT)\n";
    return 2;
  }
  // The same one-line errors as cifar10 (a missing data folder is the usual one).
  try {
    return run_bench(argc, argv);
  } catch (const c10::Error& e) {
    std::cerr << "error: LibTorch: " << first_line(e.what_without_backtrace()) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
