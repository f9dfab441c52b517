// main's last word on an error: one "error: MESSAGE" line on stderr, made
// printable, and the exit code.
#pragma once
#include <string>

namespace cifar {

// Runs before an error is printed, with its exit code: a worker of the
// local launcher uses it to leave the report of an error every rank meets
// to rank 0 (distributed/launcher.h).
using ErrorReportHook = void (*)(int code);
void set_error_report_hook(ErrorReportHook hook);

// Prints "error: MESSAGE" and returns `code`.
int report_error(const std::string& message, int code);

}  // namespace cifar
