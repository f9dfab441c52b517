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

}  // namespace cifar
