// A run's folder as a user meets it: refused runs leave it as it was, one
// run holds it at a time, a resumed run's record covers the whole run, and
// the console says what the run is in a few lines.
#include <signal.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <thread>

#include "data/cifar_reader.h"
#include "data/image_io.h"
#include "e2e_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::Child;
using testing::run_cifar10;
using testing::TempDir;
using namespace e2e;

// Every file under `dir` with its bytes, for "nothing changed" checks.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).string()] = read_file(entry.path());
  }
  return files;
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// A first run that cannot get its data leaves no folder behind: nothing is
// created before something goes into it.
TEST(RunFolder, AnOfflineFirstRunLeavesNoFoldersBehind) {
  TempDir dir("offline");
  const fs::path out = dir / "run";
  auto r = run_cifar10({"--model-type", "cnn", "--epochs", "1", "--data-dir", (dir / "data").string(), "--data-url",
                        "file://" + (dir / "missing.tar.gz").string(), "--output-dir", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(out)) << r.output;
}

// A resume refused for another optimiser, or a run refused for a bad
// value, changes nothing in the folder it would have written.
TEST(RunFolder, ARefusedRunLeavesTheFolderAsItWas) {
  TempDir out("refused");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  const auto before = snapshot(out.path());
  const std::string latest = (out / "checkpoints/latest_model.pt").string();
  auto optimizer = run_cifar10(tiny_run(out.path(), {"--epochs", "2", "--resume", latest, "--optimizer", "sgd"}));
  EXPECT_NE(single_error_line(optimizer).find("was trained with --optimizer adam, not sgd"), std::string::npos)
      << optimizer.output;
  EXPECT_EQ(optimizer.output.find("Data:"), std::string::npos) << "refused before the data: " << optimizer.output;
  // A run whose batch norm cannot train (refused after the data, before writing).
  auto batch = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--batch-size", "1"}));
  EXPECT_EQ(batch.exit_code, 2) << batch.output;
  EXPECT_EQ(snapshot(out.path()), before);
}

// One run at a time: a second run into a folder another run holds stops
// with one line naming the folder and the holder; a holder killed with
// SIGKILL holds nothing.
TEST(RunFolder, ASecondRunIntoAHeldFolderIsRefused) {
  TempDir out("held");
  Child first(tiny_run(out.path(), {"--epochs", "20", "--skip-inference"}));
  ASSERT_TRUE(first.wait_for_output("Epoch 1/20", 300)) << first.output();
  auto second = run_cifar10(tiny_run(out.path(), {"--model-type", "mlp", "--seed", "2", "--epochs", "1"}));
  const std::string line = single_error_line(second);
  EXPECT_NE(line.find("--output-dir " + out.path().string() + " is in use by another cifar10 run (pid " +
                      std::to_string(first.pid()) + ")"),
            std::string::npos)
      << second.output;
  EXPECT_EQ(read_json(out / "results/config.json")["model-type"], "cnn");
  first.send(SIGKILL);
  first.wait(60);
  auto third = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference"}));
  EXPECT_EQ(third.exit_code, 0) << third.output;
}

// The record of a resumed run describes the whole run: a resume with
// nothing left to train keeps the time and images of the run it resumes,
// and a run stopped part-way and resumed counts every image once.
TEST(RunFolder, AResumedRunsRecordCoversTheWholeRun) {
  TempDir done("done"), cut("cut");
  const std::vector<std::string> common{"--epochs", "2", "--skip-inference"};
  ASSERT_EQ(run_cifar10(tiny_run(done.path(), common)).exit_code, 0);
  const auto first = read_json(done / "results/training_summary.json");
  ASSERT_GT(first["train_seconds"].get<double>(), 0.0);
  auto again = run_cifar10(tiny_run(done.path(), with(common, {"--resume", (done / "checkpoints/latest_model.pt").string()})));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto second = read_json(done / "results/training_summary.json");
  EXPECT_EQ(second["train_seconds"], first["train_seconds"]);
  EXPECT_EQ(second["images_trained"], first["images_trained"]);
  EXPECT_EQ(second["images_per_second"], first["images_per_second"]);
  EXPECT_GE(second["wall_seconds"].get<double>(), first["train_seconds"].get<double>());

  Child run(tiny_run(cut.path(), with(common, {"--train-limit", "1024", "--batch-size", "32"})));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/2", 300)) << run.output();
  run.send(SIGTERM);
  ASSERT_EQ(run.wait(300).exit_code, 143);
  auto resumed = run_cifar10(tiny_run(cut.path(), with(common, {"--train-limit", "1024", "--batch-size", "32", "--resume",
                                                                (cut / "checkpoints/latest_model.pt").string()})));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read_json(cut / "results/training_summary.json")["images_trained"], 2 * 1024);
}

// A bit-exact resume needs the thread count the run trained with: a resume
// without --threads takes it from the checkpoint; one with another count
// says its figures will differ.
TEST(RunFolder, AResumeKeepsTheRunsThreadCount) {
  TempDir straight("threads1"), cut("threads_cut");
  const std::vector<std::string> common{"--epochs", "2", "--train-limit", "1024", "--batch-size", "32",
                                        "--skip-inference", "--threads", "1"};
  ASSERT_EQ(run_cifar10(tiny_run(straight.path(), common)).exit_code, 0);
  Child run(tiny_run(cut.path(), common));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/2", 300)) << run.output();
  run.send(SIGTERM);
  ASSERT_EQ(run.wait(300).exit_code, 143);
  const std::string latest = (cut / "checkpoints/latest_model.pt").string();
  // The README's resume command: the checkpoint and the data, no --threads.
  const std::vector<std::string> resume{"--resume", latest, "--data-dir", testing::data_root().string(),
                                        "--skip-visualization"};
  auto resumed = run_cifar10(resume);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find(", 1 thread"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("resumes with"), std::string::npos) << resumed.output;
  expect_bit_identical(straight / "checkpoints/latest_model.pt", latest);

  auto other = run_cifar10(with(resume, {"--threads", "2"}));
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("note: the run trained with 1 threads and resumes with 2"), std::string::npos)
      << other.output;
}

// The run's first lines: program, device and threads, then only the
// settings that differ from their defaults; --verbose lists them all.
TEST(RunFolder, TheConsoleShowsOnlyTheSettingsThatDiffer) {
  TempDir out("console");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference", "--learning-rate", "0.003"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Settings: the defaults, with "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--learning-rate 0.003"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--model-type cnn"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("--momentum"), std::string::npos) << "a default is not listed: " << r.output;
  EXPECT_EQ(r.output.find("Configuration:"), std::string::npos) << r.output;
  auto verbose = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference", "--verbose"}));
  ASSERT_EQ(verbose.exit_code, 0) << verbose.output;
  EXPECT_NE(verbose.output.find("  momentum = 0.9"), std::string::npos) << verbose.output;
}

// A checkpoint brings its own model: model flags that name another say so
// in one line, also when they name the default model.
TEST(RunFolder, LoadModelNamesTheModelFlagsItOverrides) {
  TempDir run("cnn_run"), out("load");
  ASSERT_EQ(run_cifar10(tiny_run(run.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference", "--model-type", "resnet",
                                             "--load-model", (run / "checkpoints/latest_model.pt").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("holds a cnn model, used as saved; the model flags (resnet depth 18) do not apply"),
            std::string::npos)
      << r.output;
}

// Calibration after training: a temperature fitted on the validation
// split, kept in the checkpoints, applied by the evaluation (ECE before and
// after on record) and by predict; --calibration none keeps 1.
TEST(RunFolder, ConfidencesAreCalibratedOnTheValidationSplit) {
  TempDir out("calibrated"), plain("uncalibrated"), images("images");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "2", "--label-smoothing", "0.2", "--tta"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto inference = read_json(out / "results/inference_results.json");
  const double t = inference.at("calibration").at("temperature").get<double>();
  EXPECT_NE(t, 1.0);
  EXPECT_TRUE(inference.at("calibration").contains("ece_uncalibrated")) << inference.dump();
  EXPECT_NE(inference.at("loss_definition").get<std::string>().find("without label smoothing"), std::string::npos);
  EXPECT_TRUE(inference.contains("without_tta"));
  EXPECT_NE(r.output.find("before temperature"), std::string::npos) << r.output;
  // The evaluated model is the best epoch's, restored; the latest
  // checkpoint holds other weights and a temperature fitted for them.
  const std::string best = (out / "checkpoints/best_model.pt").string();
  EXPECT_EQ(read_checkpoint(best).meta.at("spec").at("temperature").get<double>(), t);
  const double latest_t =
      read_checkpoint((out / "checkpoints/latest_model.pt").string()).meta.at("spec").at("temperature").get<double>();
  EXPECT_NE(latest_t, 1.0);

  // predict reports the calibrated confidences: the same file's own with
  // temperature 1 differ, the classes do not.
  const std::string copy = (images / "uncalibrated.pt").string();
  testing::write_bytes(copy, read_file(best));
  set_checkpoint_temperature(copy, 1.0);
  const auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin");
  for (int i = 0; i < 3; ++i) write_png(images / "in" / ("img" + std::to_string(i) + ".png"), test.images[i]);
  auto calibrated = run_cifar10({"predict", "--load-model", best, "--no-tta", (images / "in").string()});
  auto raw = run_cifar10({"predict", "--load-model", copy, "--no-tta", (images / "in").string()});
  ASSERT_EQ(calibrated.exit_code, 0) << calibrated.output;
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  // "<file>: <class> <confidence>, ...": the classes in order, without the confidences.
  const auto classes = [](const std::string& output) {
    std::string out;
    for (char c : output) out += std::isdigit(static_cast<unsigned char>(c)) || c == '.' ? '#' : c;
    return out;
  };
  EXPECT_EQ(classes(calibrated.output), classes(raw.output));
  EXPECT_NE(calibrated.output, raw.output);

  auto none = run_cifar10(tiny_run(plain.path(), {"--epochs", "1", "--calibration", "none"}));
  ASSERT_EQ(none.exit_code, 0) << none.output;
  const auto plain_inference = read_json(plain / "results/inference_results.json");
  EXPECT_EQ(plain_inference.at("calibration").at("temperature").get<double>(), 1.0);
  EXPECT_FALSE(plain_inference.at("calibration").contains("ece_uncalibrated"));
}

}  // namespace
}  // namespace cifar
