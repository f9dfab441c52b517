// Files the user keeps (checkpoints, results, logs) are written to a
// temporary file in the same folder, fsync'ed, then renamed over the target:
// a crash or a full disk mid-write leaves the previous file intact.
#pragma once
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace cifar {

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::ostream&)>& writer);

// Reads a whole file; throws UserError naming the file if it cannot.
std::string read_file(const std::filesystem::path& path);

// Creates a folder (and parents); throws UserError naming it if it cannot.
void ensure_dir(const std::filesystem::path& dir);
// ensure_dir, then checks that files can be made in the folder: a run
// learns that checkpoints/ is read-only before its first epoch, not after.
void ensure_writable_dir(const std::filesystem::path& dir);

// Temporaries that outlive a process killed by SIGKILL or the OOM killer
// (it cannot remove its own) are named <prefix><host>.<pid>.XXXXXX, from
// temp_name_prefix(prefix); remove_temps_of_dead_processes(dir, prefix)
// removes those in `dir` of this host's processes that are gone. A live
// process's temporaries (another run in the same folder) are never touched.
std::string temp_name_prefix(const std::string& prefix);
void remove_temps_of_dead_processes(const std::filesystem::path& dir, const std::string& prefix);

// Removes `path` and everything under it, best effort (scratch folders);
// symbolic links are removed, never followed. POSIX nftw rather than
// std::filesystem::remove_all: PyTorch's 2.5+ wheels export their own
// statically linked copy of libstdc++'s std::filesystem (pytorch/pytorch
// issue 133437), so in a process linked to them the system's remove_all runs
// part of its walk in that other copy: every remove_all of a non-empty
// folder then crashes (SIGSEGV), while single-folder listings, done wholly
// in one copy, work.
void remove_tree(const std::filesystem::path& path) noexcept;

}  // namespace cifar
