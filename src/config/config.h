// The whole run configuration: plain structs with defaults, one field per
// flag (`--model-type` <-> model.model_type). Defaults follow the original
// system's config.py where it had one. What each field means, its scope and
// the values it accepts are in the flag table, fields.h.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cifar {

struct DataConfig {
  std::string data_dir = "data";
  std::string data_archive;
  std::string data_url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
  std::string data_md5 = "c32a1d4ab5d03f1284b67883e8d87530";
  int validation_size = 5000;
  int train_limit = 0;
  int test_limit = 0;
  std::string normalization = "standard";
};

struct AugmentConfig {
  double rotation = 15.0;
  double translation = 0.1;
  double zoom = 0.1;
  bool flip = true;
  bool alternating_flip = false;
  int crop_padding = 0;
  int cutout = 0;
};

struct ModelConfig {
  std::string model_type = "resnet";
  int depth = 0;
  int width = 0;
  int input_size = 32;
  double dropout_rate = 0.3;
  std::string pretrained_weights;  // "" = imagenet for efficientnet (apply_pretrained_defaults)
  // torchvision 0.14's EfficientNet_B0_Weights.IMAGENET1K_V1.
  std::string pretrained_url = "https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth";
  bool freeze_backbone = false;
  int freeze_epochs = 5;
  bool summary = false;
};

struct TrainConfig {
  int epochs = 100;
  int batch_size = 128;
  double learning_rate = 0.001;
  std::string optimizer = "adam";
  double momentum = 0.9;
  bool nesterov = false;
  double regularization_factor = 1e-4;
  double label_smoothing = 0.0;
  double grad_clip = 0.0;
  int grad_accumulation = 1;
  std::string lr_schedule = "plateau";
  int warmup_epochs = 0;
  int step_size = 30;
  double step_gamma = 0.1;
  double plateau_factor = 0.5;
  int plateau_patience = 5;
  double min_lr = 1e-6;
  int early_stopping_patience = 15;
  double early_stopping_min_delta = 0;
  std::string early_stopping_baseline;  // "" = none, else a number
  int early_stopping_start_epoch = 0;
  double plateau_min_delta = 1e-4;
  int plateau_cooldown = 0;
  std::string monitor = "val_loss";
  bool restore_best_weights = true;
  std::string mixed_precision = "auto";
  int log_every = 50;
  std::string time_budget;  // "" or "none": no budget
  bool lookahead = false;
};

struct RunConfig {
  std::string output_dir = ".";
  std::string device = "auto";
  int seed = 42;
  int threads = 0;
  bool deterministic = false;
  std::string load_model;
  std::string resume;
  bool skip_training = false;
  bool skip_inference = false;
  bool skip_visualization = false;
  bool tta = false;
  std::string calibration = "temperature";
  std::string preset;
  std::string config_file;  // --config: read before the table's flags, so not in it
  bool verbose = false;
  std::string strategy = "mirrored";
  int num_gpus = 2;
};

struct DistConfig {
  std::string backend = "auto";
  int timeout = 300;
  int nproc_per_node = 0;
  bool sync_bn = false;
};

struct Config {
  DataConfig data;
  AugmentConfig augment;
  ModelConfig model;
  TrainConfig train;
  RunConfig run;
  DistConfig dist;
};

// Checks every field against its rule in fields.h, then the rules between
// fields; throws UserError naming the flag, value and fix.
void validate(const Config& config);

// A duration as --time-budget takes it: "90s", "10m", "1h", "1h30m",
// "2h5m30s", or plain seconds ("600"); nullopt when it is none of those,
// not positive, or over a week.
std::optional<double> parse_duration(const std::string& text);

// A finite number written in full ("0.25", "-1e-3"); nullopt otherwise.
std::optional<double> parse_number(const std::string& text);

// Whether a resume takes the setting named `key` (a flag name) from the
// checkpoint when no flag gives it: the run's own settings, not this
// machine's or this invocation's (fields.h, Scope). False for unknown keys.
bool taken_on_resume(const std::string& key);

// Whether ranks of one run may be started with different values of `key`:
// paths, threads, device and what only rank 0 or the launcher reads.
bool may_differ_between_ranks(const std::string& key);

// Sets --width and --input-size back to their defaults unless `given` (the
// flags the user set) holds them or the model type uses them: a preset's
// fast-net width, or a resumed run's, is no setting of another model's.
void drop_other_models_flags(ModelConfig& model, const std::set<std::string>& given);

// EfficientNet starts from ImageNet weights, as the original's did, unless
// --pretrained-weights says otherwise or a checkpoint (--load-model,
// --resume) brings weights; from ImageNet weights it trains the head first
// (--freeze-backbone) unless that flag is given.
void apply_pretrained_defaults(Config& config, const std::set<std::string>& given);

}  // namespace cifar
