// Data archives (--data-archive, or the downloaded cifar-10-binary.tar.gz):
// the input is written to a file, as it would lie on disk, and extracted
// into a fresh folder by extract_folder, gzip ones through zlib with the
// caps applied as it inflates. The caps are 64 kB per entry and 256 kB in
// all, so that small inputs reach the same refusals as the real 100 MB and
// 400 MB do.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "data/archive.h"
#include "fuzz_util.h"

namespace {
namespace fs = std::filesystem;

// A private folder, on tmpfs where there is one: extract_folder fsyncs
// every file it writes.
const fs::path& scratch() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/archive_fuzz.XXXXXX");
    if (!::mkdtemp(tmpl.data())) cifar::fuzz::finding("cannot create a scratch folder");
    return fs::path(tmpl);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  const fs::path archive = scratch() / "input.tar.gz", dest = scratch() / "out";
  std::ofstream(archive, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  remove_tree(dest);
  fs::create_directory(dest);
  ExtractLimits limits;
  limits.max_entry_bytes = 64 << 10;
  limits.max_total_bytes = 256 << 10;
  fuzz::parse_or_refuse([&] {
    const int files = extract_folder(archive, "cifar-10-batches-bin", dest, limits);
    int found = 0;
    uint64_t total = 0;
    for (const auto& entry : fs::directory_iterator(dest)) {
      fuzz::require(entry.is_regular_file() && !entry.is_symlink(), "only regular files are written");
      fuzz::require(entry.file_size() <= limits.max_entry_bytes, "no file past the cap per entry");
      total += entry.file_size();
      ++found;
    }
    fuzz::require(found == files, "as many files as reported");
    fuzz::require(total <= limits.max_total_bytes, "no more than the cap in all");
  });
  return 0;
}
