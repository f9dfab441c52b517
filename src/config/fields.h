// The one table of settings: per flag its name, the Config field it sets,
// its help text, its scope and the values it accepts. CLI registration,
// --help, validate(), config files, results/config.json, checkpoints, the
// resume merge and the ranks' agreement check all walk it, so a new
// setting is added in exactly two places: its struct (config.h) and here.
#pragma once
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace cifar {

// Whose a setting is. It decides what a resume takes from the checkpoint
// (taken_on_resume: kRun only) and what ranks may disagree on
// (may_differ_between_ranks: kMachine only).
enum class Scope {
  kRun,         // the run's own: saved with it, taken from its checkpoint on resume, the same on every rank
  kInvocation,  // what this command does or starts from: never the checkpoint's, the same on every rank
  kMachine,     // this machine's (paths, threads, device) or read by rank 0 or the launcher alone: may differ
};

// The values a field accepts: a range for a number, a list of words for a
// text (no words: any text). Bounds hold for both ints and floats.
struct Rule {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;  // ( ) rather than [ ]
  std::vector<std::string> words;
  bool empty_ok = false;  // with words: "" (not set) is accepted too
  std::string why;        // said after a refusal: why the bound is where it is
};

inline Rule range(double min, double max, bool min_open, bool max_open) {
  Rule r;
  r.min = min;
  r.max = max;
  r.min_open = min_open;
  r.max_open = max_open;
  return r;
}
inline Rule at_least(double min) { return range(min, std::numeric_limits<double>::infinity(), false, false); }
inline Rule closed(double min, double max) { return range(min, max, false, false); }      // [min, max]
inline Rule closed_open(double min, double max) { return range(min, max, false, true); }  // [min, max)
inline Rule open_closed(double min, double max) { return range(min, max, true, false); }  // (min, max]
inline Rule open_open(double min, double max) { return range(min, max, true, true); }      // (min, max)
inline Rule one_of(std::vector<std::string> words, bool empty_ok = false) {
  Rule r;
  r.words = std::move(words);
  r.empty_ok = empty_ok;
  return r;
}
inline Rule explained(Rule rule, std::string why) {
  rule.why = std::move(why);
  return rule;
}

struct Field {
  const char* name;  // the flag without "--"; the key in config files, config.json and checkpoints
  const char* help;
  Scope scope;
  Rule rule;
};

// The most intra-op threads --threads may ask for on this machine (see
// config.cpp for the numbers).
int max_threads();

// The bounds of the float settings: each is used as a float32 in the
// optimisers or the augmentation, so each is finite there; beyond that
// they are the widest a run could use with sense (a learning rate of 100
// is already above any published schedule's peak), so a typo such as 1e300
// is named here and not as a float overflow inside the first step.
template <class Config_, class Visitor>
void visit_fields(Config_& c, Visitor&& v) {
  const Scope run = Scope::kRun, invocation = Scope::kInvocation, machine = Scope::kMachine;
  // Data
  v({"data-dir", "Folder holding (or to receive) cifar-10-batches-bin/", machine}, c.data.data_dir);
  v({"data-archive", "Local cifar-10-binary.tar.gz to extract instead of downloading", machine}, c.data.data_archive);
  v({"data-url", "Where to download the CIFAR-10 binary archive from", machine}, c.data.data_url);
  v({"data-md5", "Expected MD5 of the archive ('none' skips the check)", machine}, c.data.data_md5);
  v({"validation-size", "Training images held out for validation", run, closed_open(0, 50000)}, c.data.validation_size);
  v({"train-limit", "Use only the first N training images (0 = all)", run, at_least(0)}, c.data.train_limit);
  v({"test-limit", "Evaluate on the first N test images (0 = all)", run, at_least(0)}, c.data.test_limit);
  v({"normalization", "Input scaling (standard: per-channel mean/std of the training images; unit: [0,1])", run,
     one_of({"standard", "unit"})},
    c.data.normalization);
  // Augmentation
  v({"rotation", "Max random rotation in degrees (0 = off)", run, closed(0, 180)}, c.augment.rotation);
  v({"translation", "Max random shift, fraction of the image (0 = off)", run, closed_open(0, 1)},
    c.augment.translation);
  v({"zoom", "Max random zoom, fraction (0 = off)", run, closed_open(0, 1)}, c.augment.zoom);
  v({"flip", "Random horizontal flip", run}, c.augment.flip);
  v({"alternating-flip", "With --flip: flip each image every other epoch from a random start (airbench)", run},
    c.augment.alternating_flip);
  v({"crop-padding", "Random crop after padding by N pixels (0 = off)", run, closed(0, 16)}, c.augment.crop_padding);
  v({"cutout", "Side of a random zeroed square (0 = off)", run, closed(0, 32)}, c.augment.cutout);
  // Model (the type is checked against the model registry, a layer above)
  v({"model-type", "resnet | cnn | efficientnet | fast | mlp (or resnet18, resnet56, ...)", run}, c.model.model_type);
  v({"depth", "ResNet depth: 18, 34, 50, 20, 32, 56, 110 (0 = 18)", run, at_least(0)}, c.model.depth);
  // 1024 = kMaxWidth (models/net.h), the bound a checkpoint's spec is held to.
  v({"width", "Base width of the fast net (0 = its default, 64)", run, closed(0, 1024)}, c.model.width);
  v({"input-size", "EfficientNet input side in pixels; above 32 upsamples", run, closed(32, 512)}, c.model.input_size);
  v({"dropout-rate", "Dropout before the classifier (not in the fast net)", run, closed_open(0, 1)},
    c.model.dropout_rate);
  v({"pretrained-weights",
     "EfficientNet-B0 start: imagenet (its default; downloaded once) | none (from scratch) | FILE (.pth, .safetensors)",
     invocation},
    c.model.pretrained_weights);
  v({"pretrained-url", "Where imagenet weights are downloaded from (then cached)", machine}, c.model.pretrained_url);
  v({"freeze-backbone", "Train only the head first, then fine-tune all (on with imagenet)", run},
    c.model.freeze_backbone);
  v({"freeze-epochs", "Head-only epochs with --freeze-backbone", run, at_least(0)}, c.model.freeze_epochs);
  v({"summary", "Print a layer summary of the model and exit", invocation}, c.model.summary);
  // Training
  v({"epochs", "Number of training epochs", run, at_least(0)}, c.train.epochs);
  v({"batch-size", "Global training batch size", run, at_least(1)}, c.train.batch_size);
  v({"learning-rate", "Initial learning rate", run, open_closed(0, 100)}, c.train.learning_rate);
  v({"optimizer", "Optimiser", run, one_of({"adam", "adamw", "sgd"})}, c.train.optimizer);
  v({"momentum", "SGD momentum", run, closed_open(0, 1)}, c.train.momentum);
  v({"nesterov", "SGD with Nesterov momentum", run}, c.train.nesterov);
  v({"regularization-factor", "L2 weight decay on conv/linear weights", run, closed(0, 1)},
    c.train.regularization_factor);
  v({"label-smoothing", "Cross-entropy label smoothing", run, closed_open(0, 1)}, c.train.label_smoothing);
  v({"grad-clip", "Clip the gradient norm to this value (0 = off)", run, closed(0, 1e6)}, c.train.grad_clip);
  v({"grad-accumulation", "Micro-batches per optimiser step (at most half of --batch-size)", run, at_least(1)},
    c.train.grad_accumulation);
  v({"lr-schedule", "Learning-rate schedule", run, one_of({"plateau", "cosine", "onecycle", "step", "constant"})},
    c.train.lr_schedule);
  v({"warmup-epochs", "Linear warm-up epochs (cosine, onecycle)", run, at_least(0)}, c.train.warmup_epochs);
  v({"step-size", "Epochs between decays (step schedule)", run, at_least(1)}, c.train.step_size);
  v({"step-gamma", "Decay factor (step schedule)", run, open_closed(0, 1)}, c.train.step_gamma);
  v({"plateau-factor", "ReduceLROnPlateau factor", run, open_open(0, 1)}, c.train.plateau_factor);
  v({"plateau-patience", "ReduceLROnPlateau patience in epochs", run, at_least(0)}, c.train.plateau_patience);
  v({"min-lr", "ReduceLROnPlateau lower bound", run, closed(0, 100)}, c.train.min_lr);
  v({"early-stopping-patience", "EarlyStopping patience (0 = off)", run, at_least(0)}, c.train.early_stopping_patience);
  // Keras' options of the two callbacks, under its names.
  v({"early-stopping-min-delta", "EarlyStopping min_delta: the least change that counts as an improvement", run,
     closed(0, 1e6)},
    c.train.early_stopping_min_delta);
  v({"early-stopping-baseline", "EarlyStopping baseline: a value the monitor must beat to reset the patience", run},
    c.train.early_stopping_baseline);
  v({"early-stopping-start-epoch", "EarlyStopping start_from_epoch: epochs before it are not watched", run,
     at_least(0)},
    c.train.early_stopping_start_epoch);
  v({"plateau-min-delta", "ReduceLROnPlateau min_delta: the least change that counts as an improvement", run,
     closed(0, 1e6)},
    c.train.plateau_min_delta);
  v({"plateau-cooldown", "ReduceLROnPlateau cooldown: epochs after a reduction before patience counts again", run,
     at_least(0)},
    c.train.plateau_cooldown);
  v({"monitor", "Metric for early stopping and the best checkpoint", run,
     one_of({"val_loss", "val_accuracy", "val_top3_accuracy", "loss", "accuracy"})},
    c.train.monitor);
  v({"restore-best-weights", "Restore the best weights when training ends (Keras 3 semantics)", run},
    c.train.restore_best_weights);
  v({"mixed-precision", "bf16 autocast (auto: on CUDA; on: also on CPUs with bf16 instructions)", run,
     one_of({"auto", "on", "off"})},
    c.train.mixed_precision);
  v({"log-every", "TensorBoard scalars every N steps (0 = per epoch only)", run, at_least(0)}, c.train.log_every);
  // Checked by parse_duration (validate): a rule of words or bounds cannot say it.
  v({"time-budget", "Fit training and the final evaluation into this time (10m, 90s, 1h30m): fewer epochs if need be; none: no budget",
     run},
    c.train.time_budget);
  v({"lookahead", "Lookahead weights (airbench): slow weights pulled toward the trained ones every 5 steps", run},
    c.train.lookahead);
  // Run
  v({"output-dir", "Holds checkpoints/, logs/ and results/", machine}, c.run.output_dir);
  v({"device", "Device", machine, one_of({"auto", "cpu", "cuda"})}, c.run.device);
  v({"seed", "Seeds the split, data order, augmentation and weights", run}, c.run.seed);
  v({"threads", "Intra-op CPU threads (0 = usable cores)", machine,
     explained(closed(0, max_threads()), "4 per usable core, 16 at least: more threads only wait for each other")},
    c.run.threads);
  v({"deterministic", "Deterministic kernels (slower on GPU)", run}, c.run.deterministic);
  v({"load-model", "Start from (or evaluate) the weights in this checkpoint", invocation}, c.run.load_model);
  v({"resume", "Continue a run exactly from this checkpoint (flags not given are the run's)", invocation},
    c.run.resume);
  v({"skip-training", "Skip training (evaluate --load-model)", invocation}, c.run.skip_training);
  v({"skip-inference", "Skip the evaluation stage", invocation}, c.run.skip_inference);
  v({"skip-visualization", "Skip the plots and the HTML report", machine}, c.run.skip_visualization);
  v({"tta", "Test-time augmentation: flip and small shifts", run}, c.run.tta);
  v({"calibration", "temperature: fit one temperature on the validation split after training | none", run,
     one_of({"temperature", "none"})},
    c.run.calibration);
  v({"preset", "Named settings: quick (a CPU, 10 min), speedrun (airbench94, a GPU), full (explicit flags override)",
     run, one_of({"quick", "speedrun", "full"}, true)},
    c.run.preset);
  v({"verbose", "Print every setting at the start (results/config.json has them either way)", machine},
    c.run.verbose);
  v({"strategy", "Multi-GPU strategy (mirrored: one process per GPU)", machine, one_of({"mirrored", "none"})},
    c.run.strategy);
  v({"num-gpus", "GPUs used by the mirrored strategy (capped at those present)", machine, at_least(0)}, c.run.num_gpus);
  // Distributed
  v({"nproc-per-node", "Start N worker processes on this machine (0 = as --strategy says)", machine, closed(0, 256)},
    c.dist.nproc_per_node);
  v({"dist-backend", "Process group (auto: NCCL on CUDA, Gloo on CPU)", invocation, one_of({"auto", "gloo", "nccl"})},
    c.dist.backend);
  v({"dist-timeout", "Seconds the rendezvous or a collective may wait for a peer", invocation, at_least(1)},
    c.dist.timeout);
  v({"sync-bn", "Average batch-norm running statistics over ranks (not only rank 0's)", run}, c.dist.sync_bn);
}

// "in (0, 100]", "0 or more", "adam | adamw | sgd"; empty for any value.
std::string rule_text(const Rule& rule);
// `help` with the rule's text ("Initial learning rate, in (0, 100]",
// "Optimiser: adam | adamw | sgd"): what --help prints for a field.
std::string help_text(const Field& field);
// A number as a person writes it: 0.001, 1e-6, 1e300, -1.
std::string number_text(double value);

// The table's field named `name` (a flag without "--"), if there is one.
std::optional<Field> find_field(const std::string& name);

// Throws UserError "invalid --NAME VALUE: what is expected" when `value`
// breaks the field's rule.
void check_field(const Field& field, double value);
void check_field(const Field& field, const std::string& value);
inline void check_field(const Field& field, int value) { check_field(field, static_cast<double>(value)); }
inline void check_field(const Field&, bool) {}

}  // namespace cifar
