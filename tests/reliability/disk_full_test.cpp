// Running out of space while writing checkpoints and results. RLIMIT_FSIZE
// (ulimit -f) stands in for a full disk: with SIGXFSZ ignored, write()
// past the limit fails with EFBIG, as it fails with ENOSPC on a full file
// system, and needs neither root nor a tmpfs mount. The run must stop with
// one clear error line and a non-zero exit, leave the previous checkpoint
// intact and no temporary file behind.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "reliability_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

// Runs cifar10 with every file it writes capped at `max_file_bytes`.
testing::ProcessResult run_with_file_limit(const std::vector<std::string>& args, rlim_t max_file_bytes) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    ::signal(SIGXFSZ, SIG_IGN);  // inherited across exec: write() returns EFBIG
    const rlimit limit{max_file_bytes, max_file_bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string bin = testing::cifar10_binary();
    std::vector<char*> argv{bin.data()};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  testing::ProcessResult result;
  std::array<char, 4096> buf{};
  ssize_t n;
  while ((n = ::read(pipefd[0], buf.data(), buf.size())) > 0) result.output.append(buf.data(), n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

void expect_no_temp_files(const fs::path& out) {
  for (const char* dir : {"checkpoints", "results", "logs"}) {
    EXPECT_TRUE(testing::temp_files(out / dir).empty()) << dir << " holds a temporary file";
  }
}

TEST(DiskFull, CheckpointWriteFailsCleanlyAndKeepsThePreviousCheckpoint) {
  TempDir out("full");
  auto first = testing::run_cifar10(testing::tiny_training(out.path(), 1), 180);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path latest = out / "checkpoints/latest_model.pt";
  const std::string before = read_file(latest);
  ASSERT_GT(before.size(), 4u << 20);

  // Room for the logs, results and event files (kilobytes), not for a
  // 16 MB checkpoint.
  const auto r = run_with_file_limit(testing::tiny_training(out.path(), 2, {"--resume", latest.string()}), 4u << 20);
  EXPECT_EQ(r.exit_code, kExitRuntime) << r.output;
  const std::string error = testing::error_line(r.output);
  EXPECT_NE(error.find("cannot write " + out.path().string() + "/checkpoints/"), std::string::npos) << r.output;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_NE(error.find("free space"), std::string::npos) << error;
  EXPECT_EQ(read_file(latest), before) << "the previous checkpoint must be intact";
  EXPECT_NO_THROW(read_checkpoint(latest.string()));
  expect_no_temp_files(out.path());

  // With room again, the same command resumes from the intact checkpoint.
  auto again = testing::run_cifar10(testing::tiny_training(out.path(), 2, {"--resume", latest.string()}), 180);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("Resuming from"), std::string::npos);
}

TEST(DiskFull, NoRoomEvenForTheConfigStopsAtOnce) {
  TempDir out("full0");
  // results/config.json (~1.4 KB) is the first file a run writes.
  const auto r = run_with_file_limit(testing::tiny_training(out.path(), 1), 512);
  EXPECT_EQ(r.exit_code, kExitRuntime) << r.output;
  const std::string error = testing::error_line(r.output);
  EXPECT_NE(error.find("cannot write " + (out / "results/config.json").string() + ": File too large"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(out / "results/config.json"));
  expect_no_temp_files(out.path());
}

// A .tar.gz holding one 1 MB batch of noise (which deflate stores as it
// is), packed by tar(1).
fs::path one_batch_archive(const TempDir& dir) {
  std::string noise(1 << 20, '\0');
  uint32_t seed = 7;
  for (char& c : noise) c = static_cast<char>((seed = seed * 1664525u + 1013904223u) >> 24);
  testing::write_bytes(dir / "src/cifar-10-batches-bin/data_batch_1.bin", noise);
  const fs::path archive = dir / "cifar-10-binary.tar.gz";
  const std::string tar = "tar czf '" + archive.string() + "' -C '" + (dir / "src").string() + "' cifar-10-batches-bin";
  EXPECT_EQ(std::system(tar.c_str()), 0) << tar;
  return archive;
}

// The disk fills while the data is downloaded or extracted: exit 1, as for
// a checkpoint (the machine's state, not the user's input: the same
// command works once there is room), with one line naming what could not
// be written, and no folder or file left in the data folder. Both exited 2.
TEST(DiskFull, TheDataDownloadAndExtractionExitOneAsCheckpointsDo) {
  TempDir tmp("full_data");
  const fs::path archive = one_batch_archive(tmp);
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"cannot download file://" + archive.string() + ": cannot write " + (tmp / "download").string() +
           "/.cifar-download-",
       {"--data-url", "file://" + archive.string()}},
      {"cannot write " + (tmp / "archive/cifar-10-batches-bin/data_batch_1.bin").string() + ": File too large",
       {"--data-archive", archive.string()}},
  };
  for (const auto& [error, source] : cases) {
    const fs::path data = tmp / (source[0] == "--data-url" ? "download" : "archive");
    std::vector<std::string> args{"--data-dir", data.string(), "--data-md5", "none", "--output-dir",
                                  (tmp / "out").string(), "--epochs", "1"};
    args.insert(args.end(), source.begin(), source.end());
    const auto r = run_with_file_limit(args, 256u << 10);
    EXPECT_EQ(r.exit_code, kExitRuntime) << r.output;
    const std::string line = testing::error_line(r.output);
    EXPECT_EQ(line.find("error: " + error), 0u) << r.output;
    EXPECT_NE(line.find("File too large (hint: free disk space, or pass --data-dir "), std::string::npos)
        << line;
    EXPECT_EQ(r.output.find("error: "), r.output.rfind("error: ")) << r.output;
    EXPECT_FALSE(fs::exists(data)) << "the data folder the run made is gone again";
  }
}

// In-process: the temp file is removed on every failure path, and the
// target keeps its old bytes.
TEST(AtomicFile, FailedWriteRemovesItsTempFileAndKeepsTheOldFile) {
  TempDir dir("atomic");
  const fs::path target = dir / "results.json";
  write_file_atomic(target, std::string("old"));
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  int code = 0;
  try {
    write_file_atomic(target, std::string(5000, 'x'));
  } catch (const UserError& e) {
    message = e.what();
    code = e.exit_code();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(code, kExitRuntime);
  EXPECT_EQ(message, "cannot write " + target.string() +
                         ": File too large (free space on its disk; the previous results.json, if any, is untouched)");
  EXPECT_EQ(read_file(target), "old");
  EXPECT_TRUE(testing::temp_files(dir.path()).empty());
}

TEST(AtomicFile, StaleTempFilesOfDeadWritersAreRemovedAndLiveOnesKept) {
  TempDir dir("stale");
  const fs::path target = dir / "latest_model.pt";
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  // A pid that is certainly dead: a child that has been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string prefix = ".latest_model.pt.tmp." + std::string(host) + ".";
  const fs::path stale = dir / (prefix + std::to_string(dead) + ".AbC123");
  const fs::path live = dir / (prefix + "1.XyZ789");  // pid 1 is alive
  const fs::path other = dir / (".best_model.pt.tmp." + std::string(host) + "." + std::to_string(dead) + ".Q1w2e3");
  for (const auto& p : {stale, live, other}) testing::write_bytes(p, "partial");
  write_file_atomic(target, std::string("new"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live)) << "a live process's temp file must not be touched";
  EXPECT_TRUE(fs::exists(other)) << "only temps of the file being written are swept";
  EXPECT_EQ(read_file(target), "new");
}

}  // namespace
}  // namespace cifar
