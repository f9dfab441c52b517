// One self-contained HTML page summarising a run: headline numbers, tables
// and every plot, with the PNGs embedded as data URIs so the single file can
// be mailed or archived without its folder.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace cifar {

// Writes results_dir/report.html (atomically). `summary` is an object whose
// optional members are rendered when present:
//   "training"  contents of training_summary.json (model, epochs, time, ...)
//   "inference" contents of inference_results.json (test accuracy, top-3,
//               loss; "per_class" as an array of objects with a "class" /
//               "name" member, or an object keyed by class name)
//   "config"    the resolved configuration
// Headline numbers are looked up under the usual names (test_accuracy or
// accuracy, ...); every other scalar is listed in that section's table, so
// nothing present is dropped. Plots are the PNGs under results_dir (up to
// two folders deep; hidden files, i.e. temporaries, skipped), the known ones
// first in pipeline order. Every string from `summary` and every file name
// is HTML-escaped.
void write_html_report(const std::filesystem::path& results_dir, const nlohmann::json& summary);

std::string html_escape(std::string_view text);

// Standard base64 (RFC 4648, padded), as data URIs need.
std::string base64_encode(std::string_view bytes);

}  // namespace cifar
