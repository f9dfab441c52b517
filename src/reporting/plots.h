// The visualisation stage: PNG plots of training and evaluation, rendered by
// gnuplot (pngcairo). Inputs are plain data, so plotting depends on nothing
// but the numbers it is given.
//
// Layout: each plot writes three kinds of file into `dir` (the pipeline
// passes results/, where the original system put its PNGs):
//   <name>.png   the image, renamed into place only once complete
//   <name>.gp    the gnuplot script; `cd dir && gnuplot <name>.gp` redraws it
//   <name>.dat   its data, whitespace-separated text with a '#' header
//                (prediction_samples uses prediction_samples.rgb instead:
//                raw uint8 RGB pixels, H*W*3 bytes per image, row-major)
// Sizes are fixed (see kPlotSizes) so the report and the tests rely on them.
//
// Each function returns the path of the PNG it wrote (dir/<name>.png), so a
// caller can list what this run drew (write_html_report's `plots`).
//
// Every function validates its inputs first (UserError naming the bad value)
// and throws UserError with kGnuplotMissing (reporting/gnuplot.h) when
// gnuplot is not installed; a failed render leaves any previous PNG intact.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "metrics/eval_metrics.h"
#include "metrics/metric_sums.h"

namespace cifar {

struct PlotSize {
  const char* name;  // file stem
  int width;
  int height;
};

// Pixel sizes. History is three side-by-side panels, hence wide; the
// confusion matrix and sample grid are near-square to keep cells square.
inline constexpr PlotSize kTrainingHistoryPlot{"training_history", 1800, 600};
inline constexpr PlotSize kConfusionMatrixPlot{"confusion_matrix", 1000, 900};
inline constexpr PlotSize kClassAccuracyPlot{"class_accuracy", 1200, 700};
inline constexpr PlotSize kPredictionSamplesPlot{"prediction_samples", 1000, 1100};
inline constexpr PlotSize kConfidenceDistributionPlot{"confidence_distribution", 1200, 700};
inline constexpr PlotSize kReliabilityDiagramPlot{"reliability_diagram", 900, 1000};
inline constexpr PlotSize kPlotSizes[] = {kTrainingHistoryPlot,        kConfusionMatrixPlot,
                                          kClassAccuracyPlot,          kPredictionSamplesPlot,
                                          kConfidenceDistributionPlot, kReliabilityDiagramPlot};

// At most this many images go in the sample grid (5x5); beyond it the tiles
// get too small to read the labels.
inline constexpr int64_t kMaxPredictionSamples = 25;

// training_history.png: loss (`loss`, `val_loss`), accuracy (`accuracy`,
// `val_accuracy`, fractions, drawn as %) and learning rate (`lr`, log scale)
// against the 1-based epoch, train in blue and validation in orange, the
// keys below the panels (never over a point). Keys missing from an epoch
// leave a gap; a panel with no data at all says so. Throws UserError on an
// empty history.
std::filesystem::path plot_training_history(const std::vector<Logs>& history, const std::filesystem::path& dir);

// confusion_matrix.png: counts[true][predicted] as a heatmap coloured by the
// fraction of each true class, counts written in the cells (up to 25
// classes; beyond that the numbers would not fit).
std::filesystem::path plot_confusion_matrix(const std::vector<std::vector<int64_t>>& counts,
                           const std::vector<std::string>& class_names,
                           const std::filesystem::path& dir);

// class_accuracy.png: one bar per class (accuracy as a fraction in [0,1],
// drawn as %), value above each bar and the mean as a dashed line behind the
// bars; a value the line would cross goes inside its bar (or, for a short
// bar, above the line). NaN (a class with no test samples) is drawn as "n/a".
std::filesystem::path plot_class_accuracy(const std::vector<double>& accuracy,
                         const std::vector<std::string>& class_names,
                         const std::filesystem::path& dir);

// prediction_samples.png: the first min(N, 25) images in a square grid, each
// titled with the true and predicted class and the confidence; right ones in
// a thin solid blue frame, wrong ones in a thick dashed orange one (colour
// and line style, for colour-blind readers). images_u8: uint8 [N,3,H,W] on
// any device.
std::filesystem::path plot_prediction_samples(const torch::Tensor& images_u8, const std::vector<int64_t>& true_labels,
                             const std::vector<int64_t>& predicted,
                             const std::vector<double>& confidence,
                             const std::vector<std::string>& class_names,
                             const std::filesystem::path& dir);

// confidence_distribution.png: histograms (20 bins over [0,1]) of the top-1
// softmax probability of correct (blue, solid) and of wrong predictions
// (orange, hatched), each normalised to its own count so both shapes show;
// counts and means in the legend, the means as dashed and dotted lines.
std::filesystem::path plot_confidence_distribution(const std::vector<double>& correct_conf,
                                  const std::vector<double>& wrong_conf,
                                  const std::filesystem::path& dir);

// reliability_diagram.png: accuracy per confidence bin against the diagonal
// (perfect calibration), the gap to the mean confidence hatched in orange
// (the key's swatch the same), ECE in the title (and, after temperature
// scaling, the ECE before it), and the number of predictions per bin in a
// panel below.
std::filesystem::path plot_reliability_diagram(const std::vector<ReliabilityBin>& bins, double ece,
                                               const std::filesystem::path& dir,
                                               std::optional<double> ece_uncalibrated = std::nullopt);

}  // namespace cifar
