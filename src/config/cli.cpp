#include "config/cli.h"

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "config/fields.h"

#ifndef CIFAR10_VERSION
#define CIFAR10_VERSION "0.0.0"
#endif

namespace cifar {
namespace {

std::string flag_key(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

// CLI11 reads INI/TOML itself; the original system's users write JSON or
// YAML, so this formatter turns either into CLI11's config items. Keys may
// use '-' or '_' (model-type / model_type).
class JsonYamlConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return {}; }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    const auto first = text.find_first_not_of(" \t\r\n");
    try {
      if (first != std::string::npos && text[first] == '{') return json_items(nlohmann::json::parse(text));
      return yaml_items(YAML::Load(text));
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& e) {
      // yaml-cpp quotes the offending character raw (an escape, a line break).
      std::string what = e.what();
      std::replace(what.begin(), what.end(), '\n', ' ');
      throw CLI::ConversionError("config file is not valid JSON or YAML: " + printable(what));
    }
  }

 private:
  static CLI::ConfigItem item(const std::string& key, std::string value) {
    CLI::ConfigItem item;
    item.name = flag_key(key);
    item.inputs = {std::move(value)};
    return item;
  }

  [[noreturn]] static void not_single(const std::string& key) {
    throw CLI::ConversionError("config key '" + key + "' must be a single value");
  }

  static std::vector<CLI::ConfigItem> json_items(const nlohmann::json& root) {
    if (root.is_null()) return {};
    if (!root.is_object()) throw CLI::ConversionError("config file must hold a mapping of flag names to values");
    std::vector<CLI::ConfigItem> items;
    for (const auto& [key, value] : root.items()) {
      if (value.is_object() || value.is_array()) not_single(key);
      items.push_back(item(key, scalar_text(value)));
    }
    return items;
  }

  // Only the top level is read, and nested values are refused unread: the
  // YAML tree is never walked or copied, so aliases are never expanded (a
  // 450-byte "billion laughs" file expanded into ~10^9 strings here, taking
  // minutes and gigabytes) and depth cannot recurse.
  static std::vector<CLI::ConfigItem> yaml_items(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) return {};
    if (!root.IsMap()) throw CLI::ConversionError("config file must hold a mapping of flag names to values");
    std::vector<CLI::ConfigItem> items;
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) throw CLI::ConversionError("config file keys must be flag names");
      const std::string key = kv.first.Scalar();
      if (kv.second.IsMap() || kv.second.IsSequence()) not_single(key);
      // A null value (`epochs:`) reads as the text "null", as JSON's null does.
      items.push_back(item(key, kv.second.IsScalar() ? kv.second.Scalar() : std::string("null")));
    }
    return items;
  }
};

// CLI11 prints a negatable flag as "--flip,--no-flip{false}", which hides
// the default; ours reads "--flip,--no-flip=true" like every other option.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_name(const CLI::Option* opt, bool positional) const override {
    std::string name = CLI::Formatter::make_option_name(opt, positional);
    if (auto brace = name.find('{'); brace != std::string::npos) name.resize(brace);
    return name;
  }
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (!opt->get_fnames().empty()) return "=" + opt->get_default_str();
    return CLI::Formatter::make_option_opts(opt);
  }
};

// CLI11 converts an empty value to 0 for a number (`--epochs ""` ran 0
// epochs): refused instead.
const CLI::Validator kNotEmpty(
    [](std::string& value) { return value.empty() ? std::string("an empty value is not a number") : std::string(); },
    "", "not empty");

struct Registrar {
  CLI::App& app;
  template <class T>
  void operator()(const char* name, T& field, const char* help) {
    if constexpr (std::is_same_v<T, bool>) {
      app.add_flag(std::string("--") + name + ",!--no-" + name, field, help)->default_str(field ? "true" : "false");
    } else if constexpr (std::is_arithmetic_v<T>) {
      app.add_option(std::string("--") + name, field, help)->capture_default_str()->check(kNotEmpty);
    } else {
      app.add_option(std::string("--") + name, field, help)->capture_default_str();
    }
  }
};

// The first line of a CLI11 error, in our "what: detail (hint)" shape.
std::string cli_error(const CLI::Error& e) {
  // CLI11 quotes values raw: a hostile value must not reach the terminal.
  return printable(first_line(e.what())) + " (run cifar10 --help for the flags and their defaults)";
}

// The value of `--name V` or `--name=V` (the last one), read before CLI11
// parses: the preset and the config file shape the defaults it parses into.
std::string find_flag_value(int argc, const char* const* argv, const std::string& name) {
  std::string value;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == name && i + 1 < argc) value = argv[i + 1];
    if (a.rfind(name + "=", 0) == 0) value = a.substr(name.size() + 1);
  }
  return value;
}

// CLI11 words an unknown key as "INI was not able to parse KEY", whatever
// the file's format.
std::string config_parse_error(const CLI::ParseError& e) {
  std::string what = first_line(e.what());
  const std::string extra = "INI was not able to parse ";
  if (what.rfind(extra, 0) == 0) {
    what = "unknown key '" + what.substr(extra.size()) + "' (hint: keys are the flag names, e.g. batch-size or batch_size)";
  }
  return printable(what);
}

// A config file's values over the defaults, unchecked as a whole (flags may
// still complete it); errors name the file.
Config parse_config_values(const std::string& text, const std::string& source) {
  Config config;
  CLI::App app{"cifar10 configuration", "cifar10"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  visit_fields(config, Registrar{app});
  app.config_formatter(std::make_shared<JsonYamlConfig>());
  app.allow_config_extras(false);
  std::istringstream in(text);
  try {
    app.parse_from_stream(in);
  } catch (const CLI::ParseError& e) {
    throw UserError("config file " + source + ": " + config_parse_error(e));
  }
  return config;
}

}  // namespace

void apply_preset(Config& c, const std::string& preset) {
  if (preset.empty() || preset == "full") return;
  if (preset == "quick") {
    // A run that finishes well inside ten minutes on two CPU cores and is
    // still a model worth having (issue 8: 87% in 10 min): the fast net
    // with a one-cycle schedule.
    c.model.model_type = "fast";
    c.model.width = 32;  // 32-128-128: a quarter of airbench's FLOPs, sized for two cores
    c.train.epochs = 14;  // median 87.75% in 7.7 min on 2 Xeon cores (docs/BENCHMARKS.md)
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
    c.train.monitor = "val_accuracy";
    c.augment.rotation = 0;
    c.augment.zoom = 0;
    c.augment.translation = 0;
    c.augment.crop_padding = 2;
    c.run.tta = true;
    return;
  }
  throw UserError("invalid --preset '" + preset + "': expected quick or full");
}

Config parse_config_text(const std::string& text, const std::string& source) {
  Config config = parse_config_values(text, source);
  try {
    validate(config);
  } catch (const UserError& e) {
    throw UserError("config file " + source + ": " + e.what());
  }
  return config;
}

CommandLine parse_command_line(int argc, const char* const* argv) {
  CommandLine cmd;
  // The config file is read once on its own first, so that its errors name
  // it and its preset (when no --preset flag names one) applies under its
  // values, as a flag's would.
  std::string preset = find_flag_value(argc, argv, "--preset");
  const std::string config_file = find_flag_value(argc, argv, "--config");
  std::optional<Config> from_file;
  if (!config_file.empty()) {
    from_file = parse_config_values(read_file(config_file), config_file);
    if (preset.empty()) preset = from_file->run.preset;
  }
  apply_preset(cmd.config, preset);

  CLI::App app{"cifar10: train, evaluate and serve CIFAR-10 image classifiers with LibTorch",
               "cifar10"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", CIFAR10_VERSION);
  auto formatter = std::make_shared<HelpFormatter>();
  formatter->column_width(36);
  app.formatter(formatter);
  visit_fields(cmd.config, Registrar{app});
  app.config_formatter(std::make_shared<JsonYamlConfig>());
  app.set_config("--config", "", "JSON or YAML file with the same keys as the flags; flags override it");
  app.allow_config_extras(false);

  auto* predict = app.add_subcommand("predict", "Classify image files (PNG, JPEG, BMP) with a saved model");
  PredictOptions& p = cmd.predict;
  predict->add_option("--load-model", p.load_model, "Checkpoint to classify with")->required();
  predict->add_option("--top-k", p.top_k, "Classes printed per image")->capture_default_str()
      ->check(CLI::Range(1, 10));
  predict->add_option("--output", p.output, "Also write the predictions to FILE.json or FILE.csv")
      ->check(CLI::Validator(
          [](std::string& v) { return v.empty() ? std::string("needs a file name (.json or .csv)") : std::string(); },
          "", "file name"));
  predict->add_option("--device", p.device, "auto | cpu | cuda")->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  predict->add_option("--threads", p.threads, "Intra-op CPU threads (0 = usable cores)")
      ->capture_default_str()
      ->check(kNotEmpty)
      ->check(CLI::NonNegativeNumber);
  // Unset, predict averages as the run's own evaluation did (the quick
  // preset's TTA), so its classes are the evaluation's for the same image.
  bool tta_on = false, tta_off = false;
  auto* tta = predict->add_flag("--tta", tta_on, "Average over flips and shifts (default: as the checkpoint's run)");
  predict->add_flag("--no-tta", tta_off, "Classify the image alone")->excludes(tta);
  predict->add_option("inputs", p.inputs, "Image files or folders")->required();

  auto* exporter = app.add_subcommand(
      "export", "Write a checkpoint's weights as .safetensors (EfficientNet under torchvision's names)");
  ExportOptions& x = cmd.export_options;
  exporter->add_option("--load-model", x.load_model, "Checkpoint whose weights to write")->required();
  exporter->add_option("--format", x.format, "safetensors")->capture_default_str();
  exporter->add_option("output", x.output, "The file to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    cmd.command = CommandLine::Command::kExit;
    return cmd;
  } catch (const CLI::CallForVersion& e) {
    std::cout << "cifar10 " << CIFAR10_VERSION << "\n";
    cmd.command = CommandLine::Command::kExit;
    return cmd;
  } catch (const CLI::ParseError& e) {
    throw UserError(cli_error(e));
  }
  if (auto* cfg = app.get_config_ptr(); cfg && cfg->count() > 0) {
    cmd.config.run.config_file = cfg->as<std::string>();
  }
  visit_fields(cmd.config, [&](const char* name, const auto&, const char*) {
    if (app.count(std::string("--") + name) > 0) cmd.given.insert(name);
  });
  drop_other_models_flags(cmd.config.model, cmd.given);
  apply_pretrained_defaults(cmd.config, cmd.given);
  if (exporter->parsed()) {
    cmd.command = CommandLine::Command::kExport;
    return cmd;
  }
  if (predict->parsed()) {
    if (tta_on || tta_off) p.tta = tta_on;
    cmd.command = CommandLine::Command::kPredict;
    return cmd;
  }
  // A resume is validated once the run's own settings are in
  // (resumed_run_config): before, defaults would stand in for them.
  if (!cmd.config.run.resume.empty()) return cmd;
  try {
    validate(cmd.config);
  } catch (const UserError& e) {
    // The same error from the file's values alone: the file holds the
    // value at fault, and the error names it.
    if (from_file) {
      try {
        validate(*from_file);
      } catch (const UserError& own) {
        if (std::string(own.what()) == e.what()) throw UserError("config file " + config_file + ": " + e.what());
      }
    }
    throw;
  }
  return cmd;
}

nlohmann::json config_to_json(const Config& config) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(config, [&](const char* name, const auto& field, const char*) { j[name] = field; });
  return j;
}

void config_from_json(const nlohmann::json& j, Config& config) {
  if (!j.is_object()) throw UserError("configuration is not a JSON object");
  std::set<std::string> known;
  visit_fields(config, [&](const char* name, auto& field, const char*) {
    known.insert(name);
    if (!j.contains(name)) return;
    try {
      field = j.at(name).get<std::decay_t<decltype(field)>>();
    } catch (const std::exception&) {
      const auto& v = j.at(name);
      throw UserError(std::string("configuration key '") + name + "' has the wrong type: " +
                      (v.is_primitive() ? v.dump().substr(0, 60) : std::string("an ") + v.type_name()));
    }
  });
  for (const auto& [key, value] : j.items()) {
    if (!known.count(key)) throw UserError("unknown configuration key '" + key + "'");
  }
}

}  // namespace cifar
