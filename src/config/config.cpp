#include "config/config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "common/printable.h"

namespace cifar {
namespace {

// Values may come from a config file: quoted through printable(), so a
// control character in one cannot break the error line (fuzz/config_fuzz).
void require(bool ok, const std::string& flag, const std::string& value, const std::string& want) {
  if (!ok) throw UserError("invalid --" + flag + " " + printable(value) + ": " + want);
}

template <class T>
void require_one_of(const std::string& flag, const std::string& value, const std::set<T>& allowed) {
  if (allowed.count(value)) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw UserError("invalid --" + flag + " '" + printable(value.substr(0, 80)) + "': expected one of " + list);
}

}  // namespace

void drop_other_models_flags(ModelConfig& model, const std::set<std::string>& given) {
  const ModelConfig defaults;
  if (!given.count("width") && model.model_type != "fast") model.width = defaults.width;
  if (!given.count("input-size") && model.model_type != "efficientnet") model.input_size = defaults.input_size;
}

void apply_pretrained_defaults(Config& config, const std::set<std::string>& given) {
  ModelConfig& m = config.model;
  const bool checkpoint = !config.run.load_model.empty() || !config.run.resume.empty();
  if (!given.count("pretrained-weights") && m.model_type == "efficientnet" && !checkpoint) {
    m.pretrained_weights = "imagenet";
  }
  if (!given.count("freeze-backbone") && m.pretrained_weights == "imagenet") m.freeze_backbone = true;
}

void validate(const Config& c) {
  const auto& t = c.train;
  require(t.epochs >= 0, "epochs", std::to_string(t.epochs), "must be 0 or more");
  require(t.batch_size > 0, "batch-size", std::to_string(t.batch_size), "must be at least 1");
  require(t.learning_rate > 0 && std::isfinite(t.learning_rate), "learning-rate", std::to_string(t.learning_rate),
          "must be a positive number");
  require(t.regularization_factor >= 0 && std::isfinite(t.regularization_factor), "regularization-factor",
          std::to_string(t.regularization_factor), "must be 0 or more");
  require(t.label_smoothing >= 0 && t.label_smoothing < 1, "label-smoothing",
          std::to_string(t.label_smoothing), "must be in [0, 1)");
  require(t.grad_clip >= 0 && std::isfinite(t.grad_clip), "grad-clip", std::to_string(t.grad_clip),
          "must be 0 or more");
  require(t.grad_accumulation >= 1 && t.grad_accumulation <= std::max(1, t.batch_size / 2), "grad-accumulation",
          std::to_string(t.grad_accumulation),
          "must be between 1 and half of --batch-size (micro-batches of two images or more)");
  require(t.momentum >= 0 && t.momentum < 1, "momentum", std::to_string(t.momentum), "must be in [0, 1)");
  require(!(t.optimizer == "sgd" && t.nesterov && t.momentum == 0), "momentum", "0",
          "--nesterov needs a momentum above 0");
  require(t.step_gamma > 0 && std::isfinite(t.step_gamma), "step-gamma", std::to_string(t.step_gamma),
          "must be a positive number");
  require(t.plateau_patience >= 0, "plateau-patience", std::to_string(t.plateau_patience), "must be 0 or more");
  require(t.min_lr >= 0 && std::isfinite(t.min_lr), "min-lr", std::to_string(t.min_lr), "must be 0 or more");
  require(t.log_every >= 0, "log-every", std::to_string(t.log_every), "must be 0 or more");
  require(t.plateau_factor > 0 && t.plateau_factor < 1, "plateau-factor",
          std::to_string(t.plateau_factor), "must be in (0, 1)");
  require(t.step_size >= 1, "step-size", std::to_string(t.step_size), "must be at least 1");
  require(t.early_stopping_patience >= 0, "early-stopping-patience",
          std::to_string(t.early_stopping_patience), "must be 0 or more");
  require(t.warmup_epochs >= 0, "warmup-epochs", std::to_string(t.warmup_epochs), "must be 0 or more");
  require_one_of<std::string>("optimizer", t.optimizer, {"adam", "adamw", "sgd"});
  require_one_of<std::string>("lr-schedule", t.lr_schedule,
                              {"plateau", "cosine", "onecycle", "step", "constant"});
  require_one_of<std::string>("mixed-precision", t.mixed_precision, {"auto", "on", "off"});
  require_one_of<std::string>("monitor", t.monitor,
                              {"val_loss", "val_accuracy", "val_top3_accuracy", "loss", "accuracy"});

  const auto& m = c.model;
  require(m.dropout_rate >= 0 && m.dropout_rate < 1, "dropout-rate", std::to_string(m.dropout_rate),
          "must be in [0, 1)");
  require(m.input_size >= 32 && m.input_size <= 512, "input-size", std::to_string(m.input_size),
          "must be between 32 and 512");
  require(m.depth >= 0, "depth", std::to_string(m.depth), "must be 0 or a supported depth");
  // 1024 = kMaxWidth (models/net.h), the bound a checkpoint's spec is held to.
  require(m.width >= 0 && m.width <= 1024, "width", std::to_string(m.width), "must be in [0, 1024]");
  require(m.freeze_epochs >= 0, "freeze-epochs", std::to_string(m.freeze_epochs), "must be 0 or more");

  const auto& d = c.data;
  require(d.validation_size >= 0 && d.validation_size < 50000, "validation-size",
          std::to_string(d.validation_size), "must be in [0, 50000)");
  require(d.train_limit >= 0, "train-limit", std::to_string(d.train_limit), "must be 0 or more");
  require(d.test_limit >= 0, "test-limit", std::to_string(d.test_limit), "must be 0 or more");
  require_one_of<std::string>("normalization", d.normalization, {"standard", "unit"});
  require(!(d.validation_size == 0 && t.monitor.rfind("val_", 0) == 0 && !c.run.skip_training), "monitor",
          t.monitor, "needs validation images, and --validation-size is 0 (hint: --monitor loss or accuracy)");

  const auto& a = c.augment;
  require(a.rotation >= 0 && a.rotation <= 180, "rotation", std::to_string(a.rotation), "must be in [0, 180]");
  require(a.translation >= 0 && a.translation < 1, "translation", std::to_string(a.translation),
          "must be in [0, 1)");
  require(a.zoom >= 0 && a.zoom < 1, "zoom", std::to_string(a.zoom), "must be in [0, 1)");
  require(a.crop_padding >= 0 && a.crop_padding <= 16, "crop-padding", std::to_string(a.crop_padding),
          "must be in [0, 16]");
  require(a.cutout >= 0 && a.cutout <= 32, "cutout", std::to_string(a.cutout), "must be in [0, 32]");

  const auto& r = c.run;
  require_one_of<std::string>("device", r.device, {"auto", "cpu", "cuda"});
  require_one_of<std::string>("strategy", r.strategy, {"mirrored", "none"});
  require(r.threads >= 0, "threads", std::to_string(r.threads), "must be 0 or more");
  require(r.num_gpus >= 0, "num-gpus", std::to_string(r.num_gpus), "must be 0 or more");

  const auto& dist = c.dist;
  require_one_of<std::string>("dist-backend", dist.backend, {"auto", "gloo", "nccl"});
  require(dist.timeout >= 1, "dist-timeout", std::to_string(dist.timeout), "must be at least 1 second");
  require(dist.nproc_per_node >= 0 && dist.nproc_per_node <= 256, "nproc-per-node",
          std::to_string(dist.nproc_per_node), "must be in [0, 256]");
  require(!(r.skip_training && r.load_model.empty() && r.resume.empty()), "skip-training", "",
          "needs --load-model PATH (the weights to evaluate)");
  require(r.resume.empty() || r.load_model.empty(), "resume", r.resume,
          "use either --resume (continue a run) or --load-model (start from weights), not both");
  const bool pretrained = !m.pretrained_weights.empty() && m.pretrained_weights != "none";
  require(!pretrained || (r.resume.empty() && r.load_model.empty()), "pretrained-weights", m.pretrained_weights,
          "initialises a new model, and --" + std::string(r.resume.empty() ? "load-model" : "resume") +
              " brings the checkpoint's own weights (hint: drop one of the two)");
  require(!pretrained || m.model_type == "efficientnet", "pretrained-weights", m.pretrained_weights,
          "holds EfficientNet-B0 weights, for --model-type efficientnet, not " + printable(m.model_type.substr(0, 40)));
}

}  // namespace cifar
