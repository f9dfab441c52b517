// Whole-binary runs on the real data: what a user types, checked through
// the files the run leaves behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/signals.h"
#include "models/registry.h"
#include "reporting/tensorboard.h"
#include "e2e_util.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::Child;
using testing::run_cifar10;
using testing::TempDir;
using namespace e2e;

TEST(Train, OneCnnEpochOnFiveThousandImagesLearns) {
  TempDir out("smoke");
  auto r = run_cifar10({"--model-type", "cnn", "--epochs", "1", "--data-dir", testing::data_root().string(),
                        "--output-dir", out.path().string(), "--train-limit", "5000", "--validation-size", "500",
                        "--test-limit", "1000", "--skip-visualization"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto summary = read_json(out / "results/training_summary.json");
  EXPECT_GE(summary["test"]["accuracy"].get<double>(), 0.35) << r.output;
  EXPECT_EQ(summary["test"]["num_samples"].get<int>(), 1000);
  EXPECT_EQ(summary["epochs_run"].get<int>(), 1);
  EXPECT_EQ(summary["stop_reason"], "completed: epoch 1 of 1");
  for (const char* f : {"checkpoints/best_model.pt", "checkpoints/latest_model.pt", "results/config.json",
                        "results/training_history.json", "results/inference_results.json"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  bool csv = false;
  for (const auto& e : fs::directory_iterator(out / "logs")) csv |= e.path().filename().string().rfind("training_log_", 0) == 0;
  EXPECT_TRUE(csv);
  EXPECT_NE(r.output.find("Test accuracy:"), std::string::npos);
}

TEST(Train, ResumeContinuesBitExactly) {
  TempDir straight("straight"), split("split");
  auto a = run_cifar10(tiny_run(straight.path(), {"--epochs", "4", "--plateau-patience", "1", "--skip-inference"}));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b1 = run_cifar10(tiny_run(split.path(), {"--epochs", "2", "--plateau-patience", "1", "--skip-inference"}));
  ASSERT_EQ(b1.exit_code, 0) << b1.output;
  auto b2 = run_cifar10(tiny_run(split.path(), {"--epochs", "4", "--plateau-patience", "1", "--skip-inference",
                                                "--resume", (split / "checkpoints/latest_model.pt").string()}));
  ASSERT_EQ(b2.exit_code, 0) << b2.output;
  EXPECT_NE(b2.output.find("Resuming from"), std::string::npos);
  expect_bit_identical(straight / "checkpoints/latest_model.pt", split / "checkpoints/latest_model.pt");
  // The history of the resumed run holds all four epochs, equal to the straight run's.
  EXPECT_EQ(read_json(straight / "results/training_history.json"), read_json(split / "results/training_history.json"));
}

// A run sent `sig` in its second epoch finishes the
// step, writes latest_model.pt and its outputs, exits 128 + sig, and resumes
// from the checkpoint to the uninterrupted run's weights bit for bit.
void expect_signal_stops_and_resumes_exactly(int sig) {
  TempDir straight("straight"), cut("cut");
  const std::vector<std::string> common{"--epochs", "2", "--lr-schedule", "cosine", "--train-limit", "1024",
                                        "--batch-size", "32", "--skip-inference"};
  auto a = run_cifar10(tiny_run(straight.path(), common));
  ASSERT_EQ(a.exit_code, 0) << a.output;

  Child run(tiny_run(cut.path(), common));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/2", 300)) << run.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a few steps into epoch 2 of 32 steps
  run.send(sig);
  auto r = run.wait(300);
  ASSERT_EQ(r.exit_code, 128 + sig) << r.output;
  EXPECT_EQ(r.signal, 0) << "exited, not killed by the signal:\n" << r.output;
  EXPECT_NE(r.output.find("interrupted by " + signal_name(sig)), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("second signal"), std::string::npos) << r.output;
  const auto latest = cut / "checkpoints/latest_model.pt";
  auto meta = read_checkpoint(latest.string()).meta;
  EXPECT_GT(meta["step_in_epoch"].get<int>() + meta["epoch"].get<int>(), 1) << meta.dump();
  EXPECT_TRUE(fs::exists(cut / "results/training_summary.json"));

  auto resumed = run_cifar10(tiny_run(cut.path(), [&] {
    auto v = common;
    v.insert(v.end(), {"--resume", latest.string()});
    return v;
  }()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_bit_identical(straight / "checkpoints/latest_model.pt", latest);
}

TEST(Train, SigtermFinishesTheStepSavesAndResumesExactly) { expect_signal_stops_and_resumes_exactly(SIGTERM); }

// A closed terminal or a dropped SSH session sends SIGHUP, at times twice
// (the shell forwards its own to the job, and the kernel signals the
// foreground group when the shell exits). It stops the run as SIGTERM
// does, exit 128 + 1, with the same checkpoint mid-epoch; the resume from
// it is SIGTERM's, tested above.
TEST(Train, SighupStopsAsSigtermDoes) {
  TempDir cut("hup");
  Child run(tiny_run(cut.path(), {"--epochs", "3", "--train-limit", "1024", "--batch-size", "32", "--skip-inference"}));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/3", 300)) << run.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into epoch 2
  run.send(SIGHUP);
  run.send(SIGHUP);
  auto r = run.wait(300);
  ASSERT_EQ(r.exit_code, 128 + SIGHUP) << r.output;
  EXPECT_EQ(r.signal, 0) << "exited, not killed by the signal:\n" << r.output;
  EXPECT_NE(r.output.find("interrupted by SIGHUP"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("second signal"), std::string::npos) << r.output;
  const auto meta = read_checkpoint((cut / "checkpoints/latest_model.pt").string()).meta;
  EXPECT_GT(meta["step_in_epoch"].get<int>() + meta["epoch"].get<int>(), 1) << meta.dump();
  EXPECT_TRUE(fs::exists(cut / "results/training_summary.json"));
}

// The lookahead's slow weights live in the checkpoint beside the model,
// and the alternating flips follow from the seed and epoch: a run stopped
// mid-epoch with both resumes to the uninterrupted run's weights.
TEST(Train, LookaheadAndAlternatingFlipResumeExactly) {
  TempDir straight("look_straight"), cut("look_cut");
  const std::vector<std::string> common{"--epochs", "2", "--train-limit", "512", "--batch-size", "32",
                                        "--lookahead", "--alternating-flip", "--skip-inference"};
  auto a = run_cifar10(tiny_run(straight.path(), common));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  Child run(tiny_run(cut.path(), common));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/2", 300)) << run.output();
  run.send(SIGTERM);
  ASSERT_EQ(run.wait(300).exit_code, 143);
  const auto latest = cut / "checkpoints/latest_model.pt";
  const auto meta = read_checkpoint(latest.string()).meta;
  ASSERT_GT(meta.at("step_in_epoch").get<int>(), 0) << "the stop should land inside epoch 2: " << meta.dump();
  ASSERT_TRUE(meta.contains("tensors")) << meta.dump();
  auto resumed = run_cifar10(tiny_run(cut.path(), [&] {
    auto v = common;
    v.insert(v.end(), {"--resume", latest.string()});
    return v;
  }()));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_bit_identical(straight / "checkpoints/latest_model.pt", latest);
}

// With one step per epoch every stop lands on an epoch's last step: the
// checkpoint holds that epoch with its steps done and its end (validation,
// logs, callbacks) still to run, which the resumed run runs, so it equals
// the straight one, history included: an end skipped would leave the
// epoch unvalidated and unlogged, and ReduceLROnPlateau would drift.
TEST(Train, SigtermOnAnEpochsLastStepKeepsThatEpochsEndForTheResume) {
  TempDir straight("straight"), cut("cut");
  const std::vector<std::string> common{"--train-limit", "256", "--batch-size", "256", "--validation-size", "64",
                                        "--plateau-patience", "1", "--skip-inference"};
  auto with = [&](std::vector<std::string> extra) {
    auto v = common;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  Child run(tiny_run(cut.path(), with({"--epochs", "40"})));
  ASSERT_TRUE(run.wait_for_output("Epoch 2/40", 300)) << run.output();
  run.send(SIGTERM);
  auto r = run.wait(300);
  ASSERT_EQ(r.exit_code, 143) << r.output;
  const auto latest = cut / "checkpoints/latest_model.pt";
  const auto meta = read_checkpoint(latest.string()).meta;
  // The signal lands in the step or in an epoch's end; either way the
  // checkpoint's epoch is one whose end has not run.
  const int epoch = meta["epoch"].get<int>();
  const int done = static_cast<int>(read_json(cut / "results/training_history.json").size());
  EXPECT_EQ(epoch, done) << meta.dump();
  EXPECT_EQ(meta["step_in_epoch"].get<int>(), 1) << meta.dump();
  ASSERT_LT(done, 39) << r.output;

  const std::string epochs = std::to_string(done + 2);
  auto a = run_cifar10(tiny_run(straight.path(), with({"--epochs", epochs})));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto resumed = run_cifar10(tiny_run(cut.path(), with({"--epochs", epochs, "--resume", latest.string()})));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_bit_identical(straight / "checkpoints/latest_model.pt", latest);
  EXPECT_EQ(read_json(straight / "results/training_history.json"), read_json(cut / "results/training_history.json"));
}

// SLURM's `--signal=USR1@T` warns a job before its time limit: SIGUSR1
// stops the run as SIGTERM does, with a checkpoint.
TEST(Train, Sigusr1StopsWithACheckpointAsSigtermDoes) {
  TempDir out("usr1");
  Child run(tiny_run(out.path(), {"--epochs", "50", "--skip-inference"}));
  ASSERT_TRUE(run.wait_for_output("Epoch 1/50", 300)) << run.output();
  run.send(SIGUSR1);
  auto r = run.wait(300);
  EXPECT_EQ(r.exit_code, 128 + SIGUSR1) << r.output;
  EXPECT_NE(r.output.find("interrupted by SIGUSR1"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out / "checkpoints/latest_model.pt"));
}

// `nohup cifar10 ...` ignores SIGHUP so that the run outlives the
// terminal: the ignored disposition is kept, and the run finishes.
TEST(Train, SighupUnderNohupIsStillIgnored) {
  TempDir out("nohup");
  const fs::path log = out / "log";
  testing::write_bytes(log, "");
  std::string bin = testing::cifar10_binary();
  std::vector<std::string> args = tiny_run(out / "run", {"--epochs", "2", "--skip-inference"});
  std::vector<char*> argv{bin.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGHUP, SIG_IGN);  // what nohup does before exec
    const int fd = ::open(log.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (read_file(log).find("Epoch 1/2") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGHUP);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string output = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(read_json(out / "run/results/training_history.json").size(), 2u) << output;
}

// A learning rate that makes the loss NaN within a few steps (the highest
// the flags allow, on the MLP, which has no batch norm to absorb it): the
// run stops at the first reading of the loss, exits 1 with the reason on
// stderr, and saves no checkpoint of the broken weights.
TEST(Train, DivergedLossStopsTheRunWithExitOneAndNoCheckpoint) {
  TempDir out("nan");
  auto r = run_cifar10(
      tiny_run(out.path(), {"--epochs", "3", "--model-type", "mlp", "--optimizer", "sgd", "--learning-rate", "100"}));
  ASSERT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: training stopped: loss became"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "checkpoints/latest_model.pt"));
  EXPECT_FALSE(fs::exists(out / "checkpoints/best_model.pt"));
  EXPECT_EQ(read_json(out / "results/training_summary.json")["epochs_run"].get<int>(), 0) << r.output;
}

// The quickstart's settings (fast net, bf16 autocast where the CPU has it,
// channels-last, TTA) on a slice: the same seed gives the same weights and
// the same test figures to the last digit; another seed does not.
TEST(Train, QuickPresetIsDeterministicForASeed) {
  TempDir a("quick_a"), b("quick_b"), c("quick_c");
  auto quick = [](const fs::path& out, const std::string& seed) {
    return repeatable({"--preset", "quick", "--epochs", "1", "--train-limit", "1024", "--validation-size", "256",
                       "--test-limit", "500", "--data-dir", testing::data_root().string(), "--output-dir",
                       out.string(), "--skip-visualization", "--seed", seed});
  };
  for (const auto& [dir, seed] : {std::pair{&a, "3"}, std::pair{&b, "3"}, std::pair{&c, "4"}}) {
    auto r = run_cifar10(quick(dir->path(), seed));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  expect_bit_identical(a / "checkpoints/latest_model.pt", b / "checkpoints/latest_model.pt");
  auto test_a = read_json(a / "results/training_summary.json")["test"];
  EXPECT_EQ(test_a, read_json(b / "results/training_summary.json")["test"]);
  EXPECT_NE(test_a["loss"], read_json(c / "results/training_summary.json")["test"]["loss"]);
}

// bf16 follows what oneDNN may use, not only the CPU's flags: held to AVX2
// (a laptop's kernels) the quick preset stays in float32 and says so, where
// bf16 would run on oneDNN's reference kernels, many times slower.
TEST(Train, MixedPrecisionStaysFloat32WhereOneDnnHasNoBf16) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  const std::string info((std::istreambuf_iterator<char>(cpuinfo)), std::istreambuf_iterator<char>());
  const bool cpu_bf16 = info.find(" avx512_bf16") != std::string::npos || info.find(" amx_bf16") != std::string::npos;
  // ALL, not unset: the suite itself may run under a cap (scripts/test.sh's
  // rerun, or a user's ONEDNN_MAX_CPU_ISA=AVX2 scripts/test.sh).
  for (const std::string isa : {"ALL", "AVX2"}) {
    SCOPED_TRACE("ONEDNN_MAX_CPU_ISA=" + isa);
    TempDir out("bf16");
    auto r = run_cifar10({"--preset", "quick", "--device", "cpu", "--epochs", "1", "--train-limit", "256",
                          "--validation-size", "0", "--monitor", "accuracy", "--skip-inference",
                          "--skip-visualization", "--data-dir", testing::data_root().string(), "--output-dir",
                          out.path().string()},
                         300, {"ONEDNN_MAX_CPU_ISA=" + isa});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const bool bf16 = cpu_bf16 && isa == "ALL";
    EXPECT_EQ(r.output.find("bf16 autocast") != std::string::npos, bf16) << r.output;
    EXPECT_EQ(r.output.find("training stays in float32") != std::string::npos, !bf16) << r.output;
  }
}

// --deterministic: two runs with one seed give the same weights and test
// figures. On a GPU this is what proves every op the models use has a
// deterministic CUDA kernel (LibTorch refuses one that has none) and that
// cuBLAS got its fixed workspace; there every model family runs, here the
// quick preset.
TEST(Train, DeterministicFlagRepeatsRunsBitExactly) {
  std::vector<std::pair<std::string, std::vector<std::string>>> runs{{"cpu", {"--preset", "quick"}}};
  if (torch::cuda::is_available()) {
    for (const auto& model : {std::vector<std::string>{"--preset", "quick"},
                              std::vector<std::string>{"--model-type", "resnet", "--depth", "20"},
                              std::vector<std::string>{"--model-type", "efficientnet", "--pretrained-weights", "none"},
                              std::vector<std::string>{"--model-type", "cnn"}}) {
      runs.emplace_back("cuda", model);
    }
  }
  for (const auto& [device, model] : runs) {
    SCOPED_TRACE(device + " " + model[1]);
    TempDir a("det_a"), b("det_b");
    for (const TempDir* dir : {&a, &b}) {
      auto flags = model;
      flags.insert(flags.end(), {"--deterministic", "--device", device, "--epochs", "1", "--train-limit", "512",
                                 "--validation-size", "128", "--test-limit", "200", "--seed", "5", "--data-dir",
                                 testing::data_root().string(), "--output-dir", dir->path().string(),
                                 "--skip-visualization"});
      auto r = run_cifar10(flags);
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    expect_bit_identical(a / "checkpoints/latest_model.pt", b / "checkpoints/latest_model.pt");
    EXPECT_EQ(read_json(a / "results/training_summary.json")["test"],
              read_json(b / "results/training_summary.json")["test"]);
  }
}

TEST(Train, SkipTrainingEvaluatesASavedModel) {
  TempDir out("eval");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "1"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double trained = read_json(out / "results/inference_results.json")["accuracy"].get<double>();
  TempDir again("eval2");
  // No model flags: the checkpoint describes its model.
  auto e = run_cifar10({"--skip-training", "--load-model", (out / "checkpoints/best_model.pt").string(), "--data-dir",
                        testing::data_root().string(), "--output-dir", again.path().string(), "--test-limit", "200",
                        "--skip-visualization"});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  auto results = read_json(again / "results/inference_results.json");
  EXPECT_DOUBLE_EQ(results["accuracy"].get<double>(), trained);
  EXPECT_EQ(results["model"]["type"], "cnn");
  // The settings printed are of the model used, not the flags' default resnet.
  EXPECT_NE(e.output.find("--model-type cnn"), std::string::npos) << e.output;
  EXPECT_EQ(read_json(again / "results/config.json")["model-type"], "cnn");

  // An evaluation needs only the test batch and the class names.
  TempDir test_only("test_only");
  for (const char* name : {"test_batch.bin", "batches.meta.txt"}) {
    fs::create_directories(test_only / "data/cifar-10-batches-bin");
    fs::create_symlink(testing::batches_dir() / name, test_only / "data/cifar-10-batches-bin" / name);
  }
  auto lean = run_cifar10({"--skip-training", "--load-model", (out / "checkpoints/best_model.pt").string(),
                           "--data-dir", (test_only / "data").string(), "--output-dir", test_only.path().string(),
                           "--test-limit", "200", "--skip-visualization"});
  ASSERT_EQ(lean.exit_code, 0) << lean.output;
  EXPECT_NE(lean.output.find("Data: 200 test images from "), std::string::npos) << lean.output;
  EXPECT_DOUBLE_EQ(read_json(test_only / "results/inference_results.json")["accuracy"].get<double>(), trained);

  // A --resume checkpoint evaluated without training: its weights, not the
  // seed's fresh ones.
  TempDir third("eval3");
  auto resumed = run_cifar10({"--skip-training", "--resume", (out / "checkpoints/best_model.pt").string(),
                              "--data-dir", testing::data_root().string(), "--output-dir", third.path().string(),
                              "--test-limit", "200", "--skip-visualization"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_DOUBLE_EQ(read_json(third / "results/inference_results.json")["accuracy"].get<double>(), trained);

  // The README's `--skip-training --load-model checkpoints/best_model.pt`
  // in the run's folder: the run's configuration and training record stay,
  // the record's test figures are the new evaluation's.
  const std::string config = read_file(out / "results/config.json");
  const auto before = read_json(out / "results/training_summary.json");
  auto in_run = run_cifar10({"--skip-training", "--load-model", "checkpoints/best_model.pt", "--data-dir",
                             testing::data_root().string(), "--test-limit", "100"},
                            600, {}, out.path());
  ASSERT_EQ(in_run.exit_code, 0) << in_run.output;
  EXPECT_EQ(read_file(out / "results/config.json"), config);
  // The report's configuration is the run's too, not the evaluation's.
  const std::string report = read_file(out / "results/report.html");
  EXPECT_NE(report.find("<tr><th>train-limit</th><td>512</td></tr>"), std::string::npos);
  EXPECT_EQ(report.find("<tr><th>skip-training</th><td>true</td></tr>"), std::string::npos);
  auto after = read_json(out / "results/training_summary.json");
  EXPECT_EQ(after["test"]["num_samples"], 100);
  EXPECT_EQ(after["test"]["checkpoint"], "checkpoints/best_model.pt");
  EXPECT_EQ(read_json(out / "results/inference_results.json")["num_samples"], 100);
  for (const char* key : {"history", "epochs_run", "stop_reason", "wall_seconds", "best_epoch"}) {
    EXPECT_EQ(after[key], before[key]) << key;
  }
  // Another run's checkpoint evaluated there would replace the record: refused, nothing written.
  const std::string summary_text = read_file(out / "results/training_summary.json");
  auto foreign = run_cifar10({"--skip-training", "--load-model", (out / "checkpoints/best_model.pt").string(),
                              "--data-dir", testing::data_root().string(), "--output-dir", again.path().string(),
                              "--test-limit", "100", "--skip-visualization"});
  EXPECT_EQ(foreign.exit_code, 0) << "again/ holds an evaluation, not a training run: " << foreign.output;
  fs::copy_file(out / "checkpoints/best_model.pt", again / "copy.pt");
  auto refused = run_cifar10({"--skip-training", "--load-model", (again / "copy.pt").string(), "--data-dir",
                              testing::data_root().string(), "--output-dir", out.path().string()});
  EXPECT_NE(single_error_line(refused).find("holds the results of a training run"), std::string::npos)
      << refused.output;
  EXPECT_EQ(read_file(out / "results/training_summary.json"), summary_text);
  // A damaged summary leaves the history file to say this is a run: its
  // configuration stays, and another run's checkpoint is still refused.
  testing::write_bytes(out / "results/training_summary.json", "garbage");
  auto damaged = run_cifar10({"--skip-training", "--load-model", (out / "checkpoints/best_model.pt").string(),
                              "--data-dir", testing::data_root().string(), "--output-dir", out.path().string(),
                              "--test-limit", "100", "--skip-visualization"});
  EXPECT_EQ(damaged.exit_code, 0) << damaged.output;
  EXPECT_EQ(read_file(out / "results/config.json"), config);
  auto refused_too = run_cifar10({"--skip-training", "--load-model", (again / "copy.pt").string(), "--data-dir",
                                  testing::data_root().string(), "--output-dir", out.path().string()});
  EXPECT_NE(single_error_line(refused_too).find("holds the results of a training run"), std::string::npos)
      << refused_too.output;

  // --summary describes the checkpoint's model and trains nothing.
  TempDir fourth("summary");
  auto summary = run_cifar10({"--summary", "--load-model", (out / "checkpoints/best_model.pt").string(),
                              "--output-dir", fourth.path().string()});
  ASSERT_EQ(summary.exit_code, 0) << summary.output;
  EXPECT_NE(summary.output.find("Model: cnn"), std::string::npos) << summary.output;
  EXPECT_FALSE(fs::exists(fourth / "checkpoints"));
}

// Training writes best_model.pt from its first epoch, so starting from that
// very file would replace it; a missing --load-model is named before the
// data is read, and the folder's previous record (config.json) stays.
TEST(Train, LoadModelIsCheckedFirstAndNeverOverwritten) {
  TempDir out("own");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  const auto best = out / "checkpoints/best_model.pt";
  const std::string bytes = read_file(best), config = read_file(out / "results/config.json");
  auto own = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--load-model", best.string()}));
  EXPECT_NE(single_error_line(own).find("training would replace it"), std::string::npos) << own.output;
  EXPECT_EQ(read_file(best), bytes);
  auto missing = run_cifar10(tiny_run(out.path(), {"--epochs", "3", "--load-model", (out / "none.pt").string()}));
  EXPECT_NE(single_error_line(missing).find("none.pt"), std::string::npos) << missing.output;
  EXPECT_EQ(missing.output.find("Data:"), std::string::npos) << missing.output;
  EXPECT_EQ(read_file(out / "results/config.json"), config);
}

// The MLP (no batch norm) at a learning rate too small to change its
// validation accuracy: early stopping ends the run after epoch 2. A resume
// of that run (as a requeue script always passes --resume) trains nothing
// more, unless a longer patience allows it; another --monitor is refused,
// since the saved best values belong to the first one.
TEST(Train, ResumingAnEarlyStoppedRunKeepsItStopped) {
  TempDir out("stopped");
  const std::vector<std::string> flags{"--model-type", "mlp", "--optimizer", "sgd", "--learning-rate", "1e-12",
                                       "--monitor", "val_accuracy", "--early-stopping-patience", "1",
                                       "--skip-inference", "--epochs", "6"};
  auto with = [&](std::vector<std::string> extra) {
    auto v = flags;
    v.insert(v.end(), extra.begin(), extra.end());
    return tiny_run(out.path(), v);
  };
  auto first = run_cifar10(with({}));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_EQ(read_json(out / "results/training_history.json").size(), 2u) << first.output;
  const auto latest = (out / "checkpoints/latest_model.pt").string();

  auto again = run_cifar10(with({"--resume", latest}));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("had already stopped at epoch 2"), std::string::npos) << again.output;
  EXPECT_EQ(read_json(out / "results/training_history.json").size(), 2u);

  auto other = run_cifar10(with({"--resume", latest, "--monitor", "val_loss"}));
  EXPECT_NE(single_error_line(other).find("--monitor val_accuracy, not val_loss"), std::string::npos) << other.output;
  auto seed = run_cifar10(with({"--resume", latest, "--seed", "8"}));
  EXPECT_NE(single_error_line(seed).find("--seed 7, not 8"), std::string::npos) << seed.output;

  auto longer = run_cifar10(with({"--resume", latest, "--early-stopping-patience", "2"}));
  ASSERT_EQ(longer.exit_code, 0) << longer.output;
  EXPECT_EQ(read_json(out / "results/training_history.json").size(), 3u) << longer.output;
}

// The README's one-liner: `--resume checkpoints/latest_model.pt` with only
// the data folder continues the run with its own settings, in its own
// folder (here from inside checkpoints/, where the path has no folder part),
// exactly as if it had not stopped; a setting typed differently is still
// refused, --batch-size among them (the saved step would point at other
// images), before the run's record is touched; an evaluation of the
// checkpoint (--skip-training) writes where it runs, not into the run.
TEST(Train, ResumeTakesTheRunsSettingsFromTheCheckpoint) {
  TempDir out("own"), straight("straight"), elsewhere("elsewhere");
  const std::vector<std::string> lr = {"--learning-rate", "0.003", "--skip-inference"};
  auto first = tiny_run(out.path(), {"--epochs", "1"});
  first.insert(first.end(), lr.begin(), lr.end());
  ASSERT_EQ(run_cifar10(first).exit_code, 0);
  const auto latest = (out / "checkpoints/latest_model.pt").string();
  auto r = run_cifar10({"--resume", "latest_model.pt", "--epochs", "2", "--data-dir", testing::data_root().string(),
                        "--skip-inference"},
                       600, {}, out / "checkpoints");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out / "checkpoints/checkpoints"));
  EXPECT_EQ(read_json(out / "results/training_history.json").size(), 2u) << r.output;
  const auto config = read_json(out / "results/config.json");
  EXPECT_EQ(config["model-type"], "cnn");
  EXPECT_EQ(config["seed"], 7);
  EXPECT_EQ(config["learning-rate"], 0.003);
  EXPECT_EQ(config["train-limit"], 512);
  EXPECT_EQ(config["epochs"], 2);
  EXPECT_EQ(config["output-dir"], out.path().string());

  auto whole = tiny_run(straight.path(), {"--epochs", "2"});
  whole.insert(whole.end(), lr.begin(), lr.end());
  ASSERT_EQ(run_cifar10(whole).exit_code, 0);
  expect_bit_identical(out / "checkpoints/latest_model.pt", straight / "checkpoints/latest_model.pt");

  // A typed flag's bad value is the user's, not the checkpoint's; the
  // model (dropout included) is the checkpoint's, so another is refused.
  auto negative = run_cifar10({"--resume", latest, "--epochs", "-1", "--data-dir", testing::data_root().string()});
  EXPECT_EQ(single_error_line(negative).rfind("error: invalid --epochs -1", 0), 0u) << negative.output;
  auto preset = run_cifar10({"--resume", latest, "--preset", "quick", "--data-dir", testing::data_root().string()});
  EXPECT_NE(single_error_line(preset).find("continues a run made with no --preset"), std::string::npos)
      << preset.output;
  auto dropout = run_cifar10({"--resume", latest, "--dropout-rate", "0.1", "--data-dir", testing::data_root().string()});
  EXPECT_NE(single_error_line(dropout).find("--dropout-rate 0.3, not 0.1"), std::string::npos) << dropout.output;
  // A link to the checkpoint is the run's checkpoint: the run, finished,
  // says so in its own folder, and nothing lands where the link is.
  fs::create_symlink(latest, elsewhere / "link.pt");
  auto linked = run_cifar10({"--resume", "link.pt", "--data-dir", testing::data_root().string(), "--skip-inference"},
                            600, {}, elsewhere.path());
  ASSERT_EQ(linked.exit_code, 0) << linked.output;
  EXPECT_NE(linked.output.find("nothing left to train"), std::string::npos) << linked.output;
  EXPECT_FALSE(fs::exists(elsewhere / "results")) << linked.output;

  const std::string record = read_file(out / "results/config.json");
  auto batch = run_cifar10({"--resume", latest, "--epochs", "3", "--batch-size", "32", "--data-dir",
                            testing::data_root().string()});
  EXPECT_NE(single_error_line(batch).find("--batch-size 64, not 32"), std::string::npos) << batch.output;
  EXPECT_EQ(read_file(out / "results/config.json"), record);

  const std::string summary = read_file(out / "results/training_summary.json");
  auto eval = run_cifar10({"--skip-training", "--resume", latest, "--data-dir", testing::data_root().string(),
                           "--skip-visualization"},
                          600, {}, elsewhere.path());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(fs::exists(elsewhere / "results/inference_results.json"));
  EXPECT_EQ(read_file(out / "results/training_summary.json"), summary);
}

// A run started from --load-model saved the default model flags (none were
// given); resumed with only --resume it is the checkpoint's model that
// continues, not the flags' resnet.
TEST(Train, ARunStartedFromLoadModelResumesWithOnlyResume) {
  TempDir base("base"), tuned("tuned");
  ASSERT_EQ(run_cifar10(tiny_run(base.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  const std::string data = testing::data_root().string();
  auto start = run_cifar10({"--load-model", (base / "checkpoints/best_model.pt").string(), "--epochs", "1",
                            "--data-dir", data, "--output-dir", tuned.path().string(), "--train-limit", "512",
                            "--validation-size", "256", "--batch-size", "64", "--skip-inference",
                            "--skip-visualization"});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  auto r = run_cifar10({"--resume", (tuned / "checkpoints/latest_model.pt").string(), "--epochs", "2", "--data-dir",
                        data, "--skip-inference", "--skip-visualization"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(tuned / "results/training_history.json").size(), 2u);
  EXPECT_EQ(read_json(tuned / "results/config.json")["model-type"], "cnn");
}

// A run started as resnet20 resumes with `--model-type resnet`: the family
// given, the depth is the checkpoint's (it was refused as "resnet depth 18").
TEST(Train, AResNetResumesWithItsFamilyName) {
  TempDir out("r20");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--model-type", "resnet20", "--epochs", "1", "--skip-inference"}))
                .exit_code,
            0);
  auto r = run_cifar10(tiny_run(out.path(), {"--model-type", "resnet", "--epochs", "2", "--skip-inference",
                                             "--resume", (out / "checkpoints/latest_model.pt").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(out / "results/config.json")["depth"], 20);
}

// The fast net's default width is 64, whether given as 0 or as 64: a
// resume that spells it out was refused as "width 0" against "width 64".
TEST(Train, FastNetResumesWithItsDefaultWidthSpelledOut) {
  TempDir out("fastw");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--model-type", "fast", "--epochs", "1", "--skip-inference"})).exit_code,
            0);
  auto r = run_cifar10(tiny_run(out.path(), {"--model-type", "fast", "--width", "64", "--epochs", "2",
                                             "--skip-inference", "--resume",
                                             (out / "checkpoints/latest_model.pt").string()}));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// A resume into a new --output-dir brings the run's best checkpoint along,
// so restoring the best weights at the end finds them there, and its CSV
// log, so the new folder's log has every epoch.
TEST(Train, ResumeIntoAnotherFolderCarriesTheBestCheckpoint) {
  TempDir first("first"), second("second");
  ASSERT_EQ(run_cifar10(tiny_run(first.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  // Another run's leftover is replaced, not restored as this run's best.
  testing::write_bytes(second / "checkpoints/best_model.pt", "another run's checkpoint");
  auto r = run_cifar10(tiny_run(second.path(), {"--epochs", "2", "--resume",
                                                (first / "checkpoints/latest_model.pt").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Copied the run's best checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(read_file(second / "checkpoints/best_model.pt"), "another run's checkpoint");
  EXPECT_NE(r.output.find("Restoring model weights"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(second / "results/inference_results.json"));
  // And its CSV log, which then holds both epochs, as the history does.
  EXPECT_NE(r.output.find("Copied the run's CSV log"), std::string::npos) << r.output;
  std::vector<fs::path> logs;
  for (const auto& e : fs::directory_iterator(second / "logs")) {
    if (e.path().extension() == ".csv") logs.push_back(e.path());
  }
  ASSERT_EQ(logs.size(), 1u);
  std::istringstream csv(read_file(logs[0]));
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line.substr(0, line.find(',')));
  EXPECT_EQ(lines, (std::vector<std::string>{"epoch", "0", "1"})) << read_file(logs[0]);
  // And its TensorBoard runs: the first run's event file beside this one's.
  EXPECT_NE(r.output.find("Copied the run's TensorBoard logs"), std::string::npos) << r.output;
  EXPECT_EQ(list_event_files(second / "logs/tensorboard/train").size(), 2u) << r.output;
}

// Steps of one image cannot train a batch-norm model (every part was left
// out, and the run reported a loss of 0): refused before training.
TEST(Train, StepsOfOneImageForABatchNormModelAreRefused) {
  TempDir out("one_image");
  auto batch = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--batch-size", "1"}));
  EXPECT_NE(single_error_line(batch).find("a training step of 1 image leaves a rank one image or none, which the "
                                          "model's batch norm cannot normalise (hint: use --batch-size 2 or more)"),
            std::string::npos)
      << batch.output;
  auto limit = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--train-limit", "1"}));
  EXPECT_NE(single_error_line(limit).find("--batch-size 2 or more and a larger --train-limit)"), std::string::npos)
      << limit.output;
  EXPECT_FALSE(fs::exists(out / "checkpoints/latest_model.pt"));
}

// A checkpoints/ folder the user cannot write to is refused before the
// data is read, not when the first epoch's checkpoint is written.
TEST(Train, AReadOnlyCheckpointsFolderIsRefusedBeforeTraining) {
  TempDir out("ro");
  using fs::perms;
  const perms read_only = perms::owner_read | perms::owner_exec | perms::group_read | perms::group_exec |
                          perms::others_read | perms::others_exec;
  fs::create_directories(out / "checkpoints");
  fs::permissions(out / "checkpoints", read_only);
  fs::permissions(out.path(), read_only | perms::owner_write);
  std::string command;
  for (const auto& arg : tiny_run(out.path(), {"--epochs", "1"})) command += " '" + arg + "'";
  command = testing::cifar10_binary() + command + " > '" + (out / "log").string() + "' 2>&1";
  // Root writes anywhere: the run goes as nobody, who owns nothing here.
  if (::geteuid() == 0) command = "setpriv --reuid=65534 --regid=65534 --clear-groups " + command;
  const int status = std::system(command.c_str());
  fs::permissions(out / "checkpoints", perms::owner_all);
  const std::string output = read_file(out / "log");
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
  EXPECT_NE(output.find("error: cannot write into folder " + (out / "checkpoints").string()), std::string::npos)
      << output;
  EXPECT_EQ(output.find("Data:"), std::string::npos) << output;
}

// A run whose checkpoints/ is a link to scratch storage is still the run
// holding the link: evaluated in place (it was refused as another run's).
TEST(Train, ARunWhoseCheckpointsFolderIsALinkIsStillThatRun) {
  TempDir out("linked_run"), scratch("scratch");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  fs::rename(out / "checkpoints", scratch / "checkpoints");
  fs::create_directory_symlink(scratch / "checkpoints", out / "checkpoints");
  const std::string config = read_file(out / "results/config.json");
  auto r = run_cifar10({"--skip-training", "--load-model", "checkpoints/best_model.pt", "--data-dir",
                        testing::data_root().string(), "--test-limit", "100", "--skip-visualization"},
                       600, {}, out.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(out / "results/config.json"), config);
  EXPECT_FALSE(fs::exists(scratch / "results"));
}

// An evaluation writes results/ only: a run whose checkpoints/ (and logs/)
// the user cannot write is still evaluated in place, from a data folder
// holding just the test batch.
TEST(Train, ARunWithReadOnlyCheckpointsIsStillEvaluatedInPlace) {
  TempDir out("ro_eval");
  ASSERT_EQ(run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--skip-inference"})).exit_code, 0);
  const fs::path data = out / "data/cifar-10-batches-bin";
  fs::create_directories(data);
  for (const char* name : {"test_batch.bin", "batches.meta.txt"}) fs::copy_file(testing::batches_dir() / name, data / name);
  using fs::perms;
  fs::permissions(out.path(), perms::owner_all | perms::group_read | perms::group_exec | perms::others_read |
                                  perms::others_exec);
  fs::permissions(out / "checkpoints", perms::owner_read | perms::owner_exec | perms::group_read |
                                           perms::group_exec | perms::others_read | perms::others_exec);
  std::string command = testing::cifar10_binary();
  for (const std::string& arg : std::vector<std::string>{"--skip-training", "--load-model", (out / "checkpoints/best_model.pt").string(),
                                "--data-dir", (out / "data").string(), "--output-dir", out.path().string(),
                                "--test-limit", "100", "--skip-visualization"}) {
    command += " '" + arg + "'";
  }
  command += " > '" + (out / "log").string() + "' 2>&1";
  // Root writes anywhere: the evaluation runs as nobody, who may write
  // results/ only.
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((out / "results").c_str(), 65534, 65534), 0);
    command = "setpriv --reuid=65534 --regid=65534 --clear-groups " + command;
  }
  const int status = std::system(command.c_str());
  fs::permissions(out / "checkpoints", perms::owner_all);
  const std::string output = read_file(out / "log");
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(read_json(out / "results/inference_results.json")["num_samples"], 100) << output;
}

// 513 images in batches of 64: the last batch holds one image, which the
// cnn's batch norm cannot normalise; it is left out with a note, not a crash.
TEST(Train, ALastBatchOfOneImageIsLeftOutWithANote) {
  TempDir out("one");
  auto r = run_cifar10(tiny_run(out.path(), {"--epochs", "1", "--train-limit", "513", "--skip-inference"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("left out a batch part of one image"), std::string::npos) << r.output;
}

// Plots are extras: a gnuplot that fails costs its plots (warnings), not
// the run's exit status or the report.
TEST(Train, AFailingGnuplotCostsOnlyThePlots) {
  TempDir out("gp");
  testing::write_bytes(out / "bin/gnuplot", "#!/bin/sh\necho 'gnuplot: broken' >&2\nexit 1\n");
  fs::permissions(out / "bin/gnuplot", fs::perms::owner_all);
  auto args = tiny_run(out.path(), {"--epochs", "1"});
  args.erase(std::find(args.begin(), args.end(), "--skip-visualization"));
  auto r = run_cifar10(args, 600, {"PATH=" + (out / "bin").string() + ":/usr/bin:/bin"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: no training history plot"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out / "results/report.html"));
  EXPECT_TRUE(fs::exists(out / "results/inference_results.json"));
}

TEST(Train, BadInputsStopWithOneLineAndExitTwo) {
  TempDir out("bad");
  EXPECT_NE(single_error_line(run_cifar10({"--model-type", "vgg"})).find("unknown --model-type 'vgg'"), std::string::npos);
  EXPECT_NE(single_error_line(run_cifar10({"--epochs", "-1"})).find("--epochs -1"), std::string::npos);
  EXPECT_NE(single_error_line(run_cifar10({"--batch-size", "0"})).find("--batch-size 0"), std::string::npos);
  // No data and a local archive that is not there: named, nothing downloaded.
  auto missing = run_cifar10({"--model-type", "cnn", "--data-dir", (out / "nodata").string(), "--data-archive",
                              (out / "none.tar.gz").string(), "--output-dir", out.path().string()});
  EXPECT_NE(single_error_line(missing).find("none.tar.gz"), std::string::npos);
  // A checkpoint that is not one.
  testing::write_bytes(out / "junk.pt", "definitely not a checkpoint");
  auto junk = run_cifar10({"--skip-training", "--load-model", (out / "junk.pt").string(), "--data-dir",
                           testing::data_root().string(), "--output-dir", out.path().string()});
  EXPECT_NE(single_error_line(junk).find("junk.pt"), std::string::npos);
}

}  // namespace
}  // namespace cifar
