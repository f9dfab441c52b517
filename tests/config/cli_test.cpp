#include "config/cli.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <thread>

#include "common/error.h"
#include "common/runtime.h"
#include "config/config_file.h"
#include "config/fields.h"
#include "test_util.h"

namespace cifar {
namespace {

CommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cifar10");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string parse_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const UserError& e) {
    EXPECT_EQ(e.exit_code(), 2);
    std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << "error must be one line: " << what;
    return what;
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Cli, DefaultsMatchTheOriginal) {
  const Config c = parse({}).config;
  EXPECT_EQ(c.model.model_type, "resnet");
  EXPECT_EQ(c.train.epochs, 100);
  EXPECT_EQ(c.train.batch_size, 128);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 0.001);
  EXPECT_EQ(c.train.early_stopping_patience, 15);
  EXPECT_DOUBLE_EQ(c.model.dropout_rate, 0.3);
  EXPECT_DOUBLE_EQ(c.train.regularization_factor, 1e-4);
  EXPECT_EQ(c.run.strategy, "mirrored");
  EXPECT_EQ(c.train.optimizer, "adam");
  EXPECT_FALSE(c.run.skip_training);
  EXPECT_FALSE(c.run.skip_inference);
  EXPECT_FALSE(c.run.skip_visualization);
  EXPECT_DOUBLE_EQ(c.augment.rotation, 15.0);
  EXPECT_DOUBLE_EQ(c.augment.translation, 0.1);
  EXPECT_DOUBLE_EQ(c.augment.zoom, 0.1);
  EXPECT_TRUE(c.augment.flip);
}

TEST(Cli, FlagsOverrideDefaults) {
  const Config c = parse({"--model-type", "cnn", "--epochs", "50", "--batch-size", "64", "--learning-rate", "0.0001",
                          "--skip-visualization", "--no-flip", "--load-model", "m.pt", "--skip-training"})
                       .config;
  EXPECT_EQ(c.model.model_type, "cnn");
  EXPECT_EQ(c.train.epochs, 50);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 1e-4);
  EXPECT_TRUE(c.run.skip_visualization);
  EXPECT_FALSE(c.augment.flip);
  EXPECT_EQ(c.run.load_model, "m.pt");
}

TEST(Cli, JsonConfigFileWithFlagsOverridingIt) {
  testing::TempDir tmp("cli");
  testing::write_bytes(tmp / "c.json", R"({"model-type": "cnn", "epochs": 7, "batch_size": 32, "flip": false})");
  const Config c = parse({"--config", (tmp / "c.json").string(), "--epochs", "9"}).config;
  EXPECT_EQ(c.model.model_type, "cnn");
  EXPECT_EQ(c.train.epochs, 9);  // the flag wins
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_FALSE(c.augment.flip);
  EXPECT_EQ(c.run.config_file, (tmp / "c.json").string());
}

TEST(Cli, YamlConfigFile) {
  testing::TempDir tmp("cli");
  testing::write_bytes(tmp / "c.yaml", "model_type: efficientnet\nlearning-rate: 0.01\nskip-inference: true\n");
  const Config c = parse({"--config", (tmp / "c.yaml").string()}).config;
  EXPECT_EQ(c.model.model_type, "efficientnet");
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 0.01);
  EXPECT_TRUE(c.run.skip_inference);
}

TEST(Cli, PresetSetsDefaultsThatFlagsStillOverride) {
  const Config c = parse({"--preset", "quick", "--epochs", "3"}).config;
  EXPECT_EQ(c.model.model_type, "fast");
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.optimizer, "sgd");
}

// A preset named in the config file applies under the file's values and
// the flags, as --preset does; a --preset flag still wins over the file's.
TEST(Cli, PresetInAConfigFileApplies) {
  testing::TempDir tmp("cli");
  testing::write_bytes(tmp / "c.yaml", "preset: quick\nepochs: 5\n");
  const Config c = parse({"--config", (tmp / "c.yaml").string(), "--batch-size", "64"}).config;
  EXPECT_EQ(c.model.model_type, "fast");
  EXPECT_EQ(c.train.lr_schedule, "onecycle");
  EXPECT_EQ(c.train.epochs, 5);
  EXPECT_EQ(c.train.batch_size, 64);
  const Config full = parse({"--config", (tmp / "c.yaml").string(), "--preset", "full"}).config;
  EXPECT_EQ(full.model.model_type, "resnet");
}

// Values no run can use, refused before any data is read.
TEST(Cli, OutOfRangeTrainingValuesAreRefused) {
  EXPECT_NE(parse_error({"--learning-rate", "inf"}).find("--learning-rate"), std::string::npos);
  EXPECT_NE(parse_error({"--momentum", "-1"}).find("--momentum -1"), std::string::npos);
  EXPECT_NE(parse_error({"--optimizer", "sgd", "--nesterov", "--momentum", "0"}).find("--nesterov"),
            std::string::npos);
  EXPECT_NE(parse_error({"--step-gamma", "-2"}).find("--step-gamma -2"), std::string::npos);
  EXPECT_NE(parse_error({"--plateau-patience", "-1"}).find("--plateau-patience -1"), std::string::npos);
  EXPECT_NE(parse_error({"--min-lr", "-1"}).find("--min-lr -1"), std::string::npos);
  EXPECT_NE(parse_error({"--log-every", "-5"}).find("--log-every -5"), std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "64", "--grad-accumulation", "100"}).find("--grad-accumulation 100"),
            std::string::npos);
  EXPECT_NE(parse_error({"--validation-size", "0"}).find("--monitor loss"), std::string::npos);
  EXPECT_EQ(parse({"--validation-size", "0", "--monitor", "loss"}).config.data.validation_size, 0);
}

TEST(Cli, BadInputsGiveOneLine) {
  EXPECT_NE(parse_error({"--epochs", "-1"}).find("--epochs -1"), std::string::npos);
  EXPECT_NE(parse_error({"--batch-size", "0"}).find("--batch-size 0"), std::string::npos);
  EXPECT_NE(parse_error({"--epochs", "ten"}).find("epochs"), std::string::npos);
  EXPECT_NE(parse_error({"--no-such-flag"}).find("no-such-flag"), std::string::npos);
  EXPECT_NE(parse_error({"--optimizer", "rmsprop"}).find("rmsprop"), std::string::npos);
  EXPECT_NE(parse_error({"--device", "tpu"}).find("tpu"), std::string::npos);
  EXPECT_NE(parse_error({"--preset", "turbo"}).find("turbo"), std::string::npos);
  // A rule on a flag without a value names the flag alone (no stray space).
  EXPECT_NE(parse_error({"--skip-training"}).find("invalid --skip-training: needs --load-model"), std::string::npos);
  EXPECT_NE(parse_error({"predict", "--load-model", "m.pt", "a.png", "--resize", "stretch"}).find("--resize"),
            std::string::npos);
  EXPECT_NE(parse_error({"--config", "/nonexistent/c.json"}).find("/nonexistent/c.json"), std::string::npos);
  // CLI11 read an empty value as 0: `--epochs ""` ran no epoch.
  for (const char* flag : {"--epochs", "--seed", "--rotation", "--threads", "--validation-size"}) {
    const std::string what = parse_error({flag, ""});
    EXPECT_NE(what.find(flag), std::string::npos) << what;
    EXPECT_NE(what.find("an empty value is not a number"), std::string::npos) << what;
  }
  EXPECT_NE(parse_error({"predict", "--load-model", "m.pt", "a.png", "--threads", "-1"}).find("--threads"),
            std::string::npos);
  EXPECT_NE(parse_error({"predict", "--load-model", "m.pt", "a.png", "--output", ""}).find("--output"),
            std::string::npos);
  // Pretrained weights start a new EfficientNet; a checkpoint brings its own.
  EXPECT_NE(parse_error({"--model-type", "cnn", "--pretrained-weights", "w.safetensors"}).find("not cnn"),
            std::string::npos);
  EXPECT_NE(parse_error({"--model-type", "efficientnet", "--pretrained-weights", "w.safetensors", "--load-model",
                         "m.pt"})
                .find("drop one of the two"),
            std::string::npos);
}

// The quick preset's width is the fast net's: with another model it is not
// the user's --width, and must not be refused as one.
TEST(Cli, PresetWidthDoesNotFollowAnotherModel) {
  EXPECT_EQ(parse({"--preset", "quick", "--model-type", "cnn"}).config.model.width, 0);
  EXPECT_EQ(parse({"--preset", "quick"}).config.model.width, 32);
  EXPECT_EQ(parse({"--preset", "quick", "--model-type", "cnn", "--width", "16"}).config.model.width, 16);
}

// The flags a user set, on the command line or in the config file: what a
// resume keeps from the user instead of from the checkpoint.
TEST(Cli, RecordsWhichFlagsWereGiven) {
  testing::TempDir tmp("given");
  testing::write_bytes(tmp / "c.yaml", "seed: 3\nno-flip: true\n");
  const auto cmd = parse({"--epochs", "3", "--config", (tmp / "c.yaml").string()});
  EXPECT_EQ(cmd.given, (std::set<std::string>{"epochs", "flip", "seed"}));
}

TEST(Cli, BadConfigFilesGiveOneLine) {
  testing::TempDir tmp("cli");
  testing::write_bytes(tmp / "bad.json", "{\"epochs\": ");
  EXPECT_NE(parse_error({"--config", (tmp / "bad.json").string()}).find("not valid JSON or YAML"), std::string::npos);
  testing::write_bytes(tmp / "unknown.json", R"({"epochz": 3})");
  const std::string unknown = parse_error({"--config", (tmp / "unknown.json").string()});
  EXPECT_NE(unknown.find("unknown key 'epochz'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown.json"), std::string::npos) << unknown;
  testing::write_bytes(tmp / "type.json", R"({"epochs": "two"})");
  const std::string type = parse_error({"--config", (tmp / "type.json").string()});
  EXPECT_NE(type.find("type.json"), std::string::npos) << type;
  EXPECT_NE(type.find("two"), std::string::npos) << type;
  testing::write_bytes(tmp / "neg.yaml", "epochs: -5\n");
  EXPECT_EQ(parse_error({"--config", (tmp / "neg.yaml").string()}),
            "config file " + (tmp / "neg.yaml").string() + ": invalid --epochs -5: must be 0 or more");
  // A flag's bad value is the flag's, not the file's.
  EXPECT_EQ(parse_error({"--config", (tmp / "neg.yaml").string(), "--epochs", "-2"}),
            "invalid --epochs -2: must be 0 or more");
}

TEST(Cli, PredictSubcommand) {
  const auto cmd = parse({"predict", "--load-model", "m.pt", "a.png", "dir", "--top-k", "5"});
  EXPECT_EQ(cmd.command, CommandLine::Command::kPredict);
  EXPECT_EQ(cmd.predict.load_model, "m.pt");
  EXPECT_EQ(cmd.predict.inputs, (std::vector<std::string>{"a.png", "dir"}));
  EXPECT_EQ(cmd.predict.top_k, 5);
  EXPECT_NE(parse_error({"predict", "a.png"}).find("load-model"), std::string::npos);
}

TEST(Cli, ConfigJsonRoundTrip) {
  Config c = parse({"--model-type", "cnn", "--epochs", "3", "--no-flip"}).config;
  Config back;
  config_from_json(config_to_json(c), back);
  EXPECT_EQ(config_to_json(back), config_to_json(c));
  EXPECT_THROW(config_from_json(nlohmann::json{{"bogus", 1}}, back), UserError);
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

std::string config_text_error(const std::string& text) {
  try {
    parse_config_text(text, "c.yaml");
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Cli, ConfigTextParsesAsTheConfigFlagDoes) {
  testing::TempDir tmp("cfg");
  const std::string yaml = "model-type: cnn\nepochs: 4\nflip: false\nlearning_rate: 0.01\n";
  testing::write_bytes(tmp / "c.yaml", yaml);
  const Config from_flag = parse({"--config", (tmp / "c.yaml").string()}).config;
  Config from_text = parse_config_text(yaml, "c.yaml");
  from_text.run.config_file = from_flag.run.config_file;
  EXPECT_EQ(config_to_json(from_text), config_to_json(from_flag));
  EXPECT_NE(config_text_error("epochs: -5\n").find("--epochs -5"), std::string::npos);
  EXPECT_NE(config_text_error("{\"epochz\": 1}").find("epochz"), std::string::npos);
  EXPECT_NE(config_text_error("epochs: [1, 2]\n").find("single value"), std::string::npos);
}

TEST(Cli, ConfigErrorsQuoteNoControlCharacters) {
  // yaml-cpp quotes the bad character raw; an escape sequence from a config
  // file must not reach the terminal (found by fuzz/config_fuzz).
  // And a bad value, quoted by validate(): a YAML escape makes it 0x10.
  for (const std::string text : {std::string("key: \"\\\x1b[31m\"\n"), std::string("\xf1\xd6\x00", 3),
                                 std::string("lr-schedule: \"cos\\x10ine\"\n")}) {
    const std::string message = config_text_error(text);
    EXPECT_NE(message.find("c.yaml"), std::string::npos) << message;
    for (char c : message) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << message;
  }
}

TEST(Cli, YamlAliasBombIsRefusedWithoutExpandingIt) {
  // 450 bytes that expand to 10^9 strings: expanding YAML aliases into JSON
  // took 60 s and 6.8 GB before being killed (a "billion laughs" config).
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(config_text_error(bomb).find("single value"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // Deep nesting, in either syntax, is refused as a value that is not single.
  EXPECT_NE(config_text_error(std::string(100000, '[') + std::string(100000, ']')).find("JSON or YAML"),
            std::string::npos);
  EXPECT_NE(config_text_error("{\"epochs\": " + std::string(100000, '[') + std::string(100000, ']') + "}")
                .find("single value"),
            std::string::npos);
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

// Sets the table field `name` of `config` to `value` (of the field's type).
template <class T>
void set_field(Config& config, const std::string& name, const T& value) {
  visit_fields(config, [&](const Field& field, auto& slot) {
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, T>) {
      if (name == field.name) slot = value;
    }
  });
}

// What a resume takes from the checkpoint and what ranks may differ in
// come from each field's scope in the table.
TEST(FlagTable, ScopesDecideResumeAndRankAgreement) {
  for (const char* key : {"epochs", "seed", "model-type", "batch-size", "preset", "tta", "sync-bn", "monitor"}) {
    EXPECT_TRUE(taken_on_resume(key)) << key;
    EXPECT_FALSE(may_differ_between_ranks(key)) << key;
  }
  // This invocation's: never the checkpoint's, but the same on every rank.
  for (const char* key : {"resume", "load-model", "pretrained-weights", "summary", "skip-training", "skip-inference",
                          "dist-backend", "dist-timeout"}) {
    EXPECT_FALSE(taken_on_resume(key)) << key;
    EXPECT_FALSE(may_differ_between_ranks(key)) << key;
  }
  // This machine's, or read by rank 0 or the launcher alone.
  for (const char* key : {"data-dir", "data-archive", "data-url", "data-md5", "output-dir", "threads", "device",
                          "nproc-per-node", "num-gpus", "strategy", "skip-visualization"}) {
    EXPECT_FALSE(taken_on_resume(key)) << key;
    EXPECT_TRUE(may_differ_between_ranks(key)) << key;
  }
  EXPECT_FALSE(taken_on_resume("config"));
  EXPECT_FALSE(may_differ_between_ranks("no-such-flag"));
}

// validate() checks every field against its rule in the table: a value
// just beyond each bound, or a word not in the list, is refused by name.
TEST(FlagTable, ValidateChecksEveryFieldsRule) {
  int checked = 0;
  const Config defaults;
  visit_fields(defaults, [&](const Field& field, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    std::vector<T> beyond;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!field.rule.words.empty()) beyond.push_back("no-such-value");
    } else if constexpr (!std::is_same_v<T, bool>) {
      const Rule& r = field.rule;
      if (std::isfinite(r.min)) beyond.push_back(static_cast<T>(r.min_open ? r.min : r.min - 1));
      if (std::isfinite(r.max)) beyond.push_back(static_cast<T>(r.max_open ? r.max : r.max * 1.5 + 1));
    }
    for (const T& bad : beyond) {
      Config c;
      set_field(c, field.name, bad);
      try {
        validate(c);
        ADD_FAILURE() << field.name << " accepted a value beyond its rule";
      } catch (const UserError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(std::string("invalid --") + field.name + " ", 0), 0u) << e.what();
      }
      ++checked;
    }
  });
  EXPECT_GT(checked, 50);
  EXPECT_NO_THROW(validate(defaults));
}

// --help is the table: each flag's help text, with its rule and default.
TEST(FlagTable, HelpShowsEveryFlagsHelpAndDefault) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(parse({"--help"}).command, CommandLine::Command::kExit);
  const std::string help = ::testing::internal::GetCapturedStdout();
  const Config defaults;
  visit_fields(defaults, [&](const Field& field, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    const std::string flag = std::string("--") + field.name;
    const auto at = help.find("\n  " + flag + (std::is_same_v<T, bool> ? "," : " "));
    ASSERT_NE(at, std::string::npos) << flag;
    // A long name and default push the help text onto the next line.
    const std::string entry = help.substr(at + 1, help.find("\n  -", at + 1) - at - 1) + "\n";
    EXPECT_NE(entry.find(help_text(field)), std::string::npos) << entry;
    std::string shown;
    if constexpr (std::is_same_v<T, bool>) {
      shown = value ? "true" : "false";
    } else if constexpr (std::is_arithmetic_v<T>) {
      shown = number_text(value);
    } else {
      shown = value;
    }
    const bool has_default =
        entry.find("=" + shown + " ") != std::string::npos || entry.find("=" + shown + "\n") != std::string::npos;
    if (!shown.empty()) EXPECT_TRUE(has_default) << entry;
  });
  EXPECT_NE(help.find("Initial learning rate, in (0, 100]"), std::string::npos);
  EXPECT_NE(help.find("Optimiser: adam | adamw | sgd"), std::string::npos);
}

// Values beyond what the float32 optimisers can hold failed in the first
// step ("cannot be converted to type float without overflow", exit 1):
// refused at the flag instead, as are values no run can use.
TEST(Cli, HugeFloatsAreRefusedNamingTheFlag) {
  for (const char* flag :
       {"--learning-rate", "--grad-clip", "--regularization-factor", "--momentum", "--min-lr", "--step-gamma",
        "--label-smoothing", "--plateau-factor", "--dropout-rate", "--rotation", "--translation", "--zoom"}) {
    const std::string what = parse_error({flag, "1e300"});
    EXPECT_EQ(what.rfind(std::string("invalid ") + flag + " 1e300: must be in ", 0), 0u) << what;
  }
  EXPECT_EQ(parse_error({"--learning-rate", "1e400"}), "invalid --learning-rate inf: must be in (0, 100]");
  EXPECT_EQ(parse_error({"--grad-clip", "1e7"}), "invalid --grad-clip 10000000: must be in [0, 1000000]");
  const Config edge = parse({"--learning-rate", "100", "--grad-clip", "1e6", "--regularization-factor", "1"}).config;
  EXPECT_DOUBLE_EQ(edge.train.learning_rate, 100);
  EXPECT_DOUBLE_EQ(edge.train.grad_clip, 1e6);
  // From a config file, named with the file.
  EXPECT_EQ(config_text_error("learning-rate: 1e300\n"),
            "config file c.yaml: invalid --learning-rate 1e300: must be in (0, 100]");
}

// CLI11 read 0x10 as 16, " 5" as 5 and 1e3 or 5.0 as whole numbers: a
// number is read as plain decimal, from flags and from config files.
TEST(Cli, NumbersAreReadOnlyAsPlainDecimals) {
  for (const char* bad : {"0x10", " 5", "5 ", "1e3", "+5", "5.0", "0b101", "1,000", "5e0"}) {
    const std::string what = parse_error({"--epochs", bad});
    EXPECT_EQ(what.rfind("invalid --epochs ", 0), 0u) << what;
    EXPECT_NE(what.find(": expected a whole number in digits"), std::string::npos) << what;
  }
  EXPECT_EQ(parse({"--epochs", "010"}).config.train.epochs, 10);  // decimal, where CLI11 read octal 8
  EXPECT_EQ(parse({"--seed", "-3"}).config.run.seed, -3);
  EXPECT_NE(parse_error({"--epochs", "99999999999"}).find("beyond the range of a whole number"), std::string::npos);
  for (const char* bad : {"0x1p-3", " 0.1", "0.1 ", "+0.1", "inf", "nan", "1e", ".", "1.2.3", "0.1f", "e3"}) {
    const std::string what = parse_error({"--learning-rate", bad});
    EXPECT_NE(what.find(": expected a decimal number"), std::string::npos) << what;
  }
  for (const auto& [text, value] : std::vector<std::pair<std::string, double>>{
           {"0.001", 0.001}, {"1e-3", 0.001}, {"1E-3", 0.001}, {".5", 0.5}, {"5.", 5}, {"2", 2}, {"1e+1", 10}}) {
    EXPECT_DOUBLE_EQ(parse({"--learning-rate", text}).config.train.learning_rate, value) << text;
  }
  EXPECT_EQ(config_text_error("epochs: 0x10\n"),
            "config file c.yaml: invalid --epochs 0x10: expected a whole number in digits (e.g. 10)");
  EXPECT_NE(config_text_error("epochs: ' 5'\n").find("invalid --epochs  5: expected a whole number"),
            std::string::npos);
  EXPECT_NE(config_text_error("{\"epochs\": 1e3}").find("invalid --epochs 1e3: expected"), std::string::npos);
  EXPECT_NE(config_text_error("{\"epochs\": 5.0}").find("invalid --epochs 5.0: expected"), std::string::npos);
  EXPECT_DOUBLE_EQ(parse_config_text("{\"learning-rate\": 1e-3, \"epochs\": 7}", "c.json").train.learning_rate, 1e-3);
}

// 5000 threads on two cores did not finish a 128-image evaluation in 120 s.
TEST(Cli, ThreadsAreCappedByTheUsableCores) {
  const int cap = max_threads();
  EXPECT_EQ(cap, std::max(16, 4 * usable_cores()));
  EXPECT_EQ(parse({"--threads", std::to_string(cap)}).config.run.threads, cap);
  const std::string over = std::to_string(cap + 1);
  EXPECT_EQ(parse_error({"--threads", over}),
            "invalid --threads " + over + ": must be in [0, " + std::to_string(cap) +
                "] (4 per usable core, 16 at least: more threads only wait for each other)");
  EXPECT_NE(parse_error({"predict", "--load-model", "m.pt", "a.png", "--threads", "5000"})
                .find("invalid --threads 5000: must be in [0, "),
            std::string::npos);
  EXPECT_EQ(parse({"predict", "--load-model", "m.pt", "a.png", "--threads", "2"}).predict.threads, 2);
}

// JSON and YAML parsers keep the last of two equal keys without a word.
TEST(Cli, AFlagSetTwiceInAConfigFileIsRefused) {
  EXPECT_EQ(config_text_error("epochs: 3\nseed: 1\nepochs: 5\n"),
            "config file c.yaml: line 3: key 'epochs' sets --epochs again (first set by 'epochs' on line 1; hint: "
            "keep one)");
  EXPECT_EQ(config_text_error("{\"epochs\": 3,\n \"epochs\": 5}"),
            "config file c.yaml: line 2: key 'epochs' sets --epochs again (first set by 'epochs' on line 1; hint: "
            "keep one)");
  EXPECT_NE(config_text_error("model-type: cnn\nmodel_type: fast\n")
                .find("line 2: key 'model_type' sets --model-type again (first set by 'model-type' on line 1"),
            std::string::npos);
  EXPECT_NE(config_text_error("flip: true\nno-flip: true\n").find("key 'no-flip' sets --flip again"),
            std::string::npos);
  EXPECT_NE(config_text_error("{\"a\": 1}").find("line 1: unknown key 'a'"), std::string::npos);
}

// Deep nesting said "bad file" (YAML) or nothing of where (JSON).
TEST(Cli, NestingInAConfigFileNamesTheLine) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(config_text_error("epochs: 3\nseed: 1\nx: " + deep + "\n"),
            "config file c.yaml is not valid JSON or YAML: line 3: values nest more than 2000 levels deep (a config "
            "file holds single values)");
  std::string block = "epochs: 3\nx:\n";
  for (int i = 0; i < 3000; ++i) block += std::string(static_cast<size_t>(i), ' ') + "- \n";
  EXPECT_NE(config_text_error(block).find("nest more than 2000 levels deep"), std::string::npos);
  EXPECT_EQ(config_text_error("{\n\"epochs\": 3,\n\"x\": " + deep + "}"),
            "config file c.yaml: line 3: config key 'x' must be a single value (a number, a word or a path), not a "
            "list or a mapping");
  EXPECT_NE(config_text_error("epochs: 3\nseed:\n  a: 1\n").find("line 3: config key 'seed' must be a single value"),
            std::string::npos);
}

// yaml-cpp quotes one byte of a broken character raw ("unknown escape
// character: \xEA"); valid UTF-8 stays as it is.
TEST(Cli, ConfigErrorsShowBrokenUtf8AsEscapes) {
  for (const std::string text : {std::string("a: \"\\\xea\"\n"), std::string("\xea: 5\n"), std::string("{\"\xea\": 5}"),
                                 std::string("epochs: \"\xea\n")}) {
    const std::string what = config_text_error(text);
    EXPECT_NE(what.find("\\xEA"), std::string::npos) << what;
    EXPECT_EQ(what.find('\xea'), std::string::npos) << what;
  }
  EXPECT_NE(config_text_error("\xc3\xa9poque: 5\n").find("unknown key '\xc3\xa9poque'"), std::string::npos);
}

// --config reads a regular file or a pipe, once; anything else is refused
// before a byte is read (/dev/zero never ends).
TEST(ConfigSource, OnlyFilesAndPipesAreRead) {
  testing::TempDir tmp("source");
  EXPECT_EQ(parse_error({"--config", tmp.path().string()}),
            "config file " + tmp.path().string() +
                " is a directory, not a file or a pipe (hint: name a JSON or YAML file, or pipe one into --config "
                "/dev/stdin)");
  EXPECT_NE(parse_error({"--config", "/dev/zero"}).find("config file /dev/zero is a character device, not a file"),
            std::string::npos);
  const std::string socket_path = (tmp / "s.sock").string();
  const int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_NE(parse_error({"--config", socket_path}).find("is a socket, not a file or a pipe"), std::string::npos);
  ::close(sock);
  // 1 MiB at most: a config file of that size is accepted, one byte more is not.
  const std::string head = "epochs: 3\n";
  testing::write_bytes(tmp / "big.yaml", head + "#" + std::string(kMaxConfigBytes - head.size() - 2, 'x') + "\n");
  EXPECT_EQ(parse({"--config", (tmp / "big.yaml").string()}).config.train.epochs, 3);
  testing::write_bytes(tmp / "huge.yaml", head + "#" + std::string(kMaxConfigBytes - head.size(), 'x') + "\n");
  EXPECT_NE(parse_error({"--config", (tmp / "huge.yaml").string()}).find("holds more than 1 MiB"), std::string::npos);
}

// A named pipe: its writer's bytes are read once, and a pipe that does not
// end within 1 MiB is refused.
TEST(ConfigSource, AFifoIsReadOnce) {
  testing::TempDir tmp("fifo");
  const std::string fifo = (tmp / "c.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto write_fifo = [&](std::string bytes) {
    return std::thread([fifo, bytes] {
      const int fd = ::open(fifo.c_str(), O_WRONLY);
      for (size_t at = 0; fd >= 0 && at < bytes.size();) {
        const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
        if (n <= 0) break;  // the reader stopped (EPIPE)
        at += static_cast<size_t>(n);
      }
      if (fd >= 0) ::close(fd);
    });
  };
  std::thread writer = write_fifo("model-type: cnn\nepochs: 7\n");
  const Config c = parse({"--config", fifo, "--batch-size", "32"}).config;
  writer.join();
  EXPECT_EQ(c.model.model_type, "cnn");
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_EQ(c.run.config_file, fifo);
  // A pipe read before, or fed by a command that failed, gives nothing.
  writer = write_fifo("");
  EXPECT_NE(parse_error({"--config", fifo}).find("is a pipe that gave no bytes"), std::string::npos);
  writer.join();
  const auto old_handler = std::signal(SIGPIPE, SIG_IGN);
  writer = write_fifo("epochs: 3\n" + std::string(2 * kMaxConfigBytes, '#'));
  EXPECT_NE(parse_error({"--config", fifo}).find("holds more than 1 MiB"), std::string::npos);
  writer.join();
  std::signal(SIGPIPE, old_handler);
}

}  // namespace
}  // namespace cifar
