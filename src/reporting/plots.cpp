#include "reporting/plots.h"

#include "reporting/format.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <locale>
#include <optional>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "reporting/gnuplot.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// Softmax outputs computed in float can land a rounding step above 1.
constexpr double kProbabilitySlack = 1e-6;

// Blue against orange, told apart under every common colour-vision
// deficiency (green against red is not, for 1 man in 12); each pair also
// differs in a second cue (line, frame or fill style), so greyscale and
// colour-blind readers lose nothing.
const char* const kTrainColour = "#1f77b4";
const char* const kValColour = "#ff7f0e";
const char* const kRightColour = "#1f77b4";
// Vermillion: the darker orange, readable as text on white.
const char* const kWrongColour = "#d55e00";
const char* const kRateColour = "#2ca02c";  // the learning rate has the panel to itself
// Darker shades for lines drawn over bars of the light ones.
const char* const kRightMeanColour = "#0b3c6e";
const char* const kWrongMeanColour = "#8f3a00";

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
std::string num(double v) {
  if (!std::isfinite(v)) return "?";
  Text t;
  t << v;
  return t.str();
}


bool is_probability(double v) { return v >= 0 && v <= 1 + kProbabilitySlack; }

// The lines every script starts with. `outfile` is preset by the runner to a
// temporary name; a user re-running the script gets <name>.png.
std::string script_header(const PlotSize& size, int font_pt, const std::string& about) {
  Text t;
  t << "# " << about << "\n"
    << "# Redraw from this folder: gnuplot " << size.name << ".gp\n"
    << "if (!exists(\"outfile\")) outfile = '" << size.name << ".png'\n"
    // noenhanced: class names such as "a_b" or "x^2" print as written;
    // rounded: thick frames close at their corners (butt ends leave a notch).
    << "set terminal pngcairo noenhanced rounded size " << size.width << "," << size.height
    << " font 'Sans," << font_pt << "'\n"
    << "set output outfile\n"
    << "set datafile missing '?'\n";
  return t.str();
}

// Writes the data files and the script, then renders; data first so the
// script on disk never names a file that is not there yet.
fs::path render(const fs::path& out_dir, const PlotSize& size,
            const std::vector<std::pair<std::string, std::string>>& data_files,
            const std::string& script) {
  const fs::path dir = out_dir.empty() ? fs::path(".") : out_dir;
  ensure_dir(dir);
  for (const auto& [name, bytes] : data_files) write_file_atomic(dir / name, bytes);
  const fs::path gp = dir / (std::string(size.name) + ".gp");
  write_file_atomic(gp, script);
  const fs::path png = dir / (std::string(size.name) + ".png");
  render_gnuplot(gp, png);
  return png;
}

void check_class_names(const std::vector<std::string>& class_names, size_t n, const std::string& what) {
  check_input(!class_names.empty(), what + ": no class names given");
  check_input(class_names.size() == n, what + ": " + std::to_string(n) + " values but " +
                                           std::to_string(class_names.size()) + " class names",
              "pass one value per class, in class-index order");
}

// `set xtics ('airplane' 0, 'automobile' 1, ...)`.
std::string name_tics(const std::vector<std::string>& names) {
  std::string s = "(";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += gp_quote(names[i]) + " " + std::to_string(i);
  }
  return s + ")";
}

// A tic step from 1, 2, 5, 10, 20, 50, ... giving at most ~12 labelled epochs.
int64_t epoch_tic_step(int64_t epochs) {
  int64_t step = 1;
  for (int64_t decade = 1;; decade *= 10) {
    for (int64_t m : {1, 2, 5}) {
      step = m * decade;
      if (epochs / step <= 12) return step;
    }
  }
}

}  // namespace

fs::path plot_training_history(const std::vector<Logs>& history, const fs::path& dir) {
  check_input(!history.empty(), "training history is empty: no epoch to plot",
              "train for at least one epoch, or skip the history plot");
  const std::array<const char*, 5> keys = {"loss", "val_loss", "accuracy", "val_accuracy", "lr"};
  const int64_t epochs = static_cast<int64_t>(history.size());
  std::array<bool, 5> has{};
  Text data;
  data << "# Training history, one row per epoch; '?' = not recorded\n"
       << "# epoch loss val_loss accuracy val_accuracy lr\n";
  double lr_min = std::numeric_limits<double>::infinity(), lr_max = 0;
  // Best epochs marked on the curves: lowest val_loss, highest val_accuracy.
  int64_t best_loss_epoch = 0, best_acc_epoch = 0;
  double best_loss = 0, best_acc = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    data << (e + 1);
    for (size_t k = 0; k < keys.size(); ++k) {
      auto it = history[e].find(keys[k]);
      // The trainer logs the rate as Keras 3 does, "learning_rate".
      if (k == 4 && it == history[e].end()) it = history[e].find("learning_rate");
      double v = it == history[e].end() ? NAN : it->second;
      if (k == 4 && !(v > 0)) v = NAN;  // a log axis cannot show lr <= 0
      if (std::isfinite(v)) {
        has[k] = true;
        if (k == 4) {
          lr_min = std::min(lr_min, v);
          lr_max = std::max(lr_max, v);
        }
        if (k == 1 && (best_loss_epoch == 0 || v < best_loss)) best_loss = v, best_loss_epoch = e + 1;
        if (k == 3 && (best_acc_epoch == 0 || v > best_acc)) best_acc = v, best_acc_epoch = e + 1;
      }
      data << " " << num(v);
    }
    data << "\n";
  }

  // Points hide the curve's shape beyond ~40 epochs; lines alone then.
  const std::string style =
      epochs <= 40 ? "with linespoints pt 7 ps 0.8 lw 2" : "with lines lw 2";
  const std::string file = "'training_history.dat'";
  // The best epoch as a ringed point named in the key: a free-standing label
  // would collide with the curves somewhere.
  auto best_point = [&](int64_t epoch, const std::string& column, const std::string& text) {
    Text t;
    t << ", \\\n     " << file << " every ::" << epoch - 1 << "::" << epoch - 1 << " using 1:" << column
      << " with points pt 6 ps 2.5 lw 2 lc rgb 'black' title " << gp_quote(text);
    return t.str();
  };
  auto empty_panel = [](const std::string& what) {
    return "set yrange [0:1]\nunset ytics\nset label 11 " + gp_quote("no " + what + " recorded") +
           " at graph 0.5,0.5 center\nplot NaN notitle\nunset label 11\nset ytics\nset autoscale y\n";
  };

  Text gp;
  gp << script_header(kTrainingHistoryPlot, 13, "Training history: loss, accuracy, learning rate")
     << "set multiplot layout 1,3 title " << gp_quote("Training history (" + std::to_string(epochs) +
                                                      (epochs == 1 ? " epoch)" : " epochs)"))
     << " font ',17'\n"
     << "set xlabel 'Epoch'\nset grid lc rgb '#dddddd'\n"
     << "set xrange " << (epochs > 1 ? "[1:" + std::to_string(epochs) + "]" : std::string("[0.5:1.5]"))
     << "\nset xtics " << epoch_tic_step(epochs) << "\n"
     // Keys below the panels, never over a point (inside, a key hid the
     // train points of a 1-epoch run, which sit at the panel's centre and
     // its top or bottom); one bottom margin for all three panels keeps
     // their x axes level. The y offsets keep the extreme points off the
     // frame.
     << "set key below box width 1 samplen 2\nset bmargin 8\n"
     << "set offsets 0, 0, graph 0.06, graph 0.06\n";

  gp << "\n# Panel 1: loss\nset title 'Loss' font ',15'\nset ylabel 'Cross-entropy loss'\n";
  if (has[0] || has[1]) {
    std::vector<std::string> parts;
    if (has[0]) parts.push_back(file + " using 1:2 " + style + " lc rgb '" + kTrainColour + "' title 'train'");
    if (has[1]) parts.push_back(file + " using 1:3 " + style + " lc rgb '" + kValColour + "' title 'validation'");
    gp << "plot " << parts[0] << (parts.size() > 1 ? ", \\\n     " + parts[1] : "");
    if (best_loss_epoch) {
      gp << best_point(best_loss_epoch, "3",
                       "lowest val " + format_fixed(best_loss, 4) + " (epoch " + std::to_string(best_loss_epoch) + ")");
    }
    gp << "\n";
  } else {
    gp << empty_panel("loss");
  }

  gp << "\n# Panel 2: accuracy (fractions in the data, % on the axis)\n"
     << "set title 'Accuracy' font ',15'\nset ylabel 'Accuracy (%)'\n";
  if (has[2] || has[3]) {
    std::vector<std::string> parts;
    if (has[2]) parts.push_back(file + " using 1:($4*100) " + style + " lc rgb '" + kTrainColour + "' title 'train'");
    if (has[3]) parts.push_back(file + " using 1:($5*100) " + style + " lc rgb '" + kValColour + "' title 'validation'");
    gp << "plot " << parts[0] << (parts.size() > 1 ? ", \\\n     " + parts[1] : "");
    if (best_acc_epoch) {
      gp << best_point(best_acc_epoch, "($5*100)",
                       "best val " + format_fixed(best_acc * 100, 2) + "% (epoch " + std::to_string(best_acc_epoch) + ")");
    }
    gp << "\n";
  } else {
    gp << empty_panel("accuracy");
  }

  gp << "\n# Panel 3: learning rate\nset title 'Learning rate' font ',15'\n"
     << "set ylabel 'Learning rate (log scale)'\nunset key\n";
  if (has[4]) {
    // Explicit range: a constant rate would otherwise give an empty log range.
    gp << "set logscale y\nset format y '%.0e'\nset yrange [" << num(lr_min / 2) << ":"
       << num(lr_max * 2) << "]\n";
    // Within less than a decade the axis would show one power of ten or
    // none: the first and last rates get tics of their own.
    if (lr_max < 10 * lr_min) {
      auto tic = [](double v) {
        char label[32];
        std::snprintf(label, sizeof label, "%.2e", v);
        return gp_quote(label) + " " + num(v);
      };
      gp << "set ytics add (" << tic(lr_min) << (lr_max > lr_min ? ", " + tic(lr_max) : std::string()) << ")\n";
    }
    gp << "plot " << file << " using 1:6 " << style << " lc rgb '" << kRateColour << "' notitle\n";
  } else {
    gp << empty_panel("learning rate");
  }
  gp << "unset multiplot\n";
  return render(dir, kTrainingHistoryPlot, {{"training_history.dat", data.str()}}, gp.str());
}

fs::path plot_confusion_matrix(const std::vector<std::vector<int64_t>>& counts,
                           const std::vector<std::string>& class_names, const fs::path& dir) {
  const size_t n = counts.size();
  check_input(n > 0, "confusion matrix is empty");
  check_class_names(class_names, n, "confusion matrix");
  int64_t total = 0, diagonal = 0;
  for (size_t i = 0; i < n; ++i) {
    check_input(counts[i].size() == n, "confusion matrix row " + std::to_string(i) + " has " +
                                           std::to_string(counts[i].size()) + " columns, expected " +
                                           std::to_string(n),
                "pass counts[true][predicted], square, one row and column per class");
    for (size_t j = 0; j < n; ++j) {
      check_input(counts[i][j] >= 0, "confusion matrix count [" + std::to_string(i) + "][" +
                                         std::to_string(j) + "] is negative (" +
                                         std::to_string(counts[i][j]) + ")");
      total += counts[i][j];
      if (i == j) diagonal += counts[i][j];
    }
  }

  Text data;
  data << "# Confusion matrix: one block per true class (blank line between),\n"
       << "# predicted true fraction_of_true_class count\n";
  for (size_t i = 0; i < n; ++i) {
    int64_t row = 0;
    for (int64_t c : counts[i]) row += c;
    for (size_t j = 0; j < n; ++j) {
      const double frac = row > 0 ? static_cast<double>(counts[i][j]) / static_cast<double>(row) : 0.0;
      data << j << " " << i << " " << num(frac) << " " << counts[i][j] << "\n";
    }
    data << "\n";
  }

  // Cell numbers fit up to 25 classes at this size; smaller type past 10.
  const bool write_counts = n <= 25;
  const int cell_font = n <= 10 ? 11 : (n <= 16 ? 9 : 7);
  const int tic_font = n <= 10 ? 12 : (n <= 25 ? 9 : 7);
  const std::string accuracy =
      total > 0 ? format_fixed(100.0 * static_cast<double>(diagonal) / static_cast<double>(total), 2) + "%"
                : std::string("n/a");
  Text gp;
  gp << script_header(kConfusionMatrixPlot, 12, "Confusion matrix: rows = true class, columns = predicted")
     << "set title " << gp_quote("Confusion matrix (" + std::to_string(total) +
                                 " images, accuracy " + accuracy +
                                 "; colour = fraction of the true class)")
     << " font ',14'\n"
     << "set xlabel 'Predicted' font ',14'\nset ylabel 'True' font ',14'\n"
     << "set xrange [-0.5:" << n - 0.5 << "]\n"
     << "set yrange [" << n - 0.5 << ":-0.5]  # first class at the top\n"
     << "set xtics " << name_tics(class_names) << " rotate by 45 right scale 0 font '," << tic_font << "'\n"
     << "set ytics " << name_tics(class_names) << " scale 0 font '," << tic_font << "'\n"
     << "set cbrange [0:1]\nset cblabel 'Fraction of the true class'\n"
     << "set palette defined (0 '#f7fbff', 0.25 '#c6dbef', 0.5 '#6baed6', 0.75 '#2171b5', 1 '#08306b')\n"
     << "set size ratio -1\nunset key\n"
     << "plot 'confusion_matrix.dat' using 1:2:3 with image";
  if (write_counts) {
    // White numbers on the dark half of the palette, black on the light half.
    gp << ", \\\n     '' using 1:2:(sprintf('%d', $4)):($3 > 0.5 ? 0xffffff : 0x000000) "
       << "with labels tc rgb variable font '," << cell_font << "'";
  }
  gp << "\n";
  return render(dir, kConfusionMatrixPlot, {{"confusion_matrix.dat", data.str()}}, gp.str());
}

fs::path plot_class_accuracy(const std::vector<double>& accuracy, const std::vector<std::string>& class_names,
                         const fs::path& dir) {
  const size_t n = accuracy.size();
  check_input(n > 0, "per-class accuracy is empty");
  check_class_names(class_names, n, "per-class accuracy");
  double sum = 0;
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = accuracy[i];
    check_input(std::isnan(a) || is_probability(a),
                "accuracy of class " + std::to_string(i) + " (" + class_names[i] + ") is " + num(a) +
                    ", outside [0,1]",
                "pass fractions, not percentages; NaN for a class with no samples");
    if (!std::isnan(a)) sum += a, ++finite;
  }

  const std::optional<double> mean =
      finite > 0 ? std::optional<double>(100 * sum / static_cast<double>(finite)) : std::nullopt;
  // Where each value label goes, in % units (the y range is 0..115, ~4.8
  // px per unit at 700 px; a label is ~3 units tall): 3 above its bar,
  // unless the mean line would cross it there. Then inside the bar's top
  // in white, where the line, drawn behind the bars, is hidden; a bar too
  // short to hold it gets its label above the line instead.
  constexpr double kAbove = 3, kClear = 3, kInside = 3.5, kShortest = 9;
  auto label_place = [&](double top) -> std::pair<double, bool> {  // (y, white)
    if (std::isnan(top)) return {NAN, false};  // no bar: "n/a" is a label of its own
    const double y = top + kAbove;
    if (!mean || std::fabs(y - *mean) >= kClear) return {y, false};
    if (top >= kShortest) return {top - kInside, true};
    return {*mean + kClear + 1, false};
  };

  // Class names live in the script (as tics): the script's quoting rules are
  // simpler than those for strings inside data files.
  Text data;
  data << "# Per-class accuracy (%); '?' = class had no samples\n"
       << "# class_index accuracy_percent label_y label_rgb\n";
  for (size_t i = 0; i < n; ++i) {
    const auto [y, white] = label_place(accuracy[i] * 100);
    data << i << " " << num(accuracy[i] * 100) << " " << num(y) << " " << (white ? 0xffffff : 0x000000) << "\n";
  }

  Text gp;
  gp << script_header(kClassAccuracyPlot, 13, "Per-class accuracy on the test set")
     << "set title 'Per-class accuracy' font ',16'\n"
     << "set ylabel 'Accuracy (%)'\nset xlabel 'Class'\n"
     << "set xrange [-0.6:" << n - 0.4 << "]\nset yrange [0:115]\nset ytics 0,10,100\n"
     << "set xtics " << name_tics(class_names) << " scale 0"
     << (n > 10 ? " rotate by 45 right" : "") << "\n"
     << "set grid ytics lc rgb '#dddddd'\nset boxwidth 0.7\nset style fill solid 0.85 border -1\n"
     << "set key top right box opaque width 2 samplen 3\n";
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(accuracy[i])) {
      gp << "set label " << (i + 1) << " 'n/a' at " << i << "," << num(label_place(0).first) << " center\n";
    }
  }
  // The mean first, so the bars cover it and only the gaps show it.
  gp << "plot ";
  if (mean) {
    gp << num(*mean) << " with lines dt 2 lw 2 lc rgb '" << kWrongColour << "' title "
       << gp_quote("mean " + format_fixed(*mean, 1) + "%") << ", \\\n     ";
  }
  gp << "'class_accuracy.dat' using 1:2 with boxes lc rgb '" << kTrainColour << "' notitle, \\\n"
     << "     '' using 1:3:(sprintf('%.1f%%', $2)):4 with labels tc rgb variable font '," << (n <= 10 ? 12 : 9)
     << "' notitle\n";
  return render(dir, kClassAccuracyPlot, {{"class_accuracy.dat", data.str()}}, gp.str());
}

fs::path plot_prediction_samples(const torch::Tensor& images_u8, const std::vector<int64_t>& true_labels,
                             const std::vector<int64_t>& predicted,
                             const std::vector<double>& confidence,
                             const std::vector<std::string>& class_names, const fs::path& dir) {
  check_input(images_u8.defined() && images_u8.dim() == 4 && images_u8.size(1) == 3 &&
                  images_u8.scalar_type() == torch::kUInt8,
              "prediction samples: images must be uint8 [N,3,H,W], got " +
                  (images_u8.defined() ? std::string(c10::toString(images_u8.scalar_type())) + " " +
                                             c10::str(images_u8.sizes())
                                       : std::string("an undefined tensor")));
  const int64_t total = images_u8.size(0);
  const int64_t height = images_u8.size(2), width = images_u8.size(3);
  check_input(total > 0 && height > 0 && width > 0, "prediction samples: no images given");
  const auto count_msg = [&](const char* what, size_t got) {
    return std::string("prediction samples: ") + std::to_string(total) + " images but " +
           std::to_string(got) + " " + what;
  };
  check_input(true_labels.size() == static_cast<size_t>(total), count_msg("true labels", true_labels.size()));
  check_input(predicted.size() == static_cast<size_t>(total), count_msg("predictions", predicted.size()));
  check_input(confidence.size() == static_cast<size_t>(total), count_msg("confidences", confidence.size()));
  check_input(!class_names.empty(), "prediction samples: no class names given");
  const int64_t classes = static_cast<int64_t>(class_names.size());
  const int64_t n = std::min(total, kMaxPredictionSamples);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t label : {true_labels[i], predicted[i]}) {
      check_input(label >= 0 && label < classes,
                  "prediction samples: label " + std::to_string(label) + " of image " +
                      std::to_string(i) + " is outside [0," + std::to_string(classes) + ")");
    }
    check_input(is_probability(confidence[i]), "prediction samples: confidence " +
                                                   num(confidence[i]) + " of image " +
                                                   std::to_string(i) + " is outside [0,1]");
  }

  // HWC bytes, the order gnuplot's rgbimage reads.
  const torch::Tensor hwc =
      images_u8.slice(0, 0, n).to(torch::kCPU).permute({0, 2, 3, 1}).contiguous();
  const std::string pixels(reinterpret_cast<const char*>(hwc.data_ptr<uint8_t>()),
                           static_cast<size_t>(hwc.numel()));

  const int64_t cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + cols - 1) / cols;
  // Plot units: each image drawn 32 units square, in a 44 x 50 cell whose
  // top 16 units hold the two title lines and a gap to the image above; at
  // 5 columns a cell is ~190 px, room for "pred: automobile (99.9%)" at 10 pt.
  constexpr double kTile = 32, kCellW = 44, kCellH = 50;
  const int font = cols >= 5 ? 10 : (cols == 4 ? 11 : 13);
  int64_t right = 0;
  Text gp;
  gp << script_header(kPredictionSamplesPlot, 12,
                      "Sample test predictions; pixels in prediction_samples.rgb (uint8 RGB, " +
                          std::to_string(width) + "x" + std::to_string(height) + " per image)")
     << "unset border\nunset tics\nunset key\nset size ratio -1\n"
     << "set lmargin 1\nset rmargin 1\nset bmargin 1\n"
     << "set xrange [0:" << cols * kCellW << "]\nset yrange [0:" << rows * kCellH << "]\n";
  Text plots;
  for (int64_t i = 0; i < n; ++i) {
    const bool ok = true_labels[i] == predicted[i];
    right += ok;
    const double ox = static_cast<double>(i % cols) * kCellW + (kCellW - kTile) / 2;
    const double oy = static_cast<double>(rows - 1 - i / cols) * kCellH + 2;
    const double cx = ox + kTile / 2;
    const std::string colour = ok ? kRightColour : kWrongColour;
    gp << "set label " << 2 * i + 1 << " " << gp_quote("true: " + class_names[true_labels[i]])
       << " at " << cx << "," << oy + kTile + 10 << " center tc rgb 'black' font '," << font << "'\n"
       << "set label " << 2 * i + 2 << " "
       << gp_quote("pred: " + class_names[predicted[i]] + " (" + format_fixed(confidence[i] * 100, 1) + "%)")
       << " at " << cx << "," << oy + kTile + 4 << " center tc rgb '" << colour << "' font '," << font << "'\n"
       // Right and wrong differ in colour and in the frame's line: thin
       // and solid, or thick and dashed.
       << "set object " << i + 1 << " rect from " << ox - 1 << "," << oy - 1 << " to " << ox + kTile + 1 << ","
       << oy + kTile + 1 << " fs empty border rgb '" << colour << "' " << (ok ? "lw 2" : "lw 3 dt 2") << " front\n";
    // origin is the centre of the first (bottom-left after flipy) pixel.
    const double dx = kTile / static_cast<double>(width), dy = kTile / static_cast<double>(height);
    plots << (i ? ", \\\n     " : "plot ") << "'prediction_samples.rgb' binary array=(" << width << ","
          << height << ") format='%uchar' skip=" << i * width * height * 3 << " dx=" << num(dx)
          << " dy=" << num(dy) << " origin=(" << num(ox + dx / 2) << "," << num(oy + dy / 2)
          << ") flipy with rgbimage";
  }
  gp << "set title " << gp_quote("Test predictions: " + std::to_string(right) + " of " +
                                 std::to_string(n) + " correct (wrong ones in orange, dashed frame)")
     << " font ',16'\n"
     << plots.str() << "\n";
  return render(dir, kPredictionSamplesPlot, {{"prediction_samples.rgb", pixels}}, gp.str());
}

fs::path plot_confidence_distribution(const std::vector<double>& correct_conf,
                                  const std::vector<double>& wrong_conf, const fs::path& dir) {
  check_input(!correct_conf.empty() || !wrong_conf.empty(),
              "confidence distribution: no predictions given");
  // 20 bins of 0.05: fine enough to show the pile-up near 1, coarse enough
  // that a few hundred wrong predictions still give a readable shape.
  constexpr int kBins = 20;
  struct Group {
    std::array<int64_t, kBins> counts{};
    double sum = 0;
  };
  auto bin = [&](const std::vector<double>& values, const char* which) {
    Group g;
    for (size_t i = 0; i < values.size(); ++i) {
      const double v = values[i];
      check_input(is_probability(v), std::string("confidence distribution: ") + which +
                                         " confidence " + std::to_string(i) + " is " + num(v) +
                                         ", outside [0,1]");
      g.counts[std::min(kBins - 1, static_cast<int>(v * kBins))] += 1;
      g.sum += std::min(v, 1.0);
    }
    return g;
  };
  const Group right = bin(correct_conf, "correct"), wrong = bin(wrong_conf, "wrong");
  const double n_right = static_cast<double>(correct_conf.size());
  const double n_wrong = static_cast<double>(wrong_conf.size());

  Text data;
  data << "# Confidence histogram, each group as % of its own predictions\n"
       << "# bin_lo bin_hi correct_count wrong_count correct_percent wrong_percent\n";
  for (int b = 0; b < kBins; ++b) {
    data << num(static_cast<double>(b) / kBins) << " " << num(static_cast<double>(b + 1) / kBins)
         << " " << right.counts[b] << " " << wrong.counts[b] << " "
         << num(n_right > 0 ? 100.0 * static_cast<double>(right.counts[b]) / n_right : 0.0) << " "
         << num(n_wrong > 0 ? 100.0 * static_cast<double>(wrong.counts[b]) / n_wrong : 0.0) << "\n";
  }
  auto legend = [](const char* what, size_t count, double sum) {
    std::string s = std::string(what) + " (n=" + std::to_string(count);
    if (count > 0) s += ", mean " + format_fixed(sum / static_cast<double>(count), 3);
    return s + ")";
  };

  Text gp;
  gp << script_header(kConfidenceDistributionPlot, 13, "Confidence of correct and wrong predictions")
     << "set title 'Confidence distribution (top-1 softmax probability)' font ',16'\n"
     << "set xlabel 'Confidence'\nset ylabel 'Share of the group (%)'\n"
     << "set xrange [0:1]\nset xtics 0,0.1,1\nset yrange [0:*]\n"
     // Headroom above the tallest bar for the key, which would otherwise
     // hide the top of a bar under it (a weak model's pile sits at the
     // left, a strong one's at the right).
     << "set offsets 0, 0, graph 0.2, 0\n"
     << "set grid ytics lc rgb '#dddddd'\nset key top left box opaque\n";
  // The means as lines over the bars, ending below the key (the top 15%).
  if (n_right > 0) {
    gp << "set arrow 1 from " << num(right.sum / n_right) << ", graph 0 to " << num(right.sum / n_right)
       << ", graph 0.85 nohead front dt 2 lw 2 lc rgb '" << kRightMeanColour << "'\n";
  }
  if (n_wrong > 0) {
    gp << "set arrow 2 from " << num(wrong.sum / n_wrong) << ", graph 0 to " << num(wrong.sum / n_wrong)
       << ", graph 0.85 nohead front dt 3 lw 3 lc rgb '" << kWrongMeanColour << "'\n";
  }
  // Correct: a translucent solid fill; wrong: a hatch of its own colour
  // over it, so the two groups differ in pattern as well as in colour.
  gp << "plot 'confidence_distribution.dat' using (($1+$2)/2):5:($2-$1) with boxes "
     << "fs transparent solid 0.5 border -1 lc rgb '" << kRightColour << "' title "
     << gp_quote(legend("correct", correct_conf.size(), right.sum))
     << ", \\\n     '' using (($1+$2)/2):6:($2-$1) with boxes fs transparent pattern 4 border lw 1.5 lc rgb '"
     << kWrongColour << "' title " << gp_quote(legend("wrong", wrong_conf.size(), wrong.sum)) << "\n";
  return render(dir, kConfidenceDistributionPlot, {{"confidence_distribution.dat", data.str()}}, gp.str());
}

fs::path plot_reliability_diagram(const std::vector<ReliabilityBin>& bins, double ece, const fs::path& dir) {
  check_input(!bins.empty(), "reliability diagram: no bins given");
  check_input(std::isfinite(ece) && ece >= 0 && ece <= 1,
              "reliability diagram: ECE " + num(ece) + " is outside [0,1]");
  int64_t total = 0;
  for (size_t i = 0; i < bins.size(); ++i) {
    const auto& b = bins[i];
    const std::string at = "reliability bin " + std::to_string(i);
    check_input(b.lo >= 0 && b.lo < b.hi && b.hi <= 1 + kProbabilitySlack,
                at + " has range [" + num(b.lo) + "," + num(b.hi) + "], not within [0,1]");
    check_input(b.count >= 0, at + " has a negative count");
    if (b.count > 0) {
      check_input(is_probability(b.accuracy) && is_probability(b.mean_confidence),
                  at + " has accuracy " + num(b.accuracy) + " / confidence " + num(b.mean_confidence) +
                      ", outside [0,1]");
    }
    total += b.count;
  }

  Text data;
  data << "# Reliability bins; '?' = empty bin\n# lo hi count accuracy mean_confidence\n";
  for (const auto& b : bins) {
    data << num(b.lo) << " " << num(b.hi) << " " << b.count << " " << num(b.count ? b.accuracy : NAN)
         << " " << num(b.count ? b.mean_confidence : NAN) << "\n";
  }
  const std::string file = "'reliability_diagram.dat'";
  Text gp;
  gp << script_header(kReliabilityDiagramPlot, 13, "Reliability diagram: accuracy per confidence bin")
     << "set multiplot title " << gp_quote("Reliability diagram (ECE = " + format_fixed(ece, 4) + ", " +
                                           std::to_string(total) + " predictions)")
     << " font ',16'\n"
     // Shared margins so both panels' x axes line up.
     << "set lmargin at screen 0.12\nset rmargin at screen 0.95\n"
     << "set xrange [0:1]\nset xtics 0,0.1,1\nset grid lc rgb '#dddddd'\n"
     << "\n# Top panel: accuracy against confidence\n"
     << "set tmargin at screen 0.92\nset bmargin at screen 0.36\n"
     << "set yrange [0:1]\nset ytics 0,0.1,1\nset ylabel 'Accuracy'\nset format x ''\n"
     << "set key top left box opaque\n"
     << "plot " << file << " using (($1+$2)/2):($4/2):1:2:(0):4 with boxxyerror fs solid 0.8 border -1 lc rgb '"
     << kTrainColour << "' title 'accuracy', \\\n"
     // The gap hatched in its own colour, border included: the key's swatch
     // is then the same colour as the gap, which a translucent fill was not
     // (pink in the key, purple over the blue bars).
     << "     " << file << " using (($1+$2)/2):4:1:2:4:5 with boxxyerror fs transparent pattern 4 border "
     << "lw 1.5 lc rgb '" << kWrongColour << "' title 'gap to mean confidence', \\\n"
     << "     x with lines dt 2 lw 2 lc rgb 'gray40' title 'perfect calibration'\n"
     << "\n# Bottom panel: predictions per bin\n"
     << "set tmargin at screen 0.33\nset bmargin at screen 0.08\n"
     << "set yrange [0:*]\nset ytics autofreq\nset ylabel 'Predictions'\nset format x '%g'\n"
     << "set xlabel 'Confidence'\nunset key\n"
     << "plot " << file << " using (($1+$2)/2):($3/2):1:2:(0):3 with boxxyerror fs solid 0.6 border -1 "
     << "lc rgb 'gray60' notitle\n"
     << "unset multiplot\n";
  return render(dir, kReliabilityDiagramPlot, {{"reliability_diagram.dat", data.str()}}, gp.str());
}

}  // namespace cifar
