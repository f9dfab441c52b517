#include "checkpoint/resume.h"

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "config/cli.h"
#include "models/fastnet.h"
#include "models/registry.h"
#include "outputs/run_folder.h"

namespace cifar {
namespace {

}  // namespace

void check_resume_model(const ModelSpec& wanted, const StartPoint& start) {
  const ModelSpec& saved = start.spec;
  const bool same = saved.type == wanted.type && (saved.type != "resnet" || saved.depth == wanted.depth) &&
                    (saved.type != "fast" || fast_net_width(saved) == fast_net_width(wanted)) &&
                    (saved.type != "efficientnet" || saved.input_size == wanted.input_size);
  if (!same) {
    throw UserError("cannot resume from " + start.path + ": it holds " + a_model(saved) +
                    " model, but this run builds " + a_model(wanted) +
                    " (hint: resume with the model flags the run started with)");
  }
  if (wanted.dropout != saved.dropout) {
    throw UserError("cannot resume from " + start.path + ": its model has --dropout-rate " +
                    json_text(saved.dropout) + ", not " + json_text(wanted.dropout) +
                    " (hint: leave --dropout-rate out, or start a new run from its weights with --load-model)");
  }
}

namespace {

// The settings that fix which images are in the training split and in
// what order (a changed split would put validation images into training;
// another batch size would put the saved step at other images), the
// metric the callbacks' saved best values are values of, and the
// optimiser whose state the checkpoint holds, must be those the run
// started with.
void check_resume_settings(const Config& config, const StartPoint& start) {
  const nlohmann::json& meta = start.checkpoint->meta;
  if (!meta.contains("config") || !meta["config"].is_object()) return;
  const nlohmann::json& saved = meta["config"];
  const nlohmann::json now = config_to_json(config);
  auto text = [](const nlohmann::json& v) { return printable(v.is_string() ? v.get<std::string>() : json_text(v)); };
  for (const char* key : {"seed", "validation-size", "train-limit", "batch-size", "monitor", "optimizer"}) {
    if (!saved.contains(key) || saved[key] == now[key]) continue;
    throw UserError("checkpoint " + start.path + " was trained with --" + key + " " + text(saved[key]) + ", not " +
                    text(now[key]) + " (hint: leave --" + key + " out to keep the run's, or start a new run from "
                    "its weights with --load-model)");
  }
}

// A preset only shapes the defaults, and a resumed run's defaults are its
// own settings: a different one given here would change nothing but the
// record, so it is refused like another --seed.
void check_resume_preset(const Config& flags, const nlohmann::json& saved, const std::string& path) {
  const auto run_preset = [](std::string p) { return p.empty() ? std::string("full") : p; };
  const bool has_preset = saved.contains("preset") && saved["preset"].is_string();
  const std::string was = has_preset ? saved["preset"].get<std::string>() : "";
  if (run_preset(flags.run.preset) != run_preset(was)) {
    throw UserError("--preset " + flags.run.preset + ": checkpoint " + path + " continues a run made with " +
                    (was.empty() ? std::string("no --preset") : "--preset " + was) +
                    ", and a resume keeps its settings (hint: leave out --preset; give the flags to change)");
  }
}

// Before anything reads it: a missing file, a folder, a device or a FIFO
// named in one line (read_file's check, without reading).
void check_readable(const std::string& flag, const std::string& path) {
  const std::string why = unreadable_reason(path);
  if (!why.empty()) throw UserError("cannot read " + flag + " " + path + ": " + why);
}

}  // namespace

std::string a_model(const ModelSpec& spec) {
  return (spec.type.rfind('e', 0) == 0 ? "an " : "a ") + describe_model(spec);
}

std::optional<StartPoint> read_start_point(const Config& flags) {
  const bool resume = !flags.run.resume.empty();
  if (!resume && flags.run.load_model.empty()) return std::nullopt;
  StartPoint start;
  start.path = resume ? flags.run.resume : flags.run.load_model;
  start.flag = resume ? "--resume" : "--load-model";
  check_readable(start.flag, start.path);
  // Its format too: a Keras .h5 given as a checkpoint fails here, not
  // after the data.
  start.checkpoint = std::make_shared<const CheckpointData>(read_checkpoint(start.path));
  start.spec = spec_from_json(start.checkpoint->meta.at("spec"));
  start.description = a_model(start.spec);
  if (resume && !flags.run.skip_training) {
    start.resume = resume_point(start.checkpoint->meta, start.path);
    start.description = "epoch " + std::to_string(start.resume->epoch) + " step " +
                        std::to_string(start.resume->step_in_epoch) + " of " + start.description;
  }
  return start;
}

Config resumed_settings(const Config& flags, const std::set<std::string>& given, const StartPoint& start) {
  // Only the run's own settings come from the checkpoint, never this
  // machine's or this invocation's (fields.h, Scope). A run started from
  // --load-model or --pretrained-weights has those weights in the
  // checkpoint already.
  const nlohmann::json& meta = start.checkpoint->meta;
  const nlohmann::json run = meta.contains("config") && meta["config"].is_object() ? meta["config"]
                                                                                     : nlohmann::json::object();
  const nlohmann::json known = config_to_json(flags);
  nlohmann::json saved = nlohmann::json::object();
  for (const auto& [key, value] : run.items()) {
    // Keys of another version's config are skipped, not refused.
    if (known.contains(key) && !given.count(key) && taken_on_resume(key)) saved[key] = value;
  }
  if (given.count("preset")) check_resume_preset(flags, run, start.path);
  Config resumed = flags;
  try {
    config_from_json(saved, resumed);
  } catch (const UserError& e) {
    throw UserError("checkpoint " + start.path + ": its settings are unreadable: " + e.what());
  }
  // The model is the checkpoint's own (a run started from --load-model
  // saved the default model flags): unless a model type is given (and
  // checked against it), the model flags describe it.
  const ModelConfig checkpoint_model = model_flags(start.spec);
  if (!given.count("model-type")) resumed.model.model_type = checkpoint_model.model_type;
  // A given type of the same family ("resnet" for a resnet20 run) takes
  // the checkpoint's shape where no flag gives it; "resnet56" names its
  // own depth, so a saved --depth must not contradict it.
  const std::string& type = resumed.model.model_type;
  if (model_family(type) == checkpoint_model.model_type) {
    if (!given.count("depth")) resumed.model.depth = model_family(type) != type ? 0 : checkpoint_model.depth;
    if (!given.count("width")) resumed.model.width = checkpoint_model.width;
    if (!given.count("input-size")) resumed.model.input_size = checkpoint_model.input_size;
  }
  // A saved width or input size of another architecture (the quick
  // preset's width beside --model-type cnn, from before it was refused).
  drop_other_models_flags(resumed.model, given);
  if (!given.count("dropout-rate")) resumed.model.dropout_rate = checkpoint_model.dropout_rate;
  // Reductions split by thread count: the run's own count repeats an
  // uninterrupted run's figures exactly (--threads chooses another).
  if (start.resume && start.resume->threads > 0 && !given.count("threads")) {
    resumed.run.threads = start.resume->threads;
  }
  // Training continues the run in its own folder; an evaluation
  // (--skip-training) writes where --load-model's would, leaving the run's
  // results as they are.
  if (!given.count("output-dir") && !flags.run.skip_training) {
    if (const auto folder = RunFolder::run_of(start.path); !folder.empty()) resumed.run.output_dir = folder.string();
  }
  try {
    validate(resumed);
  } catch (const UserError& e) {
    // "invalid --KEY ...": a KEY the user did not give is the run's own.
    const std::string what = e.what();
    const std::string prefix = "invalid --";
    const std::string key = what.rfind(prefix, 0) == 0
                                ? what.substr(prefix.size(), what.find(' ', prefix.size()) - prefix.size())
                                : std::string();
    if (key.empty() || given.count(key)) throw;
    throw UserError("checkpoint " + start.path + "'s settings: " + what);
  }
  if (start.resume) check_resume_settings(resumed, start);
  return resumed;
}

}  // namespace cifar
