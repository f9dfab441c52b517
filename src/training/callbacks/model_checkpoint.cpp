#include "training/callbacks/model_checkpoint.h"

#include <iostream>

#include "reporting/format.h"

namespace cifar {

void ModelCheckpoint::on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) {
  if (save_best_only_) {
    const auto current = monitor_.value(logs);
    if (!current) {
      // Keras 3 saves anyway (see the header); warned once, as Python's
      // default warning filter shows a repeated warning once.
      if (ctx.is_writer() && !warned_missing_) {
        std::cerr << "warning: ModelCheckpoint monitors '" << monitor_.name
                  << "', which this run does not log: saving " << path_ << " every epoch\n";
      }
      warned_missing_ = true;
    } else {
      if (!monitor_.improves(*current, best_)) return;
      best_ = *current;
      if (ctx.is_writer() && epoch >= 0) {
        std::cout << "Epoch " << epoch + 1 << ": " << monitor_.name << " improved to " << format_metric(monitor_.name, *current) << ", saving "
                  << path_ << "\n";
      }
    }
  }
  // Every rank calls save_checkpoint: it may need collectives; only the
  // writer rank touches the file.
  ctx.save_checkpoint(path_);
}

}  // namespace cifar
