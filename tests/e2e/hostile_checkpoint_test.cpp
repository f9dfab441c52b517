// Checkpoints that do not fit the run, handed to the real binary: each is
// refused before any training with one line that says what does not fit,
// and exit code 2.
#include "checkpoint_fixtures.h"
#include "common/atomic_file.h"
#include "data/cifar_reader.h"
#include "models/registry.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

std::vector<std::string> cnn_run(const fs::path& out, std::vector<std::string> extra) {
  std::vector<std::string> args{"--model-type", "cnn",  "--data-dir",        testing::data_root().string(),
                                "--output-dir", out.string(), "--train-limit", "256",
                                "--validation-size", "128", "--batch-size", "32", "--epochs", "2",
                                "--threads", "1", "--skip-inference", "--skip-visualization"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Saves a freshly initialised model of `type`/`depth` for `classes`.
fs::path save_model(const fs::path& file, const std::string& type, int depth, std::vector<std::string> classes) {
  ModelConfig mc;
  mc.model_type = type;
  mc.depth = depth;
  const auto spec = make_spec(mc, classes, {0.49, 0.48, 0.45}, {0.25, 0.24, 0.26});
  torch::manual_seed(1);
  auto model = build_model(spec);
  torch::optim::Adam adam(model->parameters());
  nlohmann::json meta = {{"epoch", 1}, {"step_in_epoch", 0}, {"global_step", 8}, {"learning_rate", 0.001},
                         {"callbacks", nlohmann::json::object()}};
  save_checkpoint(file.string(), *model, spec, &adam, meta);
  return file;
}

std::vector<std::string> real_classes() { return read_class_names(testing::batches_dir() / "batches.meta.txt"); }

// The run's one error line; the process must have exited 2 and printed no
// other line starting with "error:".
std::string refusal(const testing::ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const auto pos = r.output.find("error: ");
  EXPECT_NE(pos, std::string::npos) << r.output;
  if (pos == std::string::npos) return "";
  EXPECT_EQ(r.output.find("error: ", pos + 1), std::string::npos) << r.output;
  const auto end = r.output.find('\n', pos);
  EXPECT_EQ(end == std::string::npos ? r.output.size() : end + 1, r.output.size()) << "the error is the last line";
  return r.output.substr(pos, end - pos);
}

TEST(HostileCheckpoint, ResumingAResnetIntoACnnRunNamesBoth) {
  TempDir tmp("hostile");
  const auto resnet = save_model(tmp / "resnet20.pt", "resnet", 20, real_classes());
  const auto line = refusal(testing::run_cifar10(cnn_run(tmp / "out", {"--resume", resnet.string()})));
  EXPECT_EQ(line, "error: cannot resume from " + resnet.string() +
                      ": it holds a resnet depth 20 model, but this run builds a cnn (hint: resume with the model "
                      "flags the run started with)");
  // Another ResNet depth is another model too.
  const auto deeper = refusal(testing::run_cifar10(
      cnn_run(tmp / "out", {"--model-type", "resnet", "--depth", "56", "--resume", resnet.string()})));
  EXPECT_NE(deeper.find("holds a resnet depth 20 model, but this run builds a resnet depth 56"), std::string::npos)
      << deeper;
}

TEST(HostileCheckpoint, ANewerFormatVersionIsRefusedWithBothVersions) {
  TempDir tmp("hostile");
  const auto good = save_model(tmp / "good.pt", "cnn", 0, real_classes());
  const fs::path newer = tmp / "v99.pt";
  write_file_atomic(newer, testing::with_meta(read_file(good), [](nlohmann::json& m) { m["version"] = 99; }));
  for (const std::string flag : {"--resume", "--load-model"}) {
    const auto line = refusal(testing::run_cifar10(cnn_run(tmp / "out", {flag, newer.string()})));
    EXPECT_EQ(line, "error: checkpoint " + newer.string() +
                        " has format version 99, newer than this cifar10 reads (" +
                        std::to_string(kCheckpointVersion) + "); upgrade cifar10")
        << flag;
  }
}

TEST(HostileCheckpoint, AnotherClassCountIsRefusedListingBoth) {
  TempDir tmp("hostile");
  const auto five = save_model(tmp / "five.pt", "cnn", 0, {"cat", "dog", "frog", "horse", "ship"});
  const auto line = refusal(testing::run_cifar10(
      {"--skip-training", "--load-model", five.string(), "--data-dir", testing::data_root().string(),
       "--output-dir", (tmp / "out").string(), "--test-limit", "10", "--skip-visualization"}));
  EXPECT_EQ(line, "error: checkpoint " + five.string() +
                      " was trained on 5 classes (cat, dog, frog, horse, ship), but this data has 10 classes "
                      "(airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)");
}

TEST(HostileCheckpoint, TorchScriptInACheckpointIsNeverLoaded) {
  TempDir tmp("hostile");
  const auto good = save_model(tmp / "good.pt", "cnn", 0, real_classes());
  const fs::path evil = tmp / "evil.pt";
  write_file_atomic(evil, testing::repack_archive(read_file(good), [](const std::string& name, std::string& data) {
                      if (name == "code/__torch__.py") data += "  def __setstate__(self, state: str) -> None:\n    pass\n";
                    }));
  const auto line = refusal(testing::run_cifar10(cnn_run(tmp / "out", {"--resume", evil.string()})));
  EXPECT_EQ(line, "error: checkpoint " + evil.string() +
                      " carries TorchScript code (code/__torch__.py, line 7 is not an attribute declaration), which "
                      "cifar10 never writes; refusing to load it, as LibTorch would run it");
  // predict reads checkpoints too.
  const auto predict = refusal(testing::run_cifar10({"predict", "--load-model", evil.string(), tmp.path().string()}));
  EXPECT_NE(predict.find("carries TorchScript code"), std::string::npos) << predict;
}

}  // namespace
}  // namespace cifar
