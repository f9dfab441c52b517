// Number formats, one per kind, shared by the console, the plots and the
// HTML report: percentages to two decimals, losses and rates to four
// significant digits, durations as "11 min 44 s". All in the classic
// locale, so a user's LC_NUMERIC never puts commas into gnuplot data or HTML.
#pragma once
#include <cmath>
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

// 0.874391 -> "87.44%".
inline std::string format_percent(double fraction) { return format_fixed(fraction * 100.0, 2) + "%"; }

// Four significant digits: 0.5551, 1.136, 12.35, 2.5e-05 (scientific below
// 1e-3 and from 1e5, so a reduced learning rate does not print as 0.0000).
inline std::string format_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  std::ostringstream o;
  o.imbue(std::locale::classic());
  const double a = std::abs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) {
    o << std::scientific << std::setprecision(3) << v;
  } else {
    const int integer_digits = a < 1 ? 1 : static_cast<int>(std::floor(std::log10(a))) + 1;
    o << std::fixed << std::setprecision(std::max(0, 4 - integer_digits)) << v;
  }
  return o.str();
}

// "42.3 s" under a minute, "11 min 44 s", "2 h 05 min".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  if (seconds < 59.95) return format_fixed(seconds, 1) + " s";
  const long s = std::lround(seconds);
  std::ostringstream o;
  if (s < 3600) {
    o << s / 60 << " min " << s % 60 << " s";
  } else {
    o << s / 3600 << " h " << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << " min";
  }
  return o.str();
}

// Metric values by kind, from their Keras names: accuracies as
// percentages, everything else (losses, the learning rate) as numbers.
inline std::string format_metric(const std::string& name, double v) {
  return name.find("accuracy") != std::string::npos ? format_percent(v) : format_number(v);
}

}  // namespace cifar
