// Keras' rule for which way a monitored metric should move: "auto" means
// max for accuracy-like names, min otherwise (loss, error), and Keras 3's
// rule for the first value: EarlyStopping, ReduceLROnPlateau and
// ModelCheckpoint keep "no best yet" (Python's None) until a value comes.
#pragma once
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "metrics/metric_sums.h"

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
  // Keras 3 (keras/src/callbacks/monitor_callback.py, _is_improvement)
  // starts `best` as None and counts any value against None as an
  // improvement, NaN included; tf-keras 2.15 started at +-inf, where a NaN
  // first value never improved. We follow Keras 3. A NaN best then stays
  // best, as in Keras: every comparison with NaN is false.
  bool improves(double current, const std::optional<double>& best) const {
    return !best || improved(current, *best);
  }
  std::optional<double> value(const Logs& logs) const {
    auto it = logs.find(name);
    if (it == logs.end()) return std::nullopt;
    return it->second;
  }
};

// JSON holds neither infinities nor NaN: they travel as "inf", "-inf", "nan".
inline double json_to_double(const nlohmann::json& j) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  return j.get<double>();
}
// Counters (wait, epochs) read back from a checkpoint. nlohmann's get<int>()
// casts a float such as 1e300 to int, which is undefined behaviour, and
// silently truncates large integers; a checkpoint is outside input, so
// anything but an integer in range is refused.
inline int json_to_int(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT32_MAX) ||
      (!v.is_number_unsigned() && (v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX))) {
    throw UserError(std::string("checkpoint state '") + key + "' is not an integer of int range (found a " +
                    v.type_name() + ") (hint: resume from a checkpoint this version wrote)");
  }
  return static_cast<int>(v.get<int64_t>());
}

inline nlohmann::json double_to_json(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  return v;
}

// A monitored best in a checkpoint: null while there is none yet (Keras 3's
// None); a NaN or infinite best is a real one and keeps its value.
inline nlohmann::json best_to_json(const std::optional<double>& best) {
  return best ? double_to_json(*best) : nlohmann::json(nullptr);
}
inline std::optional<double> json_to_best(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  return json_to_double(j);
}

}  // namespace cifar
