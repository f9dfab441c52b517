// --config and the flags' checks through the binary: a config piped in is
// read once and used, what is no file or pipe is refused before a byte is
// read, and values no run can use are refused before any data is read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/atomic_file.h"
#include "distributed/require_gloo.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::run_cifar10;
using testing::TempDir;

// A short evaluation whose model and epochs come from the config alone:
// unread, the run would train ResNet-18 for 100 epochs.
const std::string kConfig =
    "model-type: cnn\nepochs: 0\ntrain-limit: 256\nvalidation-size: 128\ntest-limit: 64\nthreads: 1\n"
    "skip-visualization: true\n";

std::vector<std::string> run_flags(const fs::path& out) {
  return {"--data-dir", testing::data_root().string(), "--output-dir", out.string()};
}

// The run's settings were the config's: a CNN, no epoch.
void expect_config_used(const testing::ProcessResult& r, const fs::path& out) {
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = nlohmann::json::parse(read_file(out / "results/config.json"));
  EXPECT_EQ(config["model-type"], "cnn");
  EXPECT_EQ(config["epochs"], 0);
  EXPECT_EQ(config["test-limit"], 64);
}

// Runs the binary with `config` in a pipe: as its stdin (`printf ... |
// cifar10 --config /dev/stdin`) or as descriptor 3 (`--config <(...)`,
// which bash passes as /dev/fd/N). 120 s at most (alarm survives exec): a
// run that ignored the config would train for hours.
testing::ProcessResult run_with_piped_config(const std::string& config, bool as_stdin, std::vector<std::string> args) {
  return testing::run_forked([&] {
    int p[2];
    if (::pipe(p) != 0) ::_exit(126);
    if (::write(p[1], config.data(), config.size()) != static_cast<ssize_t>(config.size())) ::_exit(126);
    ::close(p[1]);
    ::dup2(p[0], as_stdin ? 0 : 3);
    if (p[0] != (as_stdin ? 0 : 3)) ::close(p[0]);
    args.insert(args.begin(), {testing::cifar10_binary(), "--config", as_stdin ? "/dev/stdin" : "/dev/fd/3"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::alarm(120);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  });
}

// The config was read twice, and the second read of a pipe is empty: the
// run started 100 epochs of ResNet-18 without a word.
TEST(ConfigFile, APipedConfigIsReadOnceAndUsed) {
  TempDir out("stdin");
  expect_config_used(run_with_piped_config(kConfig, true, run_flags(out.path())), out.path());
  TempDir fd_out("devfd");
  expect_config_used(run_with_piped_config(kConfig, false, run_flags(fd_out.path())), fd_out.path());
}

// Workers of the local launcher read the bytes the launcher read, not the
// pipe again (which would give them nothing).
TEST(ConfigFile, APipedConfigReachesTheLaunchersWorkers) {
  SKIP_WITHOUT_GLOO();
  TempDir out("stdin_workers");
  const std::string config = "model-type: mlp\nepochs: 1\ntrain-limit: 256\nvalidation-size: 128\n"
                             "test-limit: 64\nbatch-size: 32\nskip-visualization: true\n";
  auto r = run_with_piped_config(config, true, [&] {
    auto flags = run_flags(out.path());
    flags.insert(flags.end(), {"--nproc-per-node", "2", "--dist-backend", "gloo", "--device", "cpu"});
    return flags;
  }());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto recorded = nlohmann::json::parse(read_file(out / "results/config.json"));
  EXPECT_EQ(recorded["model-type"], "mlp");
  EXPECT_EQ(recorded["epochs"], 1);
}

// A named pipe: the second read waited for a writer that never came.
TEST(ConfigFile, AFifoIsReadOnceAndUsed) {
  TempDir tmp("fifo");
  const std::string fifo = (tmp / "config.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Non-blocking until the binary opens its end, so a binary that never
  // does cannot hang the test.
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int fd = -1;
    while ((fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) < 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (fd < 0) return;
    ::fcntl(fd, F_SETFL, 0);
    (void)!::write(fd, kConfig.data(), kConfig.size());
    ::close(fd);
  });
  auto args = run_flags(tmp / "out");
  args.insert(args.end(), {"--config", fifo});
  const auto r = run_cifar10(args, 120);
  writer.join();
  expect_config_used(r, tmp / "out");
}

std::string error_line(const testing::ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const auto at = r.output.find("error: ");
  EXPECT_NE(at, std::string::npos) << r.output;
  return at == std::string::npos ? "" : r.output.substr(at, r.output.find('\n', at) - at);
}

// Flags that point at no data: a check that came after the data would name
// the missing archive instead of the value.
std::vector<std::string> no_data(const TempDir& tmp, std::vector<std::string> args) {
  args.insert(args.end(), {"--data-dir", (tmp / "no-data").string(), "--data-archive", (tmp / "none.tar.gz").string(),
                           "--output-dir", (tmp / "out").string()});
  return args;
}

// /dev/zero was read until memory ran out.
TEST(ConfigFile, WhatIsNoFileOrPipeIsRefusedBeforeReading) {
  TempDir tmp("nonfile");
  EXPECT_EQ(error_line(run_cifar10(no_data(tmp, {"--config", "/dev/zero"}), 60)),
            "error: config file /dev/zero is a character device, not a file or a pipe (hint: name a JSON or YAML "
            "file, or pipe one into --config /dev/stdin)");
  EXPECT_NE(error_line(run_cifar10(no_data(tmp, {"--config", tmp.path().string()}), 60)).find("is a directory"),
            std::string::npos);
}

// 1e300 passed the checks, and the run failed in its first step with
// "value cannot be converted to type float without overflow", exit 1, no
// flag named; 0x10 and " 5" were read as 16 and 5; 5000 threads did not
// finish an evaluation. Each is refused by name before the data is read.
TEST(ConfigFile, ValuesNoRunCanUseAreRefusedBeforeTheData) {
  TempDir tmp("range");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--learning-rate", "1e300"}, "error: invalid --learning-rate 1e300: must be in (0, 100]"},
      {{"--grad-clip", "1e300"}, "error: invalid --grad-clip 1e300: must be in [0, 1000000]"},
      {{"--regularization-factor", "1e300"}, "error: invalid --regularization-factor 1e300: must be in [0, 1]"},
      {{"--epochs", "0x10"}, "error: invalid --epochs 0x10: expected a whole number in digits (e.g. 10)"},
      {{"--epochs", " 5"}, "error: invalid --epochs  5: expected a whole number in digits (e.g. 10)"},
      {{"--threads", "5000"}, "error: invalid --threads 5000: must be in [0, "},
  };
  for (const auto& [args, expected] : cases) {
    const std::string line = error_line(run_cifar10(no_data(tmp, args), 60));
    EXPECT_EQ(line.rfind(expected, 0), 0u) << line;
  }
  const std::string predict = error_line(
      run_cifar10({"predict", "--load-model", (tmp / "none.pt").string(), "a.png", "--threads", "5000"}, 60));
  EXPECT_EQ(predict.rfind("error: invalid --threads 5000: must be in [0, ", 0), 0u) << predict;
}

// A key given twice took the last value without a word; deep nesting said
// "bad file" (YAML) or nothing of where (JSON).
TEST(ConfigFile, KeysGivenTwiceAndDeepNestingAreNamedWithTheirLine) {
  TempDir tmp("keys");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::vector<std::pair<std::string, std::string>> files{
      {"twice.yaml", "epochs: 3\nseed: 1\nepochs: 5\n"},
      {"twice.json", "{\"epochs\": 3,\n \"seed\": 1,\n \"epochs\": 5}"},
      {"deep.yaml", "epochs: 3\nseed: 1\nx: " + deep + "\n"},
      {"deep.json", "{\"epochs\": 3,\n \"seed\": 1,\n \"x\": " + deep + "}"},
  };
  for (const auto& [name, text] : files) testing::write_bytes(tmp / name, text);
  auto error_for = [&](const std::string& name) {
    return error_line(run_cifar10(no_data(tmp, {"--config", (tmp / name).string()}), 60));
  };
  const std::string prefix = "error: config file " + (tmp / "").string();
  EXPECT_EQ(error_for("twice.yaml"),
            prefix +
                "twice.yaml: line 3: key 'epochs' sets --epochs again (first set by 'epochs' on line 1; hint: "
                "keep one)");
  EXPECT_EQ(error_for("twice.json"),
            prefix +
                "twice.json: line 3: key 'epochs' sets --epochs again (first set by 'epochs' on line 1; hint: "
                "keep one)");
  EXPECT_EQ(error_for("deep.yaml"), prefix +
                                        "deep.yaml is not valid JSON or YAML: line 3: values nest more than "
                                        "2000 levels deep (a config file holds single values)");
  EXPECT_EQ(error_for("deep.json"), prefix +
                                        "deep.json: line 3: config key 'x' must be a single value (a number, a "
                                        "word or a path), not a list or a mapping");
}

// yaml-cpp quotes one byte of a broken character ("unknown escape
// character: " and the byte); it reached the terminal raw.
TEST(ConfigFile, BrokenUtf8InAConfigErrorIsEscaped) {
  TempDir tmp("utf8");
  testing::write_bytes(tmp / "escape.yaml", "model-type: cnn\nepochs: \"\\\xea\"\n");
  const std::string line = error_line(run_cifar10(no_data(tmp, {"--config", (tmp / "escape.yaml").string()}), 60));
  EXPECT_NE(line.find("line 2, column 12: unknown escape character: \\xEA"), std::string::npos) << line;
  EXPECT_EQ(line.find('\xea'), std::string::npos) << line;
}

TEST(ConfigFile, HelpShowsEachFlagsRuleAndDefault) {
  const auto r = run_cifar10({"--help"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* text : {"--learning-rate FLOAT=0.001", "Initial learning rate, in (0, 100]", "--optimizer TEXT=adam",
                           "Optimiser: adam | adamw | sgd", "--epochs INT=100", "Number of training epochs, 0 or more",
                           "--flip,--no-flip=true", "Random horizontal flip", "--model-type TEXT=resnet", "mlp"}) {
    EXPECT_NE(r.output.find(text), std::string::npos) << text << "\n" << r.output;
  }
}

}  // namespace
}  // namespace cifar
