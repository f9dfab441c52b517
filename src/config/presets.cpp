#include "config/presets.h"

#include "common/error.h"

namespace cifar {

void apply_preset(Config& c, const std::string& preset) {
  if (preset.empty() || preset == "full") return;
  if (preset == "quick") {
    // A run that ends within ten minutes on two CPU cores, whatever their
    // kernels (the time budget fixes the epochs), and is still a model worth
    // having (87% or more): the fast net with a one-cycle schedule.
    c.model.model_type = "fast";
    c.model.width = 32;  // 32-128-128: a quarter of airbench's FLOPs, sized for two cores
    c.train.epochs = 14;  // all fit on 2 Xeon-AMX cores, 10-12 on 2 EPYC cores (docs/BENCHMARKS.md)
    c.train.batch_size = 256;
    c.train.optimizer = "sgd";
    c.train.learning_rate = 0.2;
    c.train.nesterov = true;
    c.train.regularization_factor = 5e-4;
    c.train.label_smoothing = 0.2;
    c.train.lr_schedule = "onecycle";
    c.train.warmup_epochs = 2;
    c.train.early_stopping_patience = 0;
    c.train.mixed_precision = "on";  // bf16 where the CPU has it (see use_bf16_autocast)
    c.train.time_budget = "10m";      // training and the final evaluation, on any CPU
    c.train.monitor = "val_accuracy";
    c.augment.rotation = 0;
    c.augment.zoom = 0;
    c.augment.translation = 0;
    c.augment.crop_padding = 2;
    c.run.tta = true;
    return;
  }
  if (preset == "speedrun") {
    // airbench94's recipe (Keller Jordan, 2024) in our terms, for a GPU:
    // its net at width 64, batch 1024, Nesterov SGD at momentum 0.85 with
    // its summed-loss rate and decay turned into our mean-loss ones (lr
    // 11.5 / 7851 per image x 1024 images = 1.5; decay 0.0153 x 1024 / 7851
    // per step = 1.5 x 1.33e-3), label smoothing 0.2, 2-pixel translation,
    // alternating flip, lookahead, flip-and-shift TTA, about 10 epochs.
    c.model.model_type = "fast";
    c.model.width = 64;
    c.train.epochs = 10;
    c.train.batch_size = 1024;
    c.train.optimizer = "sgd";
    c.train.learning_rate = 1.5;
    c.train.momentum = 0.85;
    c.train.nesterov = true;
    c.train.regularization_factor = 1.33e-3;
    c.train.label_smoothing = 0.2;
    c.train.lr_schedule = "onecycle";
    c.train.warmup_epochs = 0;  // one-cycle's 30% rise (airbench: 23%)
    c.train.early_stopping_patience = 0;
    c.train.monitor = "val_accuracy";
    c.train.lookahead = true;
    c.augment.rotation = 0;
    c.augment.zoom = 0;
    c.augment.translation = 0;
    c.augment.crop_padding = 2;
    c.augment.alternating_flip = true;
    c.run.tta = true;
    return;
  }
  throw UserError("invalid --preset '" + preset + "': expected quick, speedrun or full");
}

}  // namespace cifar
