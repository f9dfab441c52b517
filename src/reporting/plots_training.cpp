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

}  // namespace cifar
