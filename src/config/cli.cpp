#include "config/cli.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/printable.h"
#include "config/config_file.h"
#include "config/fields.h"
#include "config/presets.h"

#ifndef CIFAR10_VERSION
#define CIFAR10_VERSION "0.0.0"
#endif

namespace cifar {
namespace {

std::string flag_key(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

// The flag a config file's key sets: `model_type` and `model-type` set
// --model-type, `no-flip` sets --flip. Empty for an unknown key.
std::string flag_of(const std::string& key) {
  const std::string name = flag_key(key);
  std::string flag;
  const Config defaults;
  visit_fields(defaults, [&](const Field& field, const auto& value) {
    const bool negated = std::is_same_v<std::decay_t<decltype(value)>, bool> && name == "no-" + std::string(field.name);
    if (name == field.name || negated) flag = field.name;
  });
  return flag;
}

// Every key names a flag, and no flag is set twice: JSON and YAML parsers
// keep the last of two equal keys without a word, and `model_type` after
// `model-type` would do the same.
void check_keys(const std::vector<ConfigSetting>& settings, const std::string& source) {
  std::map<std::string, const ConfigSetting*> seen;
  for (const auto& s : settings) {
    const std::string at = "config file " + printable(source, 200) + ": line " + std::to_string(s.line) + ": ";
    const std::string flag = flag_of(s.key);
    if (flag.empty()) {
      throw UserError(at + "unknown key '" + printable(s.key, 80) +
                      "' (hint: keys are the flag names, e.g. batch-size or batch_size)");
    }
    const auto [first, added] = seen.emplace(flag, &s);
    if (!added) {
      throw UserError(at + "key '" + printable(s.key, 80) + "' sets --" + flag + " again (first set by '" +
                      printable(first->second->key, 80) + "' on line " + std::to_string(first->second->line) +
                      "; hint: keep one)");
    }
  }
}

// Hands settings already read (config_file.cpp) to CLI11, which applies
// them with the flags' own conversions and checks.
class SettingsConfig : public CLI::Config {
 public:
  explicit SettingsConfig(const std::vector<ConfigSetting>& settings) {
    for (const auto& s : settings) {
      CLI::ConfigItem item;
      item.name = flag_key(s.key);
      item.inputs = {s.value};
      items_.push_back(std::move(item));
    }
  }
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return {}; }
  std::vector<CLI::ConfigItem> from_config(std::istream&) const override { return items_; }

 private:
  std::vector<CLI::ConfigItem> items_;
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

// CLI11 reads numbers leniently (0x10 as 16, 010 as 8, " 5" as 5, and 1e3,
// +5 or 5.0 as whole numbers), so a typo ran another experiment. A number
// is read as plain decimal only: an optional minus sign and digits, and for
// a float a fraction and an exponent. Hand-written rather than std::regex,
// whose matcher recurses per character (a 1 MiB value from a config file
// would overflow the stack).
size_t digits_at(const std::string& text, size_t i) {
  const size_t end = text.find_first_not_of("0123456789", i);
  return (end == std::string::npos ? text.size() : end) - i;
}

bool is_whole_number(const std::string& text) {
  const size_t sign = !text.empty() && text[0] == '-' ? 1 : 0;
  const size_t digits = digits_at(text, sign);
  return digits > 0 && sign + digits == text.size();
}

bool is_decimal_number(const std::string& text) {
  size_t i = !text.empty() && text[0] == '-' ? 1 : 0;
  size_t digits = digits_at(text, i);
  i += digits;
  if (i < text.size() && text[i] == '.') {
    const size_t fraction = digits_at(text, i + 1);
    digits += fraction;
    i += 1 + fraction;
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    i += i + 1 < text.size() && (text[i + 1] == '+' || text[i + 1] == '-') ? 2 : 1;
    const size_t exponent = digits_at(text, i);
    if (exponent == 0) return false;
    i += exponent;
  }
  return i == text.size();
}

// The value of a number flag or config key; its range is validate()'s.
// Thrown as CLI11's error, which a config file's parse prefixes with the
// file.
template <class T>
T read_number(const Field& field, const std::string& text) {
  const std::string invalid = "invalid --" + std::string(field.name) + " ";
  if (text.empty()) throw CLI::ValidationError(invalid + "'': an empty value is not a number");
  const std::string shown = printable(text, 80);
  if constexpr (std::is_integral_v<T>) {
    if (!is_whole_number(text))
      throw CLI::ValidationError(invalid + shown + ": expected a whole number in digits (e.g. 10)");
    errno = 0;
    const long long whole = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE || whole < std::numeric_limits<T>::min() || whole > std::numeric_limits<T>::max()) {
      throw CLI::ValidationError(invalid + shown + ": beyond the range of a whole number (" +
                                 std::to_string(std::numeric_limits<T>::min()) + " to " +
                                 std::to_string(std::numeric_limits<T>::max()) + ")");
    }
    return static_cast<T>(whole);
  } else {
    if (!is_decimal_number(text)) {
      throw CLI::ValidationError(invalid + shown + ": expected a decimal number (e.g. 0.001 or 1e-3)");
    }
    return std::strtod(text.c_str(), nullptr);  // 1e400 reads as inf, which every rule refuses
  }
}

// Registers a table field as a flag, its help and default from the table.
struct Registrar {
  CLI::App& app;
  template <class T>
  void operator()(const Field& field, T& value) {
    const std::string flag = std::string("--") + field.name;
    const std::string help = help_text(field);
    if constexpr (std::is_same_v<T, bool>) {
      app.add_flag(flag + ",!--no-" + field.name, value, help)->default_str(value ? "true" : "false");
    } else if constexpr (std::is_arithmetic_v<T>) {
      auto read = [field, &value](const CLI::results_t& results) {
        value = read_number<T>(field, results.back());
        return true;
      };
      app.add_option(flag, CLI::callback_t(read), help)
          ->type_name(std::is_integral_v<T> ? "INT" : "FLOAT")
          ->default_str(number_text(value));
    } else {
      app.add_option(flag, value, help)->capture_default_str();
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

// A config file's settings over `config`, unchecked as a whole (flags and
// presets may still complete it); errors name the file. Returns the flags
// the file set.
std::set<std::string> apply_config_settings(const std::vector<ConfigSetting>& settings, const std::string& source,
                                            Config& config) {
  check_keys(settings, source);
  CLI::App app{"cifar10 configuration", "cifar10"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  visit_fields(config, Registrar{app});
  app.config_formatter(std::make_shared<SettingsConfig>(settings));
  app.allow_config_extras(false);
  std::istringstream unused;
  try {
    app.parse_from_stream(unused);
  } catch (const CLI::ParseError& e) {
    throw UserError("config file " + printable(source, 200) + ": " + printable(first_line(e.what())));
  }
  std::set<std::string> given;
  visit_fields(config, [&](const Field& field, const auto&) {
    if (app.count(std::string("--") + field.name) > 0) given.insert(field.name);
  });
  return given;
}

Config parse_config_text_unchecked(const std::string& text, const std::string& source) {
  Config config;
  apply_config_settings(parse_config_settings(text, source), source, config);
  try {
    validate(config);
  } catch (const UserError& e) {
    throw UserError("config file " + printable(source, 200) + ": " + e.what());
  }
  return config;
}

CommandLine parse_command_line_unchecked(int argc, const char* const* argv) {
  CommandLine cmd;
  // The config file is read first, and once (a pipe can be read only
  // once): its settings go under the flags, and its preset (when no
  // --preset flag names one) under its settings, as a flag's would.
  std::string preset = find_flag_value(argc, argv, "--preset");
  const std::string config_file = find_flag_value(argc, argv, "--config");
  std::vector<ConfigSetting> settings;
  std::optional<Config> from_file;  // the file's values over the defaults alone, to name it in errors
  if (!config_file.empty()) {
    cmd.config_text = read_config_source(config_file);
    settings = parse_config_settings(cmd.config_text, config_file);
    apply_config_settings(settings, config_file, from_file.emplace());
    if (preset.empty()) preset = from_file->run.preset;
  }
  apply_preset(cmd.config, preset);
  if (from_file) cmd.given = apply_config_settings(settings, config_file, cmd.config);

  CLI::App app{"cifar10: train, evaluate and serve CIFAR-10 image classifiers with LibTorch",
               "cifar10"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", CIFAR10_VERSION);
  auto formatter = std::make_shared<HelpFormatter>();
  formatter->column_width(36);
  app.formatter(formatter);
  visit_fields(cmd.config, Registrar{app});
  app.add_option("--config", cmd.config.run.config_file,
                 "JSON or YAML file (or a pipe: --config /dev/stdin) with the flags' names as keys; flags override it");

  auto* predict = app.add_subcommand("predict", "Classify image files (PNG, JPEG, BMP) with a saved model");
  PredictOptions& p = cmd.predict;
  predict->add_option("--load-model", p.load_model, "Checkpoint to classify with")->required();
  const Field top_k{"top-k", "Classes printed per image", Scope::kInvocation, closed(1, 10)};
  Registrar{*predict}(top_k, p.top_k);
  predict->add_option("--output", p.output, "Also write the predictions to FILE.json or FILE.csv")
      ->check(CLI::Validator(
          [](std::string& v) { return v.empty() ? std::string("needs a file name (.json or .csv)") : std::string(); },
          "", "file name"));
  const Field device = *find_field("device");
  predict->add_option("--device", p.device, help_text(device))
      ->capture_default_str()
      ->check(CLI::IsMember(device.rule.words));
  const Field threads = *find_field("threads");
  Registrar{*predict}(threads, p.threads);
  // Unset, predict averages as the run's own evaluation did (the quick
  // preset's TTA), so its classes are the evaluation's for the same image.
  bool tta_on = false, tta_off = false;
  auto* tta = predict->add_flag("--tta", tta_on, "Average over flips and shifts (default: as the checkpoint's run)");
  predict->add_flag("--no-tta", tta_off, "Classify the image alone")->excludes(tta);
  predict->add_option("--resize", p.resize,
                      "How a non-square image becomes 32x32: crop (its centre square, the default), pad (black "
                      "borders) or squash (stretched, the aspect ratio lost)")
      ->capture_default_str()
      ->check(CLI::IsMember({"crop", "pad", "squash"}));
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
  visit_fields(cmd.config, [&](const Field& field, const auto&) {
    if (app.count(std::string("--") + field.name) > 0) cmd.given.insert(field.name);
  });
  drop_other_models_flags(cmd.config.model, cmd.given);
  apply_pretrained_defaults(cmd.config, cmd.given);
  if (exporter->parsed()) {
    cmd.command = CommandLine::Command::kExport;
    return cmd;
  }
  if (predict->parsed()) {
    if (tta_on || tta_off) p.tta = tta_on;
    check_field(top_k, p.top_k);
    check_field(threads, p.threads);
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
        if (std::string(own.what()) == e.what()) {
          throw UserError("config file " + printable(config_file, 200) + ": " + e.what());
        }
      }
    }
    throw;
  }
  return cmd;
}

// Every error about the command line or a config file leaves through here:
// one line, without control characters or broken UTF-8 from the file.
template <class Parse>
auto printable_errors(Parse&& parse) {
  try {
    return parse();
  } catch (const UserError& e) {
    throw UserError(escape_broken_utf8(printable(e.what())), e.exit_code());
  }
}

}  // namespace

Config parse_config_text(const std::string& text, const std::string& source) {
  return printable_errors([&] { return parse_config_text_unchecked(text, source); });
}

CommandLine parse_command_line(int argc, const char* const* argv) {
  return printable_errors([&] { return parse_command_line_unchecked(argc, argv); });
}

nlohmann::json config_to_json(const Config& config) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(config, [&](const Field& f, const auto& field) { j[f.name] = field; });
  return j;
}

void config_from_json(const nlohmann::json& j, Config& config) {
  if (!j.is_object()) throw UserError("configuration is not a JSON object");
  std::set<std::string> known;
  visit_fields(config, [&](const Field& f, auto& field) {
    const std::string name = f.name;
    known.insert(name);
    if (!j.contains(name)) return;
    try {
      field = j.at(name).get<std::decay_t<decltype(field)>>();
    } catch (const std::exception&) {
      const auto& v = j.at(name);
      throw UserError("configuration key '" + name + "' has the wrong type: " +
                      (v.is_primitive() ? v.dump().substr(0, 60) : std::string("an ") + v.type_name()));
    }
  });
  for (const auto& [key, value] : j.items()) {
    if (!known.count(key)) throw UserError("unknown configuration key '" + key + "'");
  }
}

}  // namespace cifar
