#include "run/console.h"

#include <iostream>

#include "common/json_text.h"
#include "common/runtime.h"
#include "common/torch_compat.h"
#include "config/cli.h"
#include "config/presets.h"
#include "models/registry.h"

namespace cifar {
namespace {

// Paths are the user's own and come back in the "Data:" and "Results in"
// lines.
bool shown_in_other_lines(const std::string& key) { return key == "data-dir" || key == "output-dir"; }

std::string flag_text(const std::string& key, const nlohmann::json& value) {
  if (value.is_boolean()) return "--" + std::string(value.get<bool>() ? "" : "no-") + key;
  return "--" + key + " " + (value.is_string() ? value.get<std::string>() : json_text(value));
}

}  // namespace

Config recorded_config(const RunPlan& plan) {
  Config record = plan.config;
  if (plan.start) record.model = model_flags(plan.start->spec, plan.config.model);
  return record;
}

void print_run_header(const RunPlan& plan, const torch::Device& device, int threads, const DistributedContext& dist) {
  const Config record = recorded_config(plan);
  // Where a new EfficientNet's weights come from, first of all.
  if (!plan.start && plan.spec.type == "efficientnet") {
    std::cout << describe_weights_origin(plan.pretrained.get()) << "\n";
    if (plan.pretrained && !plan.pretrained->note.empty()) std::cout << plan.pretrained->note << "\n";
  }
  const bool bf16 = use_bf16_autocast(record.train.mixed_precision, device);
  std::cout << "cifar10 " << CIFAR10_VERSION << " (LibTorch " << compat::torch_version() << ") on " << device.str()
            << ", " << threads << " thread" << (threads == 1 ? "" : "s") << (bf16 ? ", bf16 autocast" : "");
  if (dist.world_size() > 1 || dist.backend() != "none") {
    std::cout << ", world size " << dist.world_size() << " (" << dist.backend() << ")";
  }
  std::cout << "\n";
  const nlohmann::json settings = config_to_json(record);
  if (record.run.verbose) {
    std::cout << "Configuration:\n";
    for (const auto& [key, value] : settings.items()) std::cout << "  " << key << " = " << json_text(value) << "\n";
  } else {
    Config defaults;
    apply_preset(defaults, record.run.preset);
    const nlohmann::json base = config_to_json(defaults);
    std::string changed;
    for (const auto& [key, value] : settings.items()) {
      if (key == "preset" || shown_in_other_lines(key) || base.value(key, nlohmann::json()) == value) continue;
      changed += (changed.empty() ? "" : " ") + flag_text(key, value);
    }
    const std::string preset = record.run.preset.empty() ? "the defaults" : "preset " + record.run.preset;
    std::cout << "Settings: " << preset << (changed.empty() ? "" : ", with " + changed)
              << " (--verbose lists them all)\n";
  }
  if (record.train.mixed_precision == "on" && !device.is_cuda() && !cpu_has_native_bf16()) {
    std::cout << "note: --mixed-precision on: oneDNN has no bf16 instructions here (the CPU lacks avx512_bf16 "
                 "and amx_bf16, or ONEDNN_MAX_CPU_ISA excludes them), so training stays in float32, which is "
                 "faster here\n";
  }
  if (plan.start && plan.start->resume && plan.start->resume->threads > 0 &&
      plan.start->resume->threads != threads) {
    std::cout << "note: the run trained with " << plan.start->resume->threads << " threads and resumes with "
              << threads << ": its figures will differ in the last digits from an uninterrupted run's\n";
  }
}

void print_model_lines(const RunPlan& plan, const RunModel& model) {
  if (plan.flags_model_not_applied) {
    std::cout << "note: " << plan.start->flag << " " << model.weights << " holds " << a_model(model.spec)
              << " model, used as saved; the model flags (" << *plan.flags_model_not_applied << ") do not apply\n";
  }
  if (!model.pretrained_report.empty()) std::cout << model.pretrained_report << "\n";
  std::cout << "Model: " << describe_model(model.spec) << ", " << count_parameters(*model.net) << " parameters\n";
}

}  // namespace cifar
