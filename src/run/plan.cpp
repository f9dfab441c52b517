#include "run/plan.h"

#include <filesystem>

#include "common/error.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "models/registry.h"
#include "outputs/run_folder.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

// An evaluation writes into the output folder's results/: over a training
// run's record only when it evaluates that run's own checkpoint (and then
// keeps the record).
void check_evaluation_folder(const Config& config) {
  const RunFolder folder(config.run.output_dir);
  if (!config.run.skip_training || !folder.holds_training_run()) return;
  const std::string& weights = !config.run.load_model.empty() ? config.run.load_model : config.run.resume;
  const auto run = weights.empty() ? fs::path() : RunFolder::run_of(weights);
  std::error_code ec;
  if (run.empty() || !fs::equivalent(run, config.run.output_dir, ec)) {
    throw UserError("--output-dir " + config.run.output_dir + " holds the results of a training run (" +
                    folder.summary_file().string() + "), which evaluating " +
                    (weights.empty() ? std::string("a model") : weights) +
                    " there would replace (hint: pass another --output-dir for this evaluation)");
  }
}

// Training writes best_model.pt from its first epoch (every run starts
// with no best), so a --load-model of that very file would be replaced by
// the new run's first epoch.
void check_load_model_survives(const Config& config) {
  if (config.run.load_model.empty() || config.run.skip_training) return;
  const RunFolder folder(config.run.output_dir);
  for (const fs::path& written : {folder.best_checkpoint(), folder.latest_checkpoint()}) {
    std::error_code ec;
    if (fs::equivalent(config.run.load_model, written, ec)) {
      throw UserError("--load-model " + config.run.load_model + " is the checkpoint this run writes into " +
                      written.string() +
                      ", and training would replace it (hint: pass another --output-dir, or copy the file first)");
    }
  }
}


}  // namespace

ModelSpec spec_from_flags(const Config& config, const std::vector<std::string>& classes) {
  const Normalization norm = make_normalization(config.data.normalization);
  return make_spec(config.model, classes, norm.mean, norm.std);
}

RunPlan plan_run(const Config& flags, const std::set<std::string>& given) {
  RunPlan plan;
  plan.start = read_start_point(flags);
  plan.config = flags.run.resume.empty() ? flags : resumed_settings(flags, given, *plan.start);
  const Config& config = plan.config;
  const std::vector<std::string> placeholder(kNumClasses, "class");
  if (!plan.start) {
    plan.spec = spec_from_flags(config, placeholder);
  } else {
    plan.spec = plan.start->spec;
    std::optional<ModelSpec> wanted;
    try {
      wanted = spec_from_flags(config, plan.spec.class_names);
    } catch (const UserError&) {
      // Flags that fit no model: a resume refuses them, a checkpoint's own
      // model makes them moot otherwise.
      if (plan.start->resume) throw;
    }
    if (plan.start->resume) {
      check_resume_model(*wanted, *plan.start);
    } else {
      // Model flags typed (or a preset's), not the default resnet, which a
      // user need not have asked for.
      bool named = config.model.model_type != ModelConfig{}.model_type || config.model.depth != 0;
      for (const char* flag : {"model-type", "depth", "width", "input-size"}) named = named || given.count(flag);
      if (named && (!wanted || describe_model(*wanted) != describe_model(plan.spec))) {
        plan.flags_model_not_applied = wanted ? describe_model(*wanted) : config.model.model_type;
      }
    }
  }
  if (wants_pretrained(config.model)) {
    plan.pretrained = std::make_shared<const PretrainedWeights>(obtain_pretrained_weights(config.model));
  }
  check_evaluation_folder(config);
  check_load_model_survives(config);
  return plan;
}

}  // namespace cifar
