// Number formatting shared by the plots and the HTML report: the classic
// locale, so a user's LC_NUMERIC never puts commas into gnuplot data or HTML.
#pragma once
#include <iomanip>
#include <locale>
#include <sstream>
#include <string>

namespace cifar {

inline std::string format_fixed(double v, int digits) {
  std::ostringstream o;
  o.imbue(std::locale::classic());
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace cifar
