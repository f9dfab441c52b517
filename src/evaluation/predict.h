// `cifar10 predict --load-model CKPT IMAGE_OR_DIR...`: classifies image
// files with a saved model, one line per file, and optionally writes the
// predictions to a .json or .csv file.
#pragma once
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "config/cli.h"

namespace cifar {

// Files found in the inputs, in order: a file is taken as named (whatever
// its extension); a folder gives its .png/.jpg/.jpeg/.bmp files (any case,
// not recursive), sorted by name. A folder that cannot be listed or holds
// no such file gives an error instead: the folder as given, and the line
// "<folder>: <why>".
struct InputError {
  std::string input;
  std::string message;
};
struct ImageInputs {
  std::vector<std::filesystem::path> files;
  std::vector<InputError> errors;
  // Per folder, what was passed over (subfolders, other files, dangling
  // links), so a folder of .webp or of subfolders is not a silent no-op.
  std::vector<std::string> notes;
};
ImageInputs expand_image_inputs(const std::vector<std::string>& inputs);

// Runs `predict`. Problems with the whole run (unknown --output extension,
// checked before anything is loaded; an unreadable checkpoint; --device cuda
// without CUDA) throw UserError. A file that cannot be classified gets its
// own "error: <file>: <why>" line on `err` and the others still run.
// Returns 0 if every input was classified; 2 (kExitBadInput) if some were
// bad input (missing, empty, corrupt or unsupported files, folders with no
// image); 1 (kExitRuntime) if any failed for another reason (out of memory).
// File names are printed through printable(), on both streams.
//
// --output FILE.json: [{"file", "predictions": [{"class", "confidence"}]}],
// failed files (and folders that gave no image) as {"file", "error"}; FILE.csv: file,rank,class,confidence,error
// (rank from 1, error empty; a failed file has one row with only file and
// error). Names that are not UTF-8 reach the JSON with U+FFFD in place of
// each invalid byte (json_text()).
int run_predict(const PredictOptions& options, std::ostream& out = std::cout,
                std::ostream& err = std::cerr);

}  // namespace cifar
