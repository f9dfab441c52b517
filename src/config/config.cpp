#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/printable.h"
#include "common/runtime.h"
#include "config/fields.h"

namespace cifar {
namespace {

// Values may come from a config file: quoted through printable(), so a
// control character in one cannot break the error line (fuzz/config_fuzz).
void require(bool ok, const std::string& flag, const std::string& value, const std::string& want) {
  if (!ok) throw UserError("invalid --" + flag + (value.empty() ? "" : " " + printable(value)) + ": " + want);
}

std::optional<Scope> scope_of(const std::string& key) {
  const auto field = find_field(key);
  return field ? std::optional<Scope>(field->scope) : std::nullopt;
}

}  // namespace

// 5000 threads on two cores did not finish a 128-image evaluation in 120 s:
// intra-op threads beyond the cores only wait for each other. Four per
// usable core leaves room for hyper-threads and experiments; 16 at least,
// for a process held to one or two cores.
int max_threads() { return std::max(16, 4 * usable_cores()); }

std::string number_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[40];
  if (value == std::floor(value) && std::fabs(value) < 1e9) {
    std::snprintf(text, sizeof text, "%.0f", value);
    return text;
  }
  // The shortest %g that reads back as the same double.
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  // 1e+06 -> 1e6, 1e-06 -> 1e-6: as people write them.
  std::string out = text;
  if (const auto e = out.find('e'); e != std::string::npos) {
    std::string exponent = out.substr(e + 1);
    const bool negative = exponent[0] == '-';
    exponent.erase(0, exponent.find_first_not_of("+-0"));
    out = out.substr(0, e + 1) + (negative ? "-" : "") + (exponent.empty() ? "0" : exponent);
  }
  return out;
}

std::string rule_text(const Rule& r) {
  if (!r.words.empty()) {
    std::string list;
    for (const auto& w : r.words) list += (list.empty() ? "" : " | ") + w;
    return list;
  }
  const bool has_min = std::isfinite(r.min), has_max = std::isfinite(r.max);
  if (has_min && has_max) {
    return std::string("in ") + (r.min_open ? "(" : "[") + number_text(r.min) + ", " + number_text(r.max) +
           (r.max_open ? ")" : "]");
  }
  if (has_min) {
    if (r.min_open) return "above " + number_text(r.min);
    return r.min == 0 ? "0 or more" : "at least " + number_text(r.min);
  }
  if (has_max) return (r.max_open ? "below " : "at most ") + number_text(r.max);
  return "";
}

std::string help_text(const Field& field) {
  const std::string rule = rule_text(field.rule);
  if (rule.empty()) return field.help;
  return field.help + std::string(field.rule.words.empty() ? ", " : ": ") + rule;
}

std::optional<Field> find_field(const std::string& name) {
  std::optional<Field> found;
  const Config defaults;
  visit_fields(defaults, [&](const Field& field, const auto&) {
    if (name == field.name) found = field;
  });
  return found;
}

void check_field(const Field& field, double value) {
  const Rule& r = field.rule;
  // Written so that NaN fails every bound.
  const bool above_min = r.min_open ? value > r.min : value >= r.min;
  const bool below_max = r.max_open ? value < r.max : value <= r.max;
  if (above_min && below_max) return;
  const std::string rule = rule_text(r);
  throw UserError("invalid --" + std::string(field.name) + " " + number_text(value) + ": must be " +
                  (rule.empty() ? std::string("a finite number") : rule) + (r.why.empty() ? "" : " (" + r.why + ")"));
}

void check_field(const Field& field, const std::string& value) {
  const Rule& r = field.rule;
  if (r.words.empty() || (r.empty_ok && value.empty())) return;
  if (std::find(r.words.begin(), r.words.end(), value) != r.words.end()) return;
  std::string list;
  for (const auto& w : r.words) list += (list.empty() ? "" : ", ") + w;
  throw UserError("invalid --" + std::string(field.name) + " '" + printable(value, 80) + "': expected one of " + list);
}

void drop_other_models_flags(ModelConfig& model, const std::set<std::string>& given) {
  const ModelConfig defaults;
  if (!given.count("width") && model.model_type != "fast") model.width = defaults.width;
  if (!given.count("input-size") && model.model_type != "efficientnet") model.input_size = defaults.input_size;
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty() || text.size() > 64 || std::isspace(static_cast<unsigned char>(text.front()))) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<double> parse_duration(const std::string& text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  double total = 0;
  size_t i = 0;
  char last_unit = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j - i > 9) return std::nullopt;
    const double value = std::stod(text.substr(i, j - i));
    if (j == text.size()) {  // a bare number: seconds, alone
      if (i != 0) return std::nullopt;
      total = value;
      break;
    }
    const char unit = text[j];
    const double scale = unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : 0;
    // Units once each, largest first: "1h30m", not "30m1h" or "1m1m".
    const std::string order = "hms";
    if (scale == 0 || (last_unit && order.find(unit) <= order.find(last_unit))) return std::nullopt;
    last_unit = unit;
    total += value * scale;
    i = j + 1;
  }
  if (total <= 0 || total > 7 * 24 * 3600.0) return std::nullopt;
  return total;
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
  visit_fields(c, [](const Field& field, const auto& value) { check_field(field, value); });

  // The rules between fields.
  const auto& t = c.train;
  require(t.grad_accumulation <= std::max(1, t.batch_size / 2), "grad-accumulation",
          std::to_string(t.grad_accumulation),
          "must be between 1 and half of --batch-size (micro-batches of two images or more)");
  require(t.early_stopping_baseline.empty() || parse_number(t.early_stopping_baseline).has_value(),
          "early-stopping-baseline", t.early_stopping_baseline, "expected a finite number, or nothing for none");
  require(t.time_budget.empty() || t.time_budget == "none" || parse_duration(t.time_budget).has_value(),
          "time-budget", t.time_budget,
          "expected a duration of at most a week such as 90s, 10m, 1h30m or 600 (seconds), or none");
  require(!(t.optimizer == "sgd" && t.nesterov && t.momentum == 0), "momentum", "0",
          "--nesterov needs a momentum above 0");
  require(!(c.data.validation_size == 0 && t.monitor.rfind("val_", 0) == 0 && !c.run.skip_training), "monitor",
          t.monitor, "needs validation images, and --validation-size is 0 (hint: --monitor loss or accuracy)");
  const auto& r = c.run;
  const auto& m = c.model;
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

bool taken_on_resume(const std::string& key) { return scope_of(key) == Scope::kRun; }

bool may_differ_between_ranks(const std::string& key) { return scope_of(key) == Scope::kMachine; }

}  // namespace cifar
