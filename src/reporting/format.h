// Number formats, one per kind, shared by the console, the plots and the
// HTML report: percentages to two decimals, losses and rates to four
// significant digits, durations as "11 min 44 s". All in the classic
// locale, so a user's LC_NUMERIC never puts commas into gnuplot data or HTML.
#pragma once
#include <cmath>
#include <cstdint>
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

// 0.874391 -> "87.44%"; a ratio with nothing to divide by (NaN) is "n/a".
inline std::string format_percent(double fraction) {
  if (!std::isfinite(fraction)) return "n/a";
  return format_fixed(fraction * 100.0, 2) + "%";
}

// `digits` significant digits, trailing zeros kept so a column lines up:
// 2.278777 -> "2.279", 0.0123456 -> "0.01235". Below 1e-4 or from 1e6 on,
// scientific ("1.000e-06"): fixed notation would need a dozen digits, and
// a reduced learning rate must not print as 0.0000.
inline std::string format_number(double v, int digits = 4) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  if (v == 0) return format_fixed(0, digits - 1);
  const double magnitude = std::fabs(v);
  if (magnitude < 1e-4 || magnitude >= 1e6) {
    std::ostringstream o;
    o.imbue(std::locale::classic());
    o << std::scientific << std::setprecision(digits - 1) << v;
    return o.str();
  }
  // Rounded first, so 9.9996 becomes "10.00", not "10.000".
  const int exponent = static_cast<int>(std::floor(std::log10(magnitude)));
  const double scale = std::pow(10.0, digits - 1 - exponent);
  const double rounded = std::round(v * scale) / scale;
  const int rounded_exponent = static_cast<int>(std::floor(std::log10(std::fabs(rounded))));
  return format_fixed(rounded, std::max(0, digits - 1 - rounded_exponent));
}

// "5.7 s", "11 min 44 s", "2 h 03 min".
inline std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  if (s < 59.95) return format_fixed(s, 1) + " s";
  const auto total = static_cast<int64_t>(std::llround(s));
  const int64_t h = total / 3600, m = total % 3600 / 60, sec = total % 60;
  std::ostringstream o;
  if (h) {
    o << h << " h " << std::setw(2) << std::setfill('0') << m << " min";
  } else {
    o << m << " min " << std::setw(2) << std::setfill('0') << sec << " s";
  }
  return o.str();
}

// Metric values by kind, from their Keras names: accuracies as
// percentages, everything else (losses, the learning rate) as numbers.
inline std::string format_metric(const std::string& name, double v) {
  return name.find("accuracy") != std::string::npos ? format_percent(v) : format_number(v);
}

}  // namespace cifar
