// Checking and unpacking the CIFAR-10 archive. The archive may come from the
// network or from a user, so it is read as untrusted input: entries are
// read with archive_read_data and written by us into a fresh folder, which
// lets every path, type and size be checked before a byte reaches the disk.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace cifar {

// Caps on what one archive may expand to. The official archive holds six
// 30.7 MB batches (about 185 MB in all), so 100 MB per entry and 400 MB in
// all leave room for honest repacks while stopping a decompression bomb
// long before it fills the disk.
struct ExtractLimits {
  uint64_t max_entry_bytes = 100ull << 20;
  uint64_t max_total_bytes = 400ull << 20;
};

// Lowercase hex MD5 of a file, streamed in 1 MiB chunks. Throws UserError
// naming the file if it cannot be read.
std::string md5_file(const std::filesystem::path& file);
// Lowercase hex SHA-256 of bytes in memory (downloaded weight files, which
// are read whole anyway).
std::string sha256_hex(std::string_view bytes);

// Copies the regular files directly under `folder`/ in the tar archive
// `archive` (gzip, bzip2, xz or uncompressed) into the existing, empty
// folder `dest`, without the `folder`/ prefix; returns how many it wrote.
// Other entries are skipped, but any entry anywhere in the archive with an
// absolute path, a ".." component, a link, a device, FIFO or socket type, or
// a size past `limits` refuses the whole archive with a UserError naming the
// entry. A damaged archive throws too, a gzip one also when a member's
// CRC-32 or length is wrong (checked by zlib, to the stream's end, as the
// tar is read: one pass, with the caps applied as it inflates). On error
// `dest` may hold partial files: the caller owns it and removes it.
int extract_folder(const std::filesystem::path& archive, const std::string& folder,
                   const std::filesystem::path& dest, const ExtractLimits& limits = {});

}  // namespace cifar
