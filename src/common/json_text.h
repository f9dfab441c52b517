// JSON text that cannot fail on the strings it holds. nlohmann's dump()
// throws type_error 316 at the first byte that is not valid UTF-8, and such
// bytes arrive from outside: file names on Linux are bytes, and a
// batches.meta.txt may be Latin-1. One odd file name must not cost a
// predictions file or a checkpoint, so every JSON file is written through
// json_text(), which puts U+FFFD where an invalid byte was.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace cifar {

// j.dump(indent) with each invalid UTF-8 byte written as U+FFFD (the
// Unicode replacement character) instead of throwing; valid text, the
// usual case, comes out byte for byte as dump() gives it. indent -1: one
// line; no trailing newline.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

// `text` as json_text() writes it inside a JSON string: invalid UTF-8 bytes
// replaced by U+FFFD, the rest unchanged. For strings that are compared
// after a round trip through JSON (class names in a checkpoint), so both
// sides hold the same bytes.
inline std::string valid_utf8(const std::string& text) {
  return nlohmann::json::parse(json_text(nlohmann::json(text))).get<std::string>();
}

}  // namespace cifar
