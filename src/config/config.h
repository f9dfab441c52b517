// The whole run configuration: plain structs with defaults, one field per
// flag (`--model-type` <-> model.model_type). Defaults follow the original
// system's config.py where it had one.
#pragma once
#include <set>
#include <string>
#include <vector>

namespace cifar {

struct DataConfig {
  std::string data_dir = "data";        // folder holding (or to receive) cifar-10-batches-bin/
  std::string data_archive;             // local cifar-10-binary.tar.gz to extract instead of downloading
  std::string data_url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";  // download source
  std::string data_md5 = "c32a1d4ab5d03f1284b67883e8d87530";  // expected archive MD5 ("none" skips)
  int validation_size = 5000;           // images held out of the 50,000 for validation
  int train_limit = 0;                  // use only the first N training images (0 = all)
  int test_limit = 0;                   // evaluate on the first N test images (0 = all)
  std::string normalization = "standard";  // standard (per-channel mean/std) | unit ([0,1])
};

struct AugmentConfig {
  double rotation = 15.0;     // max random rotation, degrees
  double translation = 0.1;   // max random shift, fraction of the image size
  double zoom = 0.1;          // max random zoom, fraction
  bool flip = true;           // random horizontal flip
  int crop_padding = 0;       // random crop after padding by this many pixels (0 = off)
  int cutout = 0;             // side of a random zeroed square (0 = off)
};

struct ModelConfig {
  std::string model_type = "resnet";  // resnet | cnn | efficientnet | fast (or resnet18, resnet56, ...)
  int depth = 0;                      // ResNet depth: 18, 34, 50, 20, 32, 56, 110 (0 = 18)
  int width = 0;                      // base width multiplier for the fast net (0 = default)
  int input_size = 32;                // model input side; >32 upsamples (EfficientNet)
  double dropout_rate = 0.3;          // dropout before the classifier
  std::string pretrained_weights;     // imagenet | none | FILE (.pth, .safetensors); "" = imagenet for efficientnet
  // Where imagenet is downloaded from: torchvision 0.14's EfficientNet_B0_Weights.IMAGENET1K_V1.
  std::string pretrained_url = "https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth";
  bool freeze_backbone = false;       // train only the head first, then fine-tune everything
  int freeze_epochs = 5;              // epochs of head-only training with --freeze-backbone
  bool summary = false;               // print a layer summary and exit
};

struct TrainConfig {
  int epochs = 100;                       // training epochs
  int batch_size = 128;                   // global batch size
  double learning_rate = 0.001;           // initial learning rate
  std::string optimizer = "adam";         // adam | adamw | sgd
  double momentum = 0.9;                  // SGD momentum
  bool nesterov = false;                  // SGD Nesterov momentum
  double regularization_factor = 1e-4;    // L2 weight decay on conv/linear weights
  double label_smoothing = 0.0;           // cross-entropy label smoothing
  double grad_clip = 0.0;                 // clip gradient norm (0 = off)
  int grad_accumulation = 1;              // micro-batches per optimiser step
  std::string lr_schedule = "plateau";    // plateau | cosine | onecycle | step | constant
  int warmup_epochs = 0;                  // linear warm-up epochs (cosine)
  int step_size = 30;                     // epochs between decays (step)
  double step_gamma = 0.1;                // decay factor (step)
  double plateau_factor = 0.5;            // ReduceLROnPlateau factor
  int plateau_patience = 5;               // ReduceLROnPlateau patience
  double min_lr = 1e-6;                   // ReduceLROnPlateau floor
  int early_stopping_patience = 15;       // EarlyStopping patience (0 = off)
  std::string monitor = "val_loss";       // metric for early stopping and best checkpoint
  bool restore_best_weights = true;       // restore the best weights at the end (Keras 3)
  std::string mixed_precision = "auto";   // auto (bf16 on CUDA) | on (CUDA, bf16 CPUs) | off
  int log_every = 50;                     // TensorBoard scalars every N steps (0 = per epoch only)
};

struct RunConfig {
  std::string output_dir = ".";      // holds checkpoints/, logs/, results/
  std::string device = "auto";       // auto | cpu | cuda
  int seed = 42;                     // seeds data split, order, augmentation and weights
  int threads = 0;                   // intra-op threads (0 = usable cores)
  bool deterministic = false;        // deterministic kernels (slower on GPU)
  std::string load_model;            // start from (or evaluate) these weights
  std::string resume;                // continue a run exactly from this checkpoint
  bool skip_training = false;        // evaluate only (with --load-model)
  bool skip_inference = false;       // skip the evaluation stage
  bool skip_visualization = false;   // skip the plots
  bool tta = false;                  // test-time augmentation (flip + shifts)
  std::string preset;                // quick | full: named settings (flags still override)
  std::string config_file;           // JSON or YAML with the same keys as the flags
  std::string strategy = "mirrored";  // mirrored (one process per GPU) | none
  int num_gpus = 2;                  // GPUs for the mirrored strategy (capped at those present)
};

struct DistConfig {
  std::string backend = "auto";  // auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl
  int timeout = 300;             // seconds the rendezvous or any collective may wait for a peer
  int nproc_per_node = 0;        // start N worker processes on this machine (0 = as --strategy says)
  bool sync_bn = false;          // average batch-norm running statistics over ranks, not rank 0's
};

struct Config {
  DataConfig data;
  AugmentConfig augment;
  ModelConfig model;
  TrainConfig train;
  RunConfig run;
  DistConfig dist;
};

// Checks ranges and names; throws UserError naming the flag, value and fix.
void validate(const Config& config);

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
