// What every plot's gnuplot script shares: the palette, number and text
// formatting in the C locale, the script's first lines, and writing data,
// script and PNG in that order (plots.h describes the files).
#pragma once
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <locale>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "reporting/plots.h"

namespace cifar::plot {

// Softmax outputs computed in float can land a rounding step above 1.
constexpr double kProbabilitySlack = 1e-6;

// Blue against orange, told apart under every common colour-vision
// deficiency (green against red is not, for 1 man in 12); each pair also
// differs in a second cue (line, frame or fill style), so greyscale and
// colour-blind readers lose nothing.
inline const char* const kTrainColour = "#1f77b4";
inline const char* const kValColour = "#ff7f0e";
inline const char* const kRightColour = "#1f77b4";
// Vermillion: the darker orange, readable as text on white.
inline const char* const kWrongColour = "#d55e00";
inline const char* const kRateColour = "#2ca02c";  // the learning rate has the panel to itself
// Darker shades for lines drawn over bars of the light ones.
inline const char* const kRightMeanColour = "#0b3c6e";
inline const char* const kWrongMeanColour = "#8f3a00";

// Text streams with the "C" locale: gnuplot reads '.' as the decimal point
// whatever locale the process runs under.
struct Text {
  std::ostringstream out;
  Text() {
    out.imbue(std::locale::classic());
    out << std::setprecision(10);
  }
  template <typename T>
  Text& operator<<(const T& v) {
    out << v;
    return *this;
  }
  std::string str() const { return out.str(); }
};

// A data value; '?' is the script's `set datafile missing` marker.
std::string num(double v);

inline bool is_probability(double v) { return v >= 0 && v <= 1 + kProbabilitySlack; }

// The lines every script starts with. `outfile` is preset by the runner to a
// temporary name; a user re-running the script gets <name>.png.
std::string script_header(const PlotSize& size, int font_pt, const std::string& about);

// Writes the data files and the script, then renders; data first so the
// script on disk never names a file that is not there yet.
std::filesystem::path render(const std::filesystem::path& out_dir, const PlotSize& size,
                             const std::vector<std::pair<std::string, std::string>>& data_files,
                             const std::string& script);

void check_class_names(const std::vector<std::string>& class_names, size_t n, const std::string& what);

// `set xtics ('airplane' 0, 'automobile' 1, ...)`.
std::string name_tics(const std::vector<std::string>& names);

// A tic step from 1, 2, 5, 10, 20, 50, ... giving at most ~12 labelled epochs.
int64_t epoch_tic_step(int64_t epochs);

}  // namespace cifar::plot
