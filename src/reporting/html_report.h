// One self-contained HTML page summarising a run: headline numbers, tables
// and every plot, with the PNGs embedded as data URIs so the single file can
// be mailed or archived without its folder.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cifar {

// Writes results_dir/report.html (atomically). `summary` is an object whose
// optional members are rendered when present:
//   "training"  contents of training_summary.json (model, parameters, data,
//               epochs_run, stop_reason, times, history, best_epoch, test)
//   "inference" contents of inference_results.json (accuracy, top3_accuracy,
//               loss, calibration.ece, confidence, per_class keyed by class
//               name, class_names, data, checkpoint, tta)
//   "config"    the resolved configuration (config.json)
// The page has headline cards, then tables a person reads: the model (the
// shape that applies to its architecture, parameters), the data, training
// (a row per epoch, the best one marked; stop reason, time, images/s) and
// the test results (per-class table too), numbers rounded for reading
// (87.44%, losses to 4 significant digits, "11 min 44 s"); keys it does not
// know are not shown. The configuration follows in full, as recorded. A null
// in a per-class row (a ratio with nothing to divide by) shows as "n/a".
// Test figures come from "inference", else from the training record's
// "test". Plots: exactly the PNGs in `plots` when given (the run's own, so
// a stale PNG left in results_dir by an earlier run in the same folder is
// not shown under a caption that does not apply); otherwise every PNG under
// results_dir (up to two folders deep; hidden files, i.e. temporaries,
// skipped). Either way the known ones come first, in pipeline order. Every
// string from `summary` and every file name is HTML-escaped.
void write_html_report(const std::filesystem::path& results_dir, const nlohmann::json& summary,
                       const std::optional<std::vector<std::filesystem::path>>& plots = std::nullopt);

std::string html_escape(std::string_view text);

// Standard base64 (RFC 4648, padded), as data URIs need.
std::string base64_encode(std::string_view bytes);

}  // namespace cifar
