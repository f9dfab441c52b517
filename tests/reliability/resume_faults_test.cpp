// Faults around a resume: a kill -9 while a resume into another folder
// copies the run's files over (best_model.pt, the CSV log, the TensorBoard
// runs), and TensorBoard files damaged between a kill and the resume. No
// file the user had may change, and running the resume again must work
// and bring the whole run along.
#include <signal.h>

#include <map>

#include "common/atomic_file.h"
#include "reliability_util.h"
#include "reporting/tensorboard.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::Child;
using testing::TempDir;

constexpr int kTimeout = 180;

// Every file under `dir` (its path relative to `dir`) and its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_file(e.path());
  }
  return files;
}

std::vector<fs::path> files_with(const fs::path& dir, const std::string& part) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(part) != std::string::npos) found.push_back(e.path());
  }
  return found;
}

int csv_rows(const fs::path& logs) {
  const auto csv = files_with(logs, ".csv");
  if (csv.size() != 1) return -1;
  const std::string text = read_file(csv[0]);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n')) - 1;  // less the header
}

// A 2-epoch run is resumed into another folder for a third epoch; the
// resume is held inside its copy of one of the run's files (temp file
// complete, not renamed) and killed there. The run's own folder is
// untouched, and the same resume, run again, carries everything over.
TEST(ResumeFaults, AKillWhileAResumeCopiesTheRunsFilesLosesNothing) {
  TempDir first("first");
  const auto r1 = testing::run_cifar10(testing::tiny_training(first.path(), 2), kTimeout);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  const auto before = snapshot(first.path());
  const std::string latest = (first / "checkpoints/latest_model.pt").string();
  for (const std::string held : {"checkpoints/best_model.pt", "logs/training_log_", "logs/tensorboard/validation"}) {
    TempDir second("second");
    const auto resume = testing::tiny_training(second.path(), 3, {"--resume", latest});
    Child run(resume, testing::hold_rename_env((second / held).string()));
    ASSERT_TRUE(run.wait_for_output("hold_rename: holding", kTimeout)) << held << "\n" << run.output();
    run.send(SIGKILL);
    run.wait(kTimeout);
    EXPECT_EQ(snapshot(first.path()), before) << held << ": the resumed run's files changed";

    const auto again = testing::run_cifar10(resume, kTimeout);
    ASSERT_EQ(again.exit_code, 0) << held << "\n" << again.output;
    EXPECT_NO_THROW(read_checkpoint((second / "checkpoints/best_model.pt").string())) << held;
    EXPECT_EQ(csv_rows(second / "logs"), 3) << held << ": the CSV log holds every epoch";
    for (const char* run_name : {"train", "validation"}) {
      // The first run's event file beside this run's own.
      EXPECT_EQ(list_event_files(second / "logs/tensorboard" / run_name).size(), 2u) << held << " " << run_name;
    }
    for (const char* dir : {"checkpoints", "logs", "logs/tensorboard/train", "logs/tensorboard/validation"}) {
      EXPECT_TRUE(testing::temp_files(second / dir).empty()) << held << ": a temporary file left in " << dir;
    }
    EXPECT_EQ(snapshot(first.path()), before) << held;
  }
}

// A run killed (-9) in its third epoch, its TensorBoard files then damaged
// as a kill inside a write or a failing disk leaves them: one cut in the
// middle of a record, one with a record's CRC flipped. The resume, in the
// same folder or into another, neither fails nor touches them; its own
// event files are whole.
TEST(ResumeFaults, DamagedTensorBoardFilesNeitherStopNorChangeWithAResume) {
  TempDir run_dir("tb");
  Child run(testing::tiny_training(run_dir.path(), 3), {});
  ASSERT_TRUE(run.wait_for_output("Epoch 2/3", kTimeout)) << run.output();
  run.send(SIGKILL);
  run.wait(kTimeout);
  const auto train = list_event_files(run_dir / "logs/tensorboard/train");
  const auto validation = list_event_files(run_dir / "logs/tensorboard/validation");
  ASSERT_EQ(train.size(), 1u);
  ASSERT_EQ(validation.size(), 1u);
  std::string cut = read_file(train[0]);
  cut.resize(cut.size() - 7);  // inside the last record
  testing::write_bytes(train[0], cut);
  std::string flipped = read_file(validation[0]);
  flipped.back() ^= 0x5a;  // the last record's data CRC
  testing::write_bytes(validation[0], flipped);
  EXPECT_ANY_THROW(read_tensorboard_events(train[0]));
  EXPECT_ANY_THROW(read_tensorboard_events(validation[0]));

  const std::string latest = (run_dir / "checkpoints/latest_model.pt").string();
  TempDir other("tb_other");
  for (const fs::path& out : {other.path(), run_dir.path()}) {
    const auto r = testing::run_cifar10(testing::tiny_training(out, 3, {"--resume", latest}), kTimeout);
    ASSERT_EQ(r.exit_code, 0) << out << "\n" << r.output;
    EXPECT_EQ(read_file(train[0]), cut);
    EXPECT_EQ(read_file(validation[0]), flipped);
    for (const char* name : {"train", "validation"}) {
      const auto files = list_event_files(out / "logs/tensorboard" / name);
      ASSERT_EQ(files.size(), 2u) << out << " " << name;
      // The damaged copy (another folder) or original, and this run's own.
      int whole = 0;
      for (const auto& f : files) {
        try {
          const auto events = read_tensorboard_events(f);
          EXPECT_FALSE(events.empty()) << f;
          ++whole;
        } catch (const std::exception&) {
          EXPECT_EQ(read_file(f), std::string(name) == "train" ? cut : flipped) << f;
        }
      }
      EXPECT_EQ(whole, 1) << out << " " << name;
    }
    EXPECT_EQ(csv_rows(out / "logs"), 3) << out;
  }
}

}  // namespace
}  // namespace cifar
