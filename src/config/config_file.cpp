#include "config/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/printable.h"

namespace cifar {
namespace {

std::string file_name(const std::string& source) { return "config file " + printable(source, 200); }

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Only these are read: a device such as /dev/zero never ends, a directory
// or socket holds no config.
void require_file_or_pipe(const struct stat& st, const std::string& path) {
  if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) return;
  throw UserError(file_name(path) + " is " + kind_of(st.st_mode) +
                  ", not a file or a pipe (hint: name a JSON or YAML file, or pipe one into --config /dev/stdin)");
}

std::string too_large(const std::string& path) {
  return file_name(path) + " holds more than 1 MiB, and a config file is a few lines (hint: is it the right file?)";
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The 1-based line of byte `offset` of `text`.
int line_at(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

[[noreturn]] void not_single(const std::string& source, int line, const std::string& key) {
  throw UserError(file_name(source) + ": line " + std::to_string(line) + ": config key '" + printable(key, 80) +
                  "' must be a single value (a number, a word or a path), not a list or a mapping");
}

[[noreturn]] void not_a_mapping(const std::string& source) {
  throw UserError(file_name(source) + ": config file must hold a mapping of flag names to values (hint: epochs: 10)");
}

[[noreturn]] void not_json_or_yaml(const std::string& source, const std::string& detail) {
  throw UserError(file_name(source) + " is not valid JSON or YAML: " + printable(one_line(detail), 300));
}

// An iterator over the text that publishes how far nlohmann's lexer has
// read, which its SAX interface does not tell: the line of a key or of a
// nested value comes from it.
class TrackedChars {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  TrackedChars(const char* at, const char** read_to) : at_(at), read_to_(read_to) {}
  reference operator*() const { return *at_; }
  TrackedChars& operator++() {
    *read_to_ = ++at_;
    return *this;
  }
  TrackedChars operator++(int) {
    TrackedChars before = *this;
    ++*this;
    return before;
  }
  bool operator==(const TrackedChars& other) const { return at_ == other.at_; }
  bool operator!=(const TrackedChars& other) const { return at_ != other.at_; }

 private:
  const char* at_;
  const char** read_to_;
};

// The top level of a JSON object, as settings. The parse stops at the first
// nested value: nothing below the top level is built, however deep.
class JsonSettings : public nlohmann::json_sax<nlohmann::json> {
 public:
  JsonSettings(const std::string& text, const std::string& source, const char* const* read_to)
      : text_(text), source_(source), read_to_(read_to) {}
  std::vector<ConfigSetting> settings;

  bool null() override { return add("null"); }
  bool boolean(bool value) override { return add(value ? "true" : "false"); }
  bool number_integer(number_integer_t value) override { return add(std::to_string(value)); }
  bool number_unsigned(number_unsigned_t value) override { return add(std::to_string(value)); }
  // The number as written, so that 1e3 or 5.0 reach the flag's own check
  // as the user wrote them.
  bool number_float(number_float_t, const string_t& written) override { return add(written); }
  bool string(string_t& value) override { return add(value); }
  bool binary(binary_t&) override { return add("binary"); }
  bool start_object(std::size_t) override {
    if (in_root_) not_single(source_, line_here(), key_);
    in_root_ = true;
    return true;
  }
  bool key(string_t& key) override {
    key_ = key;
    key_line_ = line_here();
    return true;
  }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override {
    if (!in_root_) not_a_mapping(source_);
    not_single(source_, line_here(), key_);
  }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 12: ..."
    std::string what = e.what();
    if (const auto end = what.find("] "); what.rfind("[json.exception", 0) == 0 && end != std::string::npos) {
      what.erase(0, end + 2);
    }
    not_json_or_yaml(source_, what);
  }

 private:
  int line_here() const { return line_at(text_, static_cast<size_t>(*read_to_ - text_.data())); }
  bool add(std::string value) {
    if (!in_root_) not_a_mapping(source_);
    settings.push_back({key_, std::move(value), key_line_});
    return true;
  }

  const std::string& text_;
  const std::string& source_;
  const char* const* read_to_;
  bool in_root_ = false;
  std::string key_;
  int key_line_ = 0;
};

std::vector<ConfigSetting> json_settings(const std::string& text, const std::string& source) {
  const char* read_to = text.data();
  JsonSettings sax(text, source, &read_to);
  const char* begin = text.data();
  nlohmann::json::sax_parse(TrackedChars(begin, &read_to), TrackedChars(begin + text.size(), &read_to), &sax);
  return std::move(sax.settings);
}

// yaml-cpp builds the whole document first (its parser stops at 2000
// levels of nesting, DeepRecursion); only the top level is read from it,
// and nested values are refused unread: the tree is never walked or
// copied, so aliases are never expanded (a 450-byte "billion laughs" file
// expanded into ~10^9 strings, taking minutes and gigabytes).
std::vector<ConfigSetting> yaml_settings(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // Its message is "bad file", and its mark's line is not kept up to
    // date while flow collections nest; the byte offset is.
    const int line = e.mark.pos >= 0 ? line_at(text, static_cast<size_t>(e.mark.pos)) : 1;
    not_json_or_yaml(source, "line " + std::to_string(line) +
                                 ": values nest more than 2000 levels deep (a config file holds single values)");
  } catch (const YAML::Exception& e) {
    const std::string at = e.mark.is_null() ? std::string()
                                            : "line " + std::to_string(e.mark.line + 1) + ", column " +
                                                  std::to_string(e.mark.column + 1) + ": ";
    not_json_or_yaml(source, at + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) return {};
  if (!root.IsMap()) not_a_mapping(source);
  std::vector<ConfigSetting> settings;
  for (const auto& kv : root) {
    const int line = kv.first.Mark().line + 1;
    if (!kv.first.IsScalar()) {
      throw UserError(file_name(source) + ": line " + std::to_string(line) + ": config file keys must be flag names");
    }
    const std::string key = kv.first.Scalar();
    if (kv.second.IsMap() || kv.second.IsSequence()) not_single(source, kv.second.Mark().line + 1, key);
    // A null value (`epochs:`) reads as the text "null", as JSON's null does.
    settings.push_back({key, kv.second.IsScalar() ? kv.second.Scalar() : std::string("null"), line});
  }
  return settings;
}

}  // namespace

std::string read_config_source(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    throw UserError("cannot read " + file_name(path) + ": " +
                    (error == ENOENT ? std::string("no such file") : std::strerror(error)));
  }
  require_file_or_pipe(st, path);
  // A FIFO's open waits for its writer, as reading a pipe should.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw UserError("cannot read " + file_name(path) + ": " + std::strerror(errno));
  // What was opened is checked again: the path may name something else now.
  if (::fstat(fd.get(), &st) != 0) throw UserError("cannot read " + file_name(path) + ": " + std::strerror(errno));
  require_file_or_pipe(st, path);
  if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) > kMaxConfigBytes) throw UserError(too_large(path));
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError("cannot read " + file_name(path) + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) throw UserError(too_large(path));
  }
  // A pipe that gives nothing was read before (a pipe is read once: the
  // launcher's workers re-read a --config the launcher drained) or fed by
  // a command that failed (`<(cat missing.yaml)`): never a config.
  if (S_ISFIFO(st.st_mode) && text.empty()) {
    throw UserError(file_name(path) +
                    " is a pipe that gave no bytes (hint: a pipe can be read only once; check the "
                    "command that feeds it, or write the config to a file)");
  }
  return text;
}

std::string escape_broken_utf8(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    // The length a lead byte announces: 110xxxxx 2, 1110xxxx 3, 11110xxx 4.
    const size_t length = lead < 0x80           ? 1
                          : (lead >> 5) == 0x6  ? 2
                          : (lead >> 4) == 0xE  ? 3
                          : (lead >> 3) == 0x1E ? 4
                                                : 0;
    bool whole = length > 0 && i + length <= text.size();
    for (size_t k = 1; whole && k < length; ++k) whole = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (whole) {
      out.append(text, i, length);
      i += length;
      continue;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02X", lead);
    out += hex;
    ++i;
  }
  return out;
}

std::vector<ConfigSetting> parse_config_settings(const std::string& text, const std::string& source) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') return json_settings(text, source);
  return yaml_settings(text, source);
}

}  // namespace cifar
