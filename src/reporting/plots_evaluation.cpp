#include "reporting/plots.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "common/error.h"
#include "reporting/format.h"
#include "reporting/gnuplot.h"
#include "reporting/plot_script.h"

namespace cifar {
namespace fs = std::filesystem;
using namespace plot;

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

fs::path plot_reliability_diagram(const std::vector<ReliabilityBin>& bins, double ece, const fs::path& dir,
                                  std::optional<double> ece_uncalibrated) {
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
     << "set multiplot title "
     // At most about 75 characters: a longer title runs off the 900-pixel
     // canvas at this font (the counts are in the lower panel).
     << gp_quote("Reliability diagram: ECE " + format_fixed(ece, 4) +
                 (ece_uncalibrated ? " (" + format_fixed(*ece_uncalibrated, 4) + " before temperature scaling)"
                                   : ", " + std::to_string(total) + " predictions"))
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
