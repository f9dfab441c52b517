#include "training/callbacks/reduce_lr_on_plateau.h"

#include <iostream>

#include "common/error.h"
#include "reporting/format.h"

namespace cifar {

ReduceLROnPlateau::ReduceLROnPlateau(Options options) : o_(std::move(options)) {
  if (o_.factor >= 1.0) throw UserError("ReduceLROnPlateau does not support a factor >= 1 (got " + std::to_string(o_.factor) + ")");
}

void ReduceLROnPlateau::on_train_begin(TrainContext&) {
  if (resumed_) return;
  best_.reset();
  wait_ = 0;
  cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) {
  logs["learning_rate"] = ctx.learning_rate();
  auto current = o_.monitor.value(logs);
  if (!current) {
    if (ctx.is_writer()) std::cerr << "warning: ReduceLROnPlateau monitors '" << o_.monitor.name << "', which this run does not log\n";
    return;
  }
  if (in_cooldown()) {
    cooldown_counter_ -= 1;
    wait_ = 0;
  }
  if (o_.monitor.improves(*current, best_)) {
    best_ = *current;
    wait_ = 0;
  } else if (!in_cooldown()) {
    wait_ += 1;
    if (wait_ >= o_.patience) {
      const double old_lr = ctx.learning_rate();
      // As Keras, in float32 (its rate's type): a rate already at min_lr
      // (1e-6 > float32(1e-6) in double) is not reduced again, which
      // would say so every `patience` epochs and re-arm the cooldown.
      if (static_cast<float>(old_lr) > static_cast<float>(o_.min_lr)) {
        const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
        ctx.set_learning_rate(new_lr);
        if (ctx.is_writer()) {
          std::cout << "Epoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to " << format_number(new_lr) << "\n";
        }
        cooldown_counter_ = o_.cooldown;
        wait_ = 0;
      }
    }
  }
}

nlohmann::json ReduceLROnPlateau::state() const {
  return {{"best", best_to_json(best_)}, {"wait", wait_}, {"cooldown_counter", cooldown_counter_}};
}

void ReduceLROnPlateau::load_state(const nlohmann::json& j) {
  best_ = json_to_best(j.at("best"));
  wait_ = json_to_int(j, "wait");
  cooldown_counter_ = json_to_int(j, "cooldown_counter");
  resumed_ = true;
}

}  // namespace cifar
