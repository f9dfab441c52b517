#include "reporting/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace cifar {

std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // std::to_chars gives the shortest round-trip digits, as Python's repr
  // does (both David Gay's criterion), but picks fixed or scientific by
  // length ("1e-04", "2"); Python's layout (float_repr_style 'short',
  // PyOS_double_to_string with 'r') is rebuilt from its scientific form.
  std::array<char, 32> buf{};  // "-d.dddddddddddddddde-308" at most
  const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  const std::string_view sci(buf.data(), static_cast<size_t>(result.ptr - buf.data()));
  const size_t e_at = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (char c : sci.substr(negative ? 1 : 0, e_at - (negative ? 1 : 0))) {
    if (c != '.') digits += c;
  }
  const int exponent = std::atoi(std::string(sci.substr(e_at + 1)).c_str());
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent > 15) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int magnitude = std::abs(exponent);
    out += std::string(exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + std::to_string(magnitude);
  } else if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const size_t point = static_cast<size_t>(exponent) + 1;
    if (digits.size() < point) digits.append(point - digits.size(), '0');
    out += digits.substr(0, point) + "." + (digits.size() > point ? digits.substr(point) : "0");
  }
  return out;
}

std::string csv_field(std::string_view field, char sep) {
  if (field.find_first_of(std::string{sep, '"', '\n', '\r'}) == std::string_view::npos) {
    return std::string(field);
  }
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_line(const std::vector<std::string>& fields, char sep) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += sep;
    line += csv_field(fields[i], sep);
  }
  line += '\n';
  return line;
}

std::vector<CsvRecord> parse_csv(std::string_view text, char sep) {
  std::vector<CsvRecord> records;
  size_t i = 0;
  while (i < text.size()) {
    CsvRecord record;
    record.begin = i;
    std::string field;
    bool quoted = false;
    while (i < text.size()) {
      const char c = text[i];
      if (quoted) {
        if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
        } else if (c == '"') {
          quoted = false;
          ++i;
        } else {
          field += c;
          ++i;
        }
      } else if (c == '"') {
        quoted = true;
        ++i;
      } else if (c == sep) {
        record.fields.push_back(std::move(field));
        field.clear();
        ++i;
      } else if (c == '\n' || c == '\r') {
        i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
        record.terminated = true;
        break;
      } else {
        field += c;
        ++i;
      }
    }
    record.fields.push_back(std::move(field));
    record.end = i;
    records.push_back(std::move(record));
  }
  return records;
}

void append_to_file(const std::filesystem::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw UserError("cannot open " + path.string() + " to append: " + std::strerror(errno),
                    kExitRuntime);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw UserError("cannot append to " + path.string() + ": " + why, kExitRuntime);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    throw UserError("cannot close " + path.string() + ": " + std::strerror(errno), kExitRuntime);
  }
}

}  // namespace cifar
