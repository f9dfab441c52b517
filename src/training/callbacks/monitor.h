// Keras' rule for which way a monitored metric should move: "auto" means
// max for accuracy-like names, min otherwise (loss, error).
#pragma once
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "training/metrics.h"

namespace cifar {

struct Monitor {
  std::string name = "val_loss";
  std::string mode = "auto";  // auto | min | max
  double min_delta = 0;       // used as its absolute value, as Keras

  bool maximize() const {
    if (mode == "max") return true;
    if (mode == "min") return false;
    return name.find("acc") != std::string::npos || name.find("auc") != std::string::npos;
  }
  // Strict improvement of `current` over `reference` by more than min_delta.
  bool improved(double current, double reference) const {
    const double d = std::fabs(min_delta);
    return maximize() ? current - d > reference : current + d < reference;
  }
  double worst() const {
    return maximize() ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  std::optional<double> value(const Logs& logs) const {
    auto it = logs.find(name);
    if (it == logs.end()) return std::nullopt;
    return it->second;
  }
};

// JSON cannot hold infinities; these keep "no best yet" across checkpoints.
inline double json_to_double(const nlohmann::json& j) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  return j.get<double>();
}
inline nlohmann::json double_to_json(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  return v;
}

}  // namespace cifar
