// Errors a user can act on. Every one carries a single line that names the
// file or value at fault and the fix, and the exit code main() returns.
#pragma once
#include <stdexcept>
#include <string>

namespace cifar {

// Exit codes: 2 for bad input (flags, config, data, checkpoints), 1 for
// failures at run time, 128+signal when a signal stopped the run.
constexpr int kExitBadInput = 2;
constexpr int kExitRuntime = 1;

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message, int exit_code = kExitBadInput)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Library messages (libarchive, libcurl) can hold newlines; ours are one line.
inline std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// LibTorch's messages put the cause on the first line and context after it.
inline std::string first_line(std::string text) {
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  return text;
}

// Throws UserError("<what>: <detail> (hint: <fix>)") unless `ok`.
inline void check_input(bool ok, const std::string& what, const std::string& hint = "") {
  if (!ok) throw UserError(hint.empty() ? what : what + " (hint: " + hint + ")");
}

}  // namespace cifar
