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
//   "training"  contents of training_summary.json (model, epochs, time, ...)
//   "inference" contents of inference_results.json (test accuracy, top-3,
//               loss; "per_class" as an array of objects with a "class" /
//               "name" member, or an object keyed by class name)
//   "config"    the resolved configuration
// Headline numbers are looked up under the keys the pipeline writes
// (inference: accuracy, top3_accuracy, loss, calibration.ece; training:
// epochs_run, wall_seconds, best_metrics.val_accuracy at best_epoch, and
// test.* when there is no inference part), then under other usual names
// (test_accuracy, epochs_trained, ...); every other scalar is listed in
// that section's table, so nothing present is dropped. A null in a
// per-class row (a ratio with nothing to divide by) shows as "n/a". Plots: exactly the PNGs in `plots` when given
// (the run's own, so a stale PNG left in results_dir by an earlier run in
// the same folder is not shown under a caption that does not apply);
// otherwise every PNG under results_dir (up to two folders deep; hidden
// files, i.e. temporaries, skipped). Either way the known ones come first,
// in pipeline order. Every string from `summary` and every file name is
// HTML-escaped.
void write_html_report(const std::filesystem::path& results_dir, const nlohmann::json& summary,
                       const std::optional<std::vector<std::filesystem::path>>& plots = std::nullopt);

std::string html_escape(std::string_view text);

// Standard base64 (RFC 4648, padded), as data URIs need.
std::string base64_encode(std::string_view bytes);

}  // namespace cifar
