// The table that ties every Config field to its flag name and help text.
// CLI registration, config files, results/config.json and checkpoints all
// walk this one table, so a new field is added in exactly two places: the
// struct and here.
#pragma once
#include "config/config.h"

namespace cifar {

template <class Config_, class Visitor>
void visit_fields(Config_& c, Visitor&& v) {
  // Data
  v("data-dir", c.data.data_dir, "Folder holding (or to receive) cifar-10-batches-bin/");
  v("data-archive", c.data.data_archive, "Local cifar-10-binary.tar.gz to extract instead of downloading");
  v("data-url", c.data.data_url, "Where to download the CIFAR-10 binary archive from");
  v("data-md5", c.data.data_md5, "Expected MD5 of the archive ('none' skips the check)");
  v("validation-size", c.data.validation_size, "Training images held out for validation");
  v("train-limit", c.data.train_limit, "Use only the first N training images (0 = all)");
  v("test-limit", c.data.test_limit, "Evaluate on the first N test images (0 = all)");
  v("normalization", c.data.normalization, "standard (per-channel mean/std) | unit ([0,1])");
  // Augmentation
  v("rotation", c.augment.rotation, "Max random rotation in degrees (0 = off)");
  v("translation", c.augment.translation, "Max random shift, fraction of the image (0 = off)");
  v("zoom", c.augment.zoom, "Max random zoom, fraction (0 = off)");
  v("flip", c.augment.flip, "Random horizontal flip");
  v("crop-padding", c.augment.crop_padding, "Random crop after padding by N pixels (0 = off)");
  v("cutout", c.augment.cutout, "Side of a random zeroed square (0 = off)");
  // Model
  v("model-type", c.model.model_type, "resnet | cnn | efficientnet | fast | mlp (or resnet18, resnet56, ...)");
  v("depth", c.model.depth, "ResNet depth: 18, 34, 50, 20, 32, 56, 110 (0 = 18)");
  v("width", c.model.width, "Base width of the fast net (0 = its default, 64)");
  v("input-size", c.model.input_size, "EfficientNet input side in pixels; above 32 upsamples");
  v("dropout-rate", c.model.dropout_rate, "Dropout before the classifier (not in the fast net)");
  v("pretrained-weights", c.model.pretrained_weights,
    "EfficientNet-B0 start: imagenet (its default; downloaded once) | none (from scratch) | FILE (.pth, .safetensors)");
  v("pretrained-url", c.model.pretrained_url, "Where imagenet weights are downloaded from (then cached)");
  v("freeze-backbone", c.model.freeze_backbone, "Train only the head first, then fine-tune all (on with imagenet)");
  v("freeze-epochs", c.model.freeze_epochs, "Head-only epochs with --freeze-backbone");
  v("summary", c.model.summary, "Print a layer summary of the model and exit");
  // Training
  v("epochs", c.train.epochs, "Number of training epochs");
  v("batch-size", c.train.batch_size, "Global training batch size");
  v("learning-rate", c.train.learning_rate, "Initial learning rate");
  v("optimizer", c.train.optimizer, "adam | adamw | sgd");
  v("momentum", c.train.momentum, "SGD momentum");
  v("nesterov", c.train.nesterov, "SGD with Nesterov momentum");
  v("regularization-factor", c.train.regularization_factor, "L2 weight decay on conv/linear weights");
  v("label-smoothing", c.train.label_smoothing, "Cross-entropy label smoothing");
  v("grad-clip", c.train.grad_clip, "Clip the gradient norm to this value (0 = off)");
  v("grad-accumulation", c.train.grad_accumulation, "Micro-batches per optimiser step");
  v("lr-schedule", c.train.lr_schedule, "plateau | cosine | onecycle | step | constant");
  v("warmup-epochs", c.train.warmup_epochs, "Linear warm-up epochs (cosine, onecycle)");
  v("step-size", c.train.step_size, "Epochs between decays (step schedule)");
  v("step-gamma", c.train.step_gamma, "Decay factor (step schedule)");
  v("plateau-factor", c.train.plateau_factor, "ReduceLROnPlateau factor");
  v("plateau-patience", c.train.plateau_patience, "ReduceLROnPlateau patience in epochs");
  v("min-lr", c.train.min_lr, "ReduceLROnPlateau lower bound");
  v("early-stopping-patience", c.train.early_stopping_patience, "EarlyStopping patience (0 = off)");
  v("monitor", c.train.monitor, "Metric for early stopping and the best checkpoint");
  v("restore-best-weights", c.train.restore_best_weights,
    "Restore the best weights when training ends (Keras 3 semantics)");
  v("mixed-precision", c.train.mixed_precision, "auto (bf16 on CUDA) | on (also on CPUs with bf16 instructions) | off");
  v("log-every", c.train.log_every, "TensorBoard scalars every N steps (0 = per epoch only)");
  // Run
  v("output-dir", c.run.output_dir, "Holds checkpoints/, logs/ and results/");
  v("device", c.run.device, "auto | cpu | cuda");
  v("seed", c.run.seed, "Seeds the split, data order, augmentation and weights");
  v("threads", c.run.threads, "Intra-op CPU threads (0 = usable cores)");
  v("deterministic", c.run.deterministic, "Deterministic kernels (slower on GPU)");
  v("load-model", c.run.load_model, "Start from (or evaluate) the weights in this checkpoint");
  v("resume", c.run.resume, "Continue a run exactly from this checkpoint (flags not given are the run's)");
  v("skip-training", c.run.skip_training, "Skip training (evaluate --load-model)");
  v("skip-inference", c.run.skip_inference, "Skip the evaluation stage");
  v("skip-visualization", c.run.skip_visualization, "Skip the plots and the HTML report");
  v("tta", c.run.tta, "Test-time augmentation: flip and small shifts");
  v("preset", c.run.preset, "quick | full: named settings; explicit flags still override");
  v("strategy", c.run.strategy, "mirrored (one process per GPU) | none");
  v("num-gpus", c.run.num_gpus, "GPUs used by the mirrored strategy (capped at those present)");
  // Distributed
  v("nproc-per-node", c.dist.nproc_per_node, "Start N worker processes on this machine (0 = as --strategy says)");
  v("dist-backend", c.dist.backend, "auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl");
  v("dist-timeout", c.dist.timeout, "Seconds the rendezvous or a collective may wait for a peer");
  v("sync-bn", c.dist.sync_bn, "Average batch-norm running statistics over ranks (not only rank 0's)");
}

}  // namespace cifar
