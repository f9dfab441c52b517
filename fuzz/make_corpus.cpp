// Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/:
// small valid inputs (a few KB each) that show libFuzzer each format's
// shape, and a few hostile ones next to the limits the parsers enforce.
// Deterministic, so re-running it changes nothing; scripts/fuzz.sh runs it
// only when a corpus folder is missing.
//   make_corpus <corpus-dir>
#include <archive.h>
#include <archive_entry.h>
#include <caffe2/serialize/inline_container.h>
#include <jpeglib.h>
#include <stb/stb_image_write.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "common/atomic_file.h"
#include "config/cli.h"
#include "data/cifar_reader.h"
#include "models/safetensors.h"
#include "reporting/tensorboard.h"
#include "training/callbacks/csv_logger.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/history.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/tensorboard_callback.h"
#include "training/callbacks/time_budget.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

void put(const fs::path& file, const std::string& bytes) {
  write_file_atomic(file, bytes);
  std::cout << file.string() << " (" << bytes.size() << " bytes)\n";
}

std::string records(int n) {
  std::string out;
  for (int r = 0; r < n; ++r) {
    out.push_back(static_cast<char>(r % 10));
    for (int i = 0; i < 3072; ++i) out.push_back(static_cast<char>((i * 7 + r * 13) & 0xFF));
  }
  return out;
}

const std::vector<std::string> kClasses{"airplane", "automobile", "bird", "cat", "deer",
                                        "dog",      "frog",       "horse", "ship", "truck"};

void cifar_batch(const fs::path& dir) {
  put(dir / "one_record.bin", records(1));
  put(dir / "two_records.bin", records(2));
  std::string meta;
  for (const auto& c : kClasses) meta += c + "\n";
  put(dir / "batches.meta.txt", meta + "\n");
}

void safetensors(const fs::path& dir) {
  put(dir / "two_tensors.safetensors",
      encode_safetensors({{"conv.weight", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                          {"steps", torch::tensor({1, 2, 3, 4}, torch::kInt64)}},
                         {{"format", "pt"}}));
  put(dir / "half.safetensors", encode_safetensors({{"h", torch::ones({3}, torch::kBFloat16)},
                                                    {"f", torch::zeros({2, 0}, torch::kFloat16)},
                                                    {"b", torch::ones({1}, torch::kBool)}}));
  put(dir / "empty.safetensors", encode_safetensors({}));
  // Refused: a name twice (readers disagree on which counts), and a shape
  // nested a level deeper than the format's three.
  auto raw = [](const std::string& header, size_t body) {
    std::string out(8, '\0');
    out[0] = static_cast<char>(header.size());
    return out + header + std::string(body, '\0');
  };
  const std::string entry = R"({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})";
  put(dir / "duplicate_name.safetensors", raw("{\"w\": " + entry + ", \"w\": " + entry + "}", 4));
  put(dir / "nested_shape.safetensors", raw(R"({"w": {"dtype": "F32", "shape": [[1]], "data_offsets": [0, 4]}})", 4));
}

// A net of one Linear layer under a CNN spec: the file has every record a
// real checkpoint has (meta, model, optimizer) at a few KB instead of 16 MB.
struct TinyNet : Net {
  TinyNet() { fc = register_module("fc", torch::nn::Linear(2, 2)); }
  torch::Tensor forward(torch::Tensor x) override { return fc(x); }
  std::string head_name() const override { return "fc"; }
  torch::nn::Linear fc{nullptr};
};

nlohmann::json run_meta(const ModelSpec& spec) {
  // The shape Trainer::run_state() writes, mid-epoch, with every callback.
  const Monitor monitor{"val_loss", "auto", 0.0};
  EarlyStopping::Options es;
  es.monitor = monitor;
  nlohmann::json callbacks = nlohmann::json::object();
  const std::vector<std::shared_ptr<Callback>> cbs{
      std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{}), std::make_shared<EarlyStopping>(es),
      std::make_shared<History>(), std::make_shared<CSVLogger>("logs"),
      std::make_shared<TensorBoardCallback>("logs"),
      std::make_shared<ModelCheckpoint>("best_model.pt", monitor, true)};
  for (const auto& cb : cbs) callbacks[cb->name()] = cb->state();
  callbacks["csv_logger"] = {{"file", "training_log_20260101_000000.csv"}, {"columns", {"accuracy", "loss"}}};
  callbacks["history"] = nlohmann::json::array({{{"epoch", 0}, {"loss", 2.1}, {"val_loss", "inf"}}});
  BudgetPlan budget;
  budget.budget_seconds = 600;
  budget.requested_epochs = 14;
  budget.epochs = budget.epochs_from_steps = 11;
  budget.images_per_second = 950;
  budget.epoch_seconds = 50.1;
  budget.final_eval_seconds = 29.4;
  budget.measure_seconds = 1.6;
  budget.timed_epoch_seconds = 51.2;
  callbacks["time_budget"] = budget.to_json();
  Config config;
  config.model.model_type = "cnn";
  return {{"format", kCheckpointFormat}, {"version", kCheckpointVersion}, {"spec", spec_to_json(spec)},
          {"config", config_to_json(config)}, {"epoch", 1}, {"step_in_epoch", 3}, {"global_step", 11},
          {"learning_rate", 0.001}, {"world_size", 1}, {"callbacks", callbacks},
          {"partial", {1.5, 20.0, 50.0, 96.0}}};
}

void checkpoint(const fs::path& dir) {
  ModelSpec spec;
  spec.type = "cnn";
  spec.depth = 0;
  spec.class_names = kClasses;
  spec.mean = {0.49, 0.48, 0.45};
  spec.std = {0.25, 0.24, 0.26};
  torch::manual_seed(1);
  TinyNet net;
  torch::optim::Adam adam(net.parameters());
  net.forward(torch::ones({1, 2})).sum().backward();
  adam.step();
  const fs::path file = dir / "tiny_file.pt.tmp";
  save_checkpoint(file.string(), net, spec, &adam, run_meta(spec));
  put(dir / "tiny_file.pt", std::string(1, '\0') + read_file(file));  // even first byte: a whole file
  fs::remove(file);
  put(dir / "meta.json", std::string(1, '\1') + run_meta(spec).dump());  // odd: the meta record
  auto newer = run_meta(spec);
  newer["version"] = 99;
  put(dir / "meta_v99.json", std::string(1, '\1') + newer.dump());
}

void config(const fs::path& dir) {
  put(dir / "config.json",
      R"({"model-type": "cnn", "epochs": 3, "batch_size": 64, "learning-rate": 0.01, "flip": false, "seed": 7})");
  put(dir / "config.yaml",
      "model_type: resnet\ndepth: 20\nepochs: 2\noptimizer: sgd\nnesterov: true\nlr-schedule: cosine\n"
      "warmup-epochs: 1\nrotation: 0\ndata_dir: /tmp/data\n# a comment\n");
  put(dir / "empty.yaml", "");
}

std::string png_bytes(int w, int h, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(w * h * channels));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37);
  std::string out;
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); };
  stbi_write_png_to_func(append, &out, w, h, channels, pixels.data(), w * channels);
  return out;
}

// 16x8 pixels through libjpeg: progressive, or CMYK (Photoshop's inverted
// kind, with its Adobe marker), which stb_image_write cannot make.
std::string libjpeg_bytes(bool progressive, bool cmyk) {
  const int width = 16, height = 8, components = cmyk ? 4 : 3;
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height * components));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 29);
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = width;
  info.image_height = height;
  info.input_components = components;
  info.in_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&info);
  if (progressive) jpeg_simple_progression(&info);
  jpeg_start_compress(&info, TRUE);
  for (JSAMPROW row = pixels.data(); info.next_scanline < info.image_height; row += width * components) {
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

// `v` as `n` little-endian bytes.
std::string le(uint32_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// `jpeg` with an EXIF segment (APP1) after its SOI holding one IFD with the
// orientation tag `orientation`, whose next-IFD offset is `next_ifd` (8:
// itself, a loop).
std::string with_exif(const std::string& jpeg, uint16_t orientation, uint32_t next_ifd) {
  const std::string tiff = "II" + le(42, 2) + le(8, 4) + le(1, 2) + le(0x112, 2) + le(3, 2) + le(1, 4) +
                           le(orientation, 4) + le(next_ifd, 4);
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t length = payload.size() + 2;
  return jpeg.substr(0, 2) + "\xff\xe1" + static_cast<char>(length >> 8) + static_cast<char>(length & 0xff) +
         payload + jpeg.substr(2);
}

// A BMP with a BITMAPINFOHEADER: `height` < 0 stores rows top-down; `bits`
// 1 takes a two-colour palette.
std::string bmp_bytes(int32_t width, int32_t height, uint16_t bits) {
  const std::string palette = bits == 1 ? le(0, 4) + le(0xffffff, 4) : "";
  const uint32_t row = (static_cast<uint32_t>(width) * bits + 31) / 32 * 4;
  std::string pixels(row * static_cast<uint32_t>(std::abs(height)), '\0');
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<char>(i * 53);
  const uint32_t offset = 14 + 40 + static_cast<uint32_t>(palette.size());
  return "BM" + le(offset + static_cast<uint32_t>(pixels.size()), 4) + le(0, 4) + le(offset, 4) + le(40, 4) +
         le(static_cast<uint32_t>(width), 4) + le(static_cast<uint32_t>(height), 4) + le(1, 2) + le(bits, 2) +
         le(0, 4) + le(static_cast<uint32_t>(pixels.size()), 4) + le(2835, 4) + le(2835, 4) + le(bits == 1 ? 2 : 0, 4) +
         le(0, 4) + palette + pixels;
}

void image(const fs::path& dir) {
  std::vector<uint8_t> rgb(8 * 6 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 11);
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); };
  std::string jpg, bmp;
  stbi_write_jpg_to_func(append, &jpg, 8, 6, 3, rgb.data(), 90);
  stbi_write_bmp_to_func(append, &bmp, 8, 6, 3, rgb.data());
  put(dir / "rgb.png", png_bytes(8, 6, 3));
  put(dir / "gray.png", png_bytes(5, 4, 1));
  put(dir / "rgba.png", png_bytes(4, 4, 4));
  put(dir / "rgb.jpg", jpg);
  put(dir / "rgb.bmp", bmp);
  put(dir / "progressive.jpg", libjpeg_bytes(true, false));
  put(dir / "cmyk.jpg", libjpeg_bytes(false, true));
  put(dir / "exif_orientation_6.jpg", with_exif(jpg, 6, 0));
  put(dir / "exif_ifd_loop.jpg", with_exif(jpg, 8, 8));
  put(dir / "top_down.bmp", bmp_bytes(8, -6, 24));
  put(dir / "rgb16.bmp", bmp_bytes(8, 6, 16));
  put(dir / "palette1.bmp", bmp_bytes(8, 6, 1));
}

// A tar of `files` (name, bytes) in cifar-10-batches-bin/, through the
// libarchive filter `filter` (ARCHIVE_FILTER_GZIP, _NONE, ...).
std::string tar_bytes(const std::vector<std::pair<std::string, std::string>>& files, int filter) {
  std::vector<char> buffer(1 << 20);
  size_t used = 0;
  struct archive* a = archive_write_new();
  archive_write_add_filter(a, filter);
  archive_write_set_format_ustar(a);
  archive_write_set_bytes_in_last_block(a, 1);  // no padding to 10 kB
  archive_write_open_memory(a, buffer.data(), buffer.size(), &used);
  for (const auto& [name, bytes] : files) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, ("cifar-10-batches-bin/" + name).c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(bytes.size()));
    archive_write_header(a, entry);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buffer.data(), used);
}

void archive(const fs::path& dir) {
  const std::vector<std::pair<std::string, std::string>> files = {{"batches.meta.txt", "airplane\nautomobile\n"},
                                                                   {"data_batch_1.bin", records(2)}};
  put(dir / "two_files.tar.gz", tar_bytes(files, ARCHIVE_FILTER_GZIP));
  put(dir / "two_files.tar", tar_bytes(files, ARCHIVE_FILTER_NONE));
  put(dir / "two_files.tar.bz2", tar_bytes(files, ARCHIVE_FILTER_BZIP2));
  // Two gzip members, one file each: zlib reads on into the second.
  put(dir / "two_members.tar.gz",
      tar_bytes({files[0]}, ARCHIVE_FILTER_GZIP) + tar_bytes({files[1]}, ARCHIVE_FILTER_GZIP));
  // Past the fuzz target's 64 kB cap per entry: refused at its header.
  put(dir / "large_entry.tar.gz", tar_bytes({{"data_batch_2.bin", std::string(100 << 10, '\0')}}, ARCHIVE_FILTER_GZIP));
}

void tensorboard(const fs::path& dir) {
  const fs::path logs = dir / "tmp_logs";
  {
    TensorBoardWriter w(logs);
    w.add_scalar("epoch_loss", 1.25, 0);
    w.add_histogram("conv.weight", torch::linspace(-1, 1, 16), 0);
    w.add_image("samples", torch::full({3, 2, 2}, 200, torch::kUInt8), 0);
    w.add_session_start(1);
  }
  const fs::path file = list_event_files(logs).at(0);
  put(dir / "events.tfevents", std::string(1, '\0') + read_file(file));  // even: a whole file
  // odd: length-prefixed Event payloads, framed by the target.
  std::string framed(1, '\1');
  for (const auto& e : read_tensorboard_events(file)) {
    const std::string payload = e.SerializeAsString();
    if (payload.size() > 255) continue;
    framed += static_cast<char>(payload.size()) + payload;
  }
  put(dir / "payloads.bin", framed);
  remove_tree(logs);
}

// The data.pkl that torch.save (PyTorch 1.13, pickle protocol 2) writes for
//   sd = OrderedDict(conv.weight=arange(6.).reshape(2, 3), conv.weight_t=<its
//   transpose>, steps=tensor(7)); sd._metadata = {"conv": {"version": 1}}
// byte for byte: every opcode and global a state dict uses, a view sharing
// a storage, and the BUILD of _metadata.
const char kStateDictPickle[] =
    "\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65\x64\x44\x69"
    "\x63\x74\x0a\x71\x00\x29\x52\x71\x01\x28\x58\x0b\x00\x00\x00\x63\x6f\x6e\x76\x2e\x77\x65\x69\x67"
    "\x68\x74\x71\x02\x63\x74\x6f\x72\x63\x68\x2e\x5f\x75\x74\x69\x6c\x73\x0a\x5f\x72\x65\x62\x75\x69"
    "\x6c\x64\x5f\x74\x65\x6e\x73\x6f\x72\x5f\x76\x32\x0a\x71\x03\x28\x28\x58\x07\x00\x00\x00\x73\x74"
    "\x6f\x72\x61\x67\x65\x71\x04\x63\x74\x6f\x72\x63\x68\x0a\x46\x6c\x6f\x61\x74\x53\x74\x6f\x72\x61"
    "\x67\x65\x0a\x71\x05\x58\x01\x00\x00\x00\x30\x71\x06\x58\x03\x00\x00\x00\x63\x70\x75\x71\x07\x4b"
    "\x06\x74\x71\x08\x51\x4b\x00\x4b\x02\x4b\x03\x86\x71\x09\x4b\x03\x4b\x01\x86\x71\x0a\x89\x68\x00"
    "\x29\x52\x71\x0b\x74\x71\x0c\x52\x71\x0d\x58\x0d\x00\x00\x00\x63\x6f\x6e\x76\x2e\x77\x65\x69\x67"
    "\x68\x74\x5f\x74\x71\x0e\x68\x03\x28\x28\x68\x04\x68\x05\x68\x06\x68\x07\x4b\x06\x74\x71\x0f\x51"
    "\x4b\x00\x4b\x03\x4b\x02\x86\x71\x10\x4b\x01\x4b\x03\x86\x71\x11\x89\x68\x00\x29\x52\x71\x12\x74"
    "\x71\x13\x52\x71\x14\x58\x05\x00\x00\x00\x73\x74\x65\x70\x73\x71\x15\x68\x03\x28\x28\x68\x04\x63"
    "\x74\x6f\x72\x63\x68\x0a\x4c\x6f\x6e\x67\x53\x74\x6f\x72\x61\x67\x65\x0a\x71\x16\x58\x01\x00\x00"
    "\x00\x31\x71\x17\x68\x07\x4b\x01\x74\x71\x18\x51\x4b\x00\x29\x29\x89\x68\x00\x29\x52\x71\x19\x74"
    "\x71\x1a\x52\x71\x1b\x75\x7d\x71\x1c\x58\x09\x00\x00\x00\x5f\x6d\x65\x74\x61\x64\x61\x74\x61\x71"
    "\x1d\x68\x00\x29\x52\x71\x1e\x58\x04\x00\x00\x00\x63\x6f\x6e\x76\x71\x1f\x7d\x71\x20\x58\x07\x00"
    "\x00\x00\x76\x65\x72\x73\x69\x6f\x6e\x71\x21\x4b\x01\x73\x73\x73\x62\x2e";

// A .pth zip as torch.save lays it out, written by the same writer it uses
// (PyTorchStreamWriter): <name>/data.pkl, <name>/data/<key>, <name>/version.
void pth(const fs::path& dir) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", kStateDictPickle, sizeof kStateDictPickle - 1);
    const auto floats = torch::arange(6, torch::kFloat32);
    const auto steps = torch::tensor({int64_t{7}});
    writer.writeRecord("data/0", floats.data_ptr(), 6 * sizeof(float));
    writer.writeRecord("data/1", steps.data_ptr(), sizeof(int64_t));
    writer.writeEndOfFile();
  }
  put(dir / "state_dict.pth", bytes);
}
}  // namespace
}  // namespace cifar

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <corpus-dir>\n";
    return 2;
  }
  const std::filesystem::path root = argv[1];
  cifar::cifar_batch(root / "cifar_batch");
  cifar::safetensors(root / "safetensors");
  cifar::archive(root / "archive");
  cifar::checkpoint(root / "checkpoint");
  cifar::config(root / "config");
  cifar::image(root / "image");
  cifar::tensorboard(root / "tensorboard");
  cifar::pth(root / "pth");
  return 0;
}
