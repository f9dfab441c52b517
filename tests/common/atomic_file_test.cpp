#include "common/atomic_file.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>

#include "common/error.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, ReplacesContentAndLeavesNoTemporary) {
  testing::TempDir tmp("atomic");
  write_file_atomic(tmp / "a.json", "first");
  write_file_atomic(tmp / "a.json", "second");
  EXPECT_EQ(read_file(tmp / "a.json"), "second");
  EXPECT_EQ(entries(tmp.path()), 1u);
}

TEST(AtomicFile, CreatesMissingFolders) {
  testing::TempDir tmp("atomic");
  write_file_atomic(tmp / "x/y/z.txt", "deep");
  EXPECT_EQ(read_file(tmp / "x/y/z.txt"), "deep");
}

// A write that fails part-way (here: the file-size limit, as a full disk
// would) leaves the previous file intact and no temporary behind.
TEST(AtomicFile, FailedWriteKeepsThePreviousFile) {
  testing::TempDir tmp("atomic");
  write_file_atomic(tmp / "ckpt.pt", "good checkpoint");
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &small);
  std::string error;
  try {
    write_file_atomic(tmp / "ckpt.pt", std::string(1 << 20, 'x'));
  } catch (const UserError& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, SIG_DFL);
  EXPECT_NE(error.find("cannot write"), std::string::npos) << error;
  EXPECT_EQ(read_file(tmp / "ckpt.pt"), "good checkpoint");
  EXPECT_EQ(entries(tmp.path()), 1u);
}

TEST(AtomicFile, UnreadableFileIsNamed) {
  testing::TempDir tmp("atomic");
  try {
    read_file(tmp / "nope.bin");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.bin"), std::string::npos);
  }
}

// Scratch folders go with everything in them; a link inside is removed as
// a link, and what it points to is left alone.
TEST(RemoveTree, RemovesNestedFilesButNotWhatALinkPointsTo) {
  testing::TempDir tmp("tree");
  const fs::path keep = tmp / "keep", tree = tmp / "tree";
  write_file_atomic(keep / "precious.txt", "mine");
  write_file_atomic(tree / "a/b/c.bin", "x");
  write_file_atomic(tree / "top.txt", "y");
  fs::create_directory_symlink(keep, tree / "a/link");
  remove_tree(tree);
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_EQ(read_file(keep / "precious.txt"), "mine");
  remove_tree(tmp / "never-was");  // nothing there: no error, no throw
  remove_tree(keep / "precious.txt");  // a single file
  EXPECT_FALSE(fs::exists(keep / "precious.txt"));
  EXPECT_TRUE(fs::exists(keep));
}

}  // namespace
}  // namespace cifar
