// Messages may quote bytes from a hostile file (a PNG chunk type, a JSON
// token). Printed raw, a line break forges a second line and an escape
// sequence is obeyed by the terminal; so every error line is passed
// through printable() on its way to the user.
#pragma once
#include <string>

namespace cifar {

// `text` with every ASCII control character (below 0x20, and DEL) replaced
// by '?'. Bytes from 0x80 up are kept: they are how UTF-8 file names look.
inline std::string printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return text;
}

// The same, cut to `limit` bytes with "..." after: a name from a hostile
// file may be megabytes long.
inline std::string printable(const std::string& text, size_t limit) {
  return text.size() <= limit ? printable(text) : printable(text.substr(0, limit)) + "...";
}

// A decoder's failure reason with every byte outside printable ASCII made
// '?': stb quotes a bad PNG chunk's four type bytes as found in the file,
// so a line break or a terminal escape from a hostile file would reach the
// user's screen (found by fuzz/image_fuzz). The decoders' own reasons are
// plain ASCII, so nothing of them is lost.
inline std::string ascii_reason(std::string reason) {
  for (char& c : reason) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  return reason;
}

}  // namespace cifar
