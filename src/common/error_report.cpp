#include "common/error_report.h"

#include <iostream>

#include "common/printable.h"

namespace cifar {
namespace {
ErrorReportHook hook = nullptr;
}  // namespace

void set_error_report_hook(ErrorReportHook h) { hook = h; }

int report_error(const std::string& message, int code) {
  if (hook) hook(code);
  std::cerr << "error: " << printable(message) << "\n";
  return code;
}

}  // namespace cifar
