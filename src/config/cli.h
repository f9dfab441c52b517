// Command line: `cifar10 [flags]` runs the pipeline (train, evaluate, plot);
// `cifar10 predict --load-model PATH IMAGE_OR_DIR...` classifies image files;
// `cifar10 export --load-model PATH --format safetensors OUT` writes a
// checkpoint's weights for other tools.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"

namespace cifar {

struct PredictOptions {
  std::string load_model;           // checkpoint to classify with
  std::vector<std::string> inputs;  // image files or folders
  int top_k = 3;                    // classes printed per image
  std::string output;               // optional .json or .csv
  std::string device = "auto";      // auto | cpu | cuda
  int threads = 0;                  // intra-op threads (0 = usable cores)
  std::optional<bool> tta;          // --tta / --no-tta; unset: as the checkpoint's run evaluated
  std::string resize = "crop";      // crop | pad | squash: how a non-square image becomes square
};

struct ExportOptions {
  std::string load_model;              // checkpoint whose weights are exported
  std::string format = "safetensors";  // safetensors
  std::string output;                  // the file to write
};

struct CommandLine {
  enum class Command { kTrain, kPredict, kExport, kExit } command = Command::kTrain;
  Config config;
  PredictOptions predict;
  ExportOptions export_options;
  int exit_code = 0;  // for kExit (--help, --version)
  std::set<std::string> given;  // flag names set on the command line or in --config
  // --config's bytes as read: workers started from this process read these,
  // not the file again (a pipe gives its bytes once).
  std::string config_text;
};

// Parses argv; throws UserError (exit 2) with one line for any bad flag,
// value or config file. --help and --version yield Command::kExit.
CommandLine parse_command_line(int argc, const char* const* argv);

// Parses the text of a --config file (JSON or YAML) over the defaults and
// validates the result, as `--config FILE` does; `source` names it in
// errors. Throws UserError with one line.
Config parse_config_text(const std::string& text, const std::string& source);

nlohmann::json config_to_json(const Config& config);
// Reads the fields present in `j` over `config`; unknown keys are errors.
void config_from_json(const nlohmann::json& j, Config& config);

}  // namespace cifar
