// Checkpoints (--resume, --load-model, predict --load-model, EarlyStopping's
// best weights). The first byte picks what the rest is:
//   even: a whole checkpoint file. LibTorch's zip reader and unpickler are
//         not instrumented, so libFuzzer sees little coverage inside them;
//         crashes and ASan-visible overflows (its malloc and memcpy are
//         intercepted) still stop the run.
//   odd:  the "meta" JSON record alone, checked as a checkpoint's would be
//         and then read as --resume reads it (resume point, every callback's
//         state). This is our code, instrumented, so coverage guides it.
#include "fuzz_util.h"
#include "models/registry.h"
#include "training/callbacks/csv_logger.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/history.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/tensorboard_callback.h"
#include "training/callbacks/time_budget.h"
#include "checkpoint/checkpoint.h"

namespace {

using namespace cifar;

// The callbacks run_pipeline() installs that carry state, as it builds them.
std::vector<std::shared_ptr<Callback>> stateful_callbacks() {
  const Monitor monitor{"val_loss", "auto", 0.0};
  EarlyStopping::Options es;
  es.monitor = monitor;
  es.restore_best_weights = true;
  es.best_weights_file = "/nonexistent/best_model.pt";
  return {std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{}),
          std::make_shared<EarlyStopping>(es),
          std::make_shared<History>(),
          std::make_shared<CSVLogger>("/nonexistent/logs"),
          std::make_shared<TensorBoardCallback>("/nonexistent/logs"),
          std::make_shared<ModelCheckpoint>("/nonexistent/best_model.pt", monitor, true),
          std::make_shared<ModelCheckpoint>("/nonexistent/latest_model.pt", monitor, false),
          std::make_shared<TimeBudget>(std::cerr)};  // load_state prints nothing
}

void read_meta(std::string_view text) {
  const auto meta = nlohmann::json::parse(text);
  check_checkpoint_meta(meta, "fuzz.pt");
  const ModelSpec spec = spec_from_json(meta.at("spec"));
  fuzz::require(spec.mean.size() == 3 && spec.std.size() == 3, "three channel statistics");
  fuzz::require(spec.width <= kMaxWidth && spec.input_size <= 512, "bounded model size");
  const ResumePoint point = resume_point(meta, "fuzz.pt");
  for (auto& cb : stateful_callbacks()) {
    if (point.callbacks.contains(cb->name())) cb->load_state(point.callbacks.at(cb->name()));
  }
}

void read_file_bytes(std::string_view bytes) {
  const CheckpointData data = parse_checkpoint(bytes, "fuzz.pt");
  const ModelSpec spec = spec_from_json(data.meta.at("spec"));
  // Building the model a checkpoint describes is what every reader does
  // next; check_spec bounds its size. The big ones cost ~0.1 s, so only
  // inputs that got this far pay it.
  NetPtr model = build_model(spec);
  load_model_state(data, *model, "fuzz.pt");
  torch::optim::Adam adam(model->parameters());
  load_optimizer_state(data, adam, "fuzz.pt");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto rest = cifar::fuzz::as_bytes(data + 1, size - 1);
  if (data[0] % 2 == 1) {
    cifar::fuzz::parse_or_refuse([&] { read_meta(rest); });
  } else {
    cifar::fuzz::parse_or_refuse([&] { read_file_bytes(rest); });
  }
  return 0;
}
