#include "data/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "common/signals.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// 1 MiB keeps reads efficient on a 163 MB archive without a large buffer.
constexpr size_t kChunkBytes = 1 << 20;

const char* kArchiveHint =
    "use the official cifar-10-binary.tar.gz, or pass --data-dir with an existing "
    "cifar-10-batches-bin/";


std::string archive_error(struct archive* a) {
  const char* msg = archive_error_string(a);
  return one_line(msg ? msg : "unknown libarchive error");
}

// Entry names and link targets are the archive's: quoted printably, and cut.
[[noreturn]] void refuse(const fs::path& archive, const std::string& entry, const std::string& why) {
  throw UserError("refusing archive " + archive.string() + ": entry '" + printable(entry, 200) + "' " +
                  printable(why, 300) + " (hint: " + kArchiveHint + ")");
}

[[noreturn]] void damaged(const fs::path& archive, const std::string& detail) {
  throw UserError("corrupt or truncated archive " + archive.string() + ": " + detail +
                  " (hint: download it again, or " + kArchiveHint + ")");
}

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Drops leading "./" so "./cifar-10-batches-bin/x" (as `tar czf a.tgz ./dir`
// writes it) matches like "cifar-10-batches-bin/x".
std::string strip_dot_slash(std::string path) {
  while (path.rfind("./", 0) == 0) {
    path.erase(0, 2);
    while (!path.empty() && path.front() == '/') path.erase(0, 1);
  }
  return path;
}

bool has_dotdot_component(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

// Refuses the entry unless it is a plain file or folder with a relative
// path that stays inside the extraction folder.
void check_entry(const fs::path& archive, struct archive_entry* entry, const std::string& name) {
  if (name.empty()) refuse(archive, name, "has an empty path");
  if (name.front() == '/') refuse(archive, name, "has an absolute path");
  if (has_dotdot_component(name)) refuse(archive, name, "has a '..' component that leaves the folder");
  if (const char* target = archive_entry_hardlink(entry)) {
    refuse(archive, name, std::string("is a hard link (to '") + target + "')");
  }
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
    case AE_IFDIR:
      return;
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(entry);
      refuse(archive, name, std::string("is a symbolic link (to '") + (target ? target : "?") + "')");
    }
    case AE_IFCHR:
      refuse(archive, name, "is a character device");
    case AE_IFBLK:
      refuse(archive, name, "is a block device");
    case AE_IFIFO:
      refuse(archive, name, "is a FIFO");
    case AE_IFSOCK:
      refuse(archive, name, "is a socket");
    default:
      refuse(archive, name, "has an unknown file type");
  }
}

void write_all(int fd, const char* data, size_t size, const fs::path& file) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw UserError("cannot write " + file.string() + ": " + std::strerror(errno) +
                          " (hint: free disk space, or pass --data-dir elsewhere)",
                      kExitRuntime);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// libarchive's gzip reader skips the gzip trailer unchecked ("XXX TODO:
// Verify the length and CRC-32 fields" in its source), so a .tar.gz
// damaged in a way the deflate stream still decodes would install wrong
// pixels when --data-md5 is none. A gzip archive is therefore inflated by
// zlib, which checks every member's CRC-32 and length, and libarchive reads
// the tar inside from this callback. One pass, so the caps apply while
// zlib inflates: a 5 MB archive declaring a 5 GB entry is refused at its
// first header, not after 11 s of inflating it all for a separate check.
struct GzipSource {
  gzFile gz = nullptr;
  std::vector<char> buf = std::vector<char>(kChunkBytes);
  uint64_t inflated = 0;
  uint64_t max_inflated = 0;
  std::string error;  // zlib's reason, when a check failed
  bool over_limit = false;

  ~GzipSource() {
    if (gz) ::gzclose(gz);
  }
  // The next chunk into buf: its size, 0 at the end, -1 on a fault
  // (error or over_limit set).
  int read() {
    const int n = ::gzread(gz, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int code = Z_OK;
      error = one_line(::gzerror(gz, &code));
      return -1;
    }
    inflated += static_cast<uint64_t>(n);
    if (inflated > max_inflated) {
      over_limit = true;
      return -1;
    }
    return n;
  }
};

la_ssize_t read_gzip(struct archive*, void* source, const void** out) {
  auto& gz = *static_cast<GzipSource*>(source);
  *out = gz.buf.data();
  return gz.read();
}

bool is_gzip(const fs::path& archive) {
  unsigned char magic[2] = {0, 0};
  FILE* f = std::fopen(archive.c_str(), "rb");
  if (!f) return false;
  const size_t got = std::fread(magic, 1, 2, f);
  std::fclose(f);
  return got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

// What a failed libarchive call means: zlib's verdict on the gzip layer, or
// the cap, comes first (libarchive only saw its read fail).
[[noreturn]] void read_failed(struct archive* a, const GzipSource* gz, const fs::path& archive,
                              const ExtractLimits& limits) {
  if (gz && gz->over_limit) {
    throw UserError("refusing archive " + archive.string() + ": it expands past " +
                    std::to_string(gz->max_inflated) + " bytes, over the limit of " +
                    std::to_string(limits.max_total_bytes) + " bytes in all (hint: " + kArchiveHint + ")");
  }
  if (gz && !gz->error.empty()) {
    std::string why = gz->error;
    // zlib puts the path in front: the error already names the archive.
    if (why.rfind(archive.string() + ": ", 0) == 0) why.erase(0, archive.string().size() + 2);
    damaged(archive, "gzip check failed: " + why);
  }
  damaged(archive, archive_error(a));
}

}  // namespace

namespace {

// An OpenSSL digest fed in pieces, read out as lowercase hex.
class Digest {
 public:
  Digest(const EVP_MD* md, const char* refusal) : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1) throw UserError(refusal);
  }
  void add(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &len);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

std::string md5_file(const fs::path& file) {
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!in) throw UserError("cannot open " + file.string() + ": " + std::strerror(errno));
  // MD5 is refused by OpenSSL in FIPS mode; say how to go on without it.
  Digest md5(EVP_md5(), "cannot compute MD5 with this OpenSSL (FIPS mode?) (hint: pass --data-md5 none)");
  std::vector<unsigned char> buf(kChunkBytes);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0) md5.add(buf.data(), n);
  if (std::ferror(in.get())) {
    throw UserError("cannot read " + file.string() + ": " + std::strerror(errno));
  }
  return md5.hex();
}

std::string sha256_hex(std::string_view bytes) {
  Digest sha256(EVP_sha256(), "cannot compute SHA-256 with this OpenSSL");
  sha256.add(bytes.data(), bytes.size());
  return sha256.hex();
}

int extract_folder(const fs::path& archive, const std::string& folder, const fs::path& dest,
                   const ExtractLimits& limits) {
  std::unique_ptr<struct archive, ArchiveCloser> a(archive_read_new());
  if (!a) throw UserError("cannot allocate a libarchive reader", kExitRuntime);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  std::unique_ptr<GzipSource> gz;
  if (is_gzip(archive)) {
    gz = std::make_unique<GzipSource>();
    gz->gz = ::gzopen(archive.c_str(), "rb");
    if (!gz->gz) throw UserError("cannot open archive " + archive.string() + ": " + std::strerror(errno));
    ::gzbuffer(gz->gz, kChunkBytes);
    // The tar around the entries' bytes: a 512-byte header per entry, its
    // padding, the end blocks padded to a 10 kB record (about 15 kB for the
    // official 9 entries). An eighth more than the entries' cap leaves
    // honest repacks room, and 1 MiB more the chunk zlib inflates at once,
    // so that a small cap is still met at the entry that passes it.
    gz->max_inflated = limits.max_total_bytes + limits.max_total_bytes / 8 + kChunkBytes;
    if (archive_read_open(a.get(), gz.get(), nullptr, read_gzip, nullptr) != ARCHIVE_OK) {
      read_failed(a.get(), gz.get(), archive, limits);
    }
  } else if (archive_read_open_filename(a.get(), archive.c_str(), kChunkBytes) != ARCHIVE_OK) {
    const std::string detail = archive_error(a.get());
    std::error_code ec;
    if (!fs::is_regular_file(archive, ec)) {
      throw UserError("cannot open archive " + archive.string() + ": " + detail);
    }
    damaged(archive, detail);
  }

  const std::string prefix = folder + "/";
  std::vector<char> buf(kChunkBytes);
  uint64_t total = 0;
  int written = 0;
  while (true) {
    struct archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN flags harmless oddities (unknown pax keys); anything
    // worse means the stream itself is damaged.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) read_failed(a.get(), gz.get(), archive, limits);

    const char* raw_name = archive_entry_pathname(entry);
    if (!raw_name) raw_name = archive_entry_pathname_utf8(entry);
    if (!raw_name) refuse(archive, "?", "has a name that cannot be decoded");
    check_entry(archive, entry, raw_name);
    const std::string name = strip_dot_slash(raw_name);

    // Sizes from the headers, checked before reading: a bomb is stopped
    // without decompressing it. Skipped entries count too, since skipping
    // still inflates them.
    const int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    const uint64_t size = declared > 0 ? static_cast<uint64_t>(declared) : 0;
    if (size > limits.max_entry_bytes) {
      refuse(archive, raw_name, "is " + std::to_string(size) + " bytes, over the limit of " +
                                    std::to_string(limits.max_entry_bytes) + " bytes per entry");
    }
    total += size;
    if (total > limits.max_total_bytes) {
      refuse(archive, raw_name, "brings the archive past the limit of " +
                                    std::to_string(limits.max_total_bytes) + " bytes in all");
    }

    // Only the files directly inside the folder; CIFAR-10 has no subfolders.
    const bool wanted = archive_entry_filetype(entry) == AE_IFREG && name.rfind(prefix, 0) == 0 &&
                        name.size() > prefix.size() &&
                        name.find('/', prefix.size()) == std::string::npos;
    if (!wanted) {
      if (archive_read_data_skip(a.get()) != ARCHIVE_OK) read_failed(a.get(), gz.get(), archive, limits);
      continue;
    }

    const std::string base = name.substr(prefix.size());
    const fs::path out = dest / base;
    FdCloser fd;
    // O_EXCL|O_NOFOLLOW: `dest` is our own fresh folder, so an existing name
    // can only be a duplicate entry, and nothing may redirect the write.
    fd.fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd.fd < 0) {
      const int error = errno;
      if (error == EEXIST) refuse(archive, raw_name, "appears twice");
      throw UserError("cannot create " + out.string() + ": " + std::strerror(error) +
                          " (hint: pass --data-dir to a writable folder)",
                      create_failure_exit_code(error));
    }
    // Count what actually arrives as well: a header's size is a claim.
    uint64_t entry_bytes = 0;
    while (true) {
      const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) read_failed(a.get(), gz.get(), archive, limits);
      entry_bytes += static_cast<uint64_t>(n);
      if (stop_signal()) {  // the message is built only then, not once per chunk
        throw_if_stop_requested("while extracting " + archive.string() + "; the partial folder was removed");
      }
      if (entry_bytes > limits.max_entry_bytes) {
        refuse(archive, raw_name, "expands past the limit of " +
                                      std::to_string(limits.max_entry_bytes) + " bytes per entry");
      }
      write_all(fd.fd, buf.data(), static_cast<size_t>(n), out);
    }
    // Flushed before the folder is renamed into place, so a crash right
    // after never shows a complete-looking folder of empty files.
    const bool synced = ::fsync(fd.fd) == 0;
    const int sync_errno = errno;
    const bool closed = ::close(fd.fd) == 0;
    fd.fd = -1;
    if (!synced || !closed) {
      throw UserError("cannot write " + out.string() + ": " + std::strerror(synced ? errno : sync_errno) +
                          " (hint: free disk space, or pass --data-dir elsewhere)",
                      kExitRuntime);
    }
    ++written;
  }
  // The tar ends before the gzip stream does (trailer, padding, perhaps
  // more members): zlib checks it to its end, under the same cap.
  if (gz) {
    int n = 0;
    while ((n = gz->read()) > 0) {
      if (stop_signal()) {
        throw_if_stop_requested("while checking " + archive.string() + "; the partial folder was removed");
      }
    }
    if (n < 0) read_failed(a.get(), gz.get(), archive, limits);
  }
  return written;
}

}  // namespace cifar
