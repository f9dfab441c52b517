#include "config/cli.h"

#include <chrono>

#include "common/error.h"
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
  EXPECT_NE(parse_error({"--skip-training"}).find("--load-model"), std::string::npos);
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
