// Checks on a LibTorch archive's bytes (a checkpoint, or the model and
// optimiser archives nested in one) made before LibTorch loads them, and on
// the tensors it returns. LibTorch 1.13's reader is not hardened for
// hostile files: fuzz/checkpoint_fuzz made it allocate 4 and 28 GB, read
// past a heap buffer and crash in its TorchScript parser. cifar10 only ever
// needs to read archives of the shape LibTorch's OutputArchive writes, so
// anything else is refused here, with a UserError naming the file.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <string_view>

namespace cifar {

// Refuses, naming `source`, an archive that carries TorchScript other than
// attribute declarations, names a TorchScript class, is a legacy archive,
// holds a pickle with an opcode, length or memo index that does not fit, or
// declares a tensor storage larger than the record that fills it.
void check_archive(std::string_view bytes, const std::string& source);

// Refuses a tensor read from an archive whose sizes, strides and offset
// reach past its storage; `what` names it in the error.
void check_within_storage(const torch::Tensor& t, const std::string& source, const std::string& what);

// Reads every record of the zip `bytes` through libarchive, which checks
// each record's CRC-32 (LibTorch 1.13 builds miniz with the check off), and
// hands each one whole to `on_record` (null: read, checked and dropped).
// A damaged record, or records handed over that together expand past the
// size of the whole file (LibTorch and torch.save store them uncompressed;
// a zip bomb would not), throws UserError "<label> is corrupt: ..."
// (label: "checkpoint F", ...).
using ZipRecordSink = std::function<void(const std::string& name, std::string&& data)>;
void read_zip_records(std::string_view bytes, const std::string& label, const ZipRecordSink& on_record = nullptr);

}  // namespace cifar
