// Files the user keeps (checkpoints, results, logs) are written to a
// temporary file in the same folder, fsync'ed, then renamed over the target:
// a crash or a full disk mid-write leaves the previous file intact.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace cifar {

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::ostream&)>& writer);

// Reads a whole file; throws UserError (exit 2) naming the file if it is
// missing or unreadable, is not a regular file, or holds more than
// `max_bytes`. A device (/dev/zero, /dev/urandom) would be read until
// memory runs out and a FIFO would wait for a writer forever, so anything
// but a regular file is refused before a byte is read (and a FIFO opened
// without waiting). Every file a user names (checkpoints, weights, images,
// data batches) is read through here.
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes = UINT64_MAX);

// Why read_file would refuse `path` before reading it ("No such file or
// directory", "a FIFO, not a regular file", ...), or "" when it would
// not: for checks of a file named on the command line before its turn.
std::string unreadable_reason(const std::filesystem::path& path);

// Refuses (UserError, exit 2) a `path` that write_file_atomic could not
// write, without writing or creating anything: a folder of that name, or
// no writable folder where it would go (the nearest existing one of its
// folders must be writable, as write_file_atomic creates the rest). For an
// output a command writes last, checked before its work.
void check_writable_target(const std::filesystem::path& path, const std::string& flag);

// Whether a failed write's errno means "no room" (a full disk, a quota, a
// file-size limit). That is the machine's state, not the user's input: such
// failures exit 1 (kExitRuntime) wherever they happen, a checkpoint or the
// data download, and the same command succeeds once there is room.
bool is_disk_full(int error);
// The exit code for a file or folder that could not be created: no room is
// the machine's state (1); anything else (permissions, a read-only mount)
// is the user's choice of folder (2). A write that fails once the file
// exists is always 1.
int create_failure_exit_code(int error);

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
