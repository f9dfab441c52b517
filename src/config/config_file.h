// A --config source: JSON or YAML holding one mapping of flag names to
// single values, read once from a regular file or a pipe.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace cifar {

// A config file is a handful of lines; 1 MiB is far beyond any real one and
// bounds what a pipe (or a file grown by mistake) can make us hold.
constexpr size_t kMaxConfigBytes = size_t{1} << 20;

// The bytes of `path`, read once: a regular file or a pipe (a FIFO,
// `--config /dev/stdin` fed by a pipe, `--config <(...)`), at most
// kMaxConfigBytes. Anything else (a directory, a device such as /dev/zero,
// a socket, a terminal) is refused before a byte is read, and so is a pipe
// that gives no bytes. Throws UserError naming `path`.
std::string read_config_source(const std::string& path);

struct ConfigSetting {
  std::string key;    // as written (model-type, model_type, no-flip)
  std::string value;  // the scalar's text as written; JSON/YAML null reads "null"
  int line = 0;       // 1-based line of the key in the text
};

// `text` with each byte from 0x80 up that is not part of a UTF-8 character
// written as \xEA. Parsers quote single bytes of a file (yaml-cpp's "unknown
// escape character: " and a key or value CLI11 cannot read), and a lone
// byte of a broken character is garbage on a terminal and in a log;
// printable() keeps bytes from 0x80 up, as UTF-8 names are made of them.
std::string escape_broken_utf8(const std::string& text);

// The top-level settings of a config text, in the order written, without
// expanding or walking anything nested (a nested value is refused at its
// first line). Text starting with '{' is JSON, anything else YAML. Throws
// UserError starting "config file SOURCE" that names the line at fault.
std::vector<ConfigSetting> parse_config_settings(const std::string& text, const std::string& source);

}  // namespace cifar
