// Hostile files handed to the real binary: devices and FIFOs where a file
// belongs, an --output predict cannot write, damaged safetensors weights,
// crafted JPEG and BMP files, a data folder with a symbolic link loop.
// Each is refused with one line naming it, exit code 2, before any work it
// would waste; or, for the images that are merely unusual, classified.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "data/cifar_reader.h"
#include "data/image_io.h"
#include "models/registry.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Runs cifar10 through the shell under a 3 GB address-space limit and a
// 60 s timeout, as `nobody` when `as_nobody` and we are root: a device read
// until memory runs out ends in bad_alloc there instead of taking the
// machine's memory, and a FIFO's endless wait ends as exit 124.
testing::ProcessResult run_limited(const std::vector<std::string>& args, const fs::path& log, bool as_nobody = false) {
#ifdef __SANITIZE_ADDRESS__
  // ASan reserves terabytes of address space for its shadow memory, so an
  // address-space limit stops it before main(); its own limit on resident
  // memory stands in (the build of scripts/sanitize.sh).
  std::string command = "export ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:hard_rss_limit_mb=3000\"; exec timeout 60 ";
#else
  std::string command = "ulimit -v 3000000; exec timeout 60 ";
#endif
  if (as_nobody && ::geteuid() == 0) command += "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  command += testing::cifar10_binary();
  for (const auto& arg : args) command += " '" + arg + "'";
  command += " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  testing::ProcessResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = read_file(log);
  return r;
}

// A randomly initialised CNN checkpoint with the real class names: enough
// for predict to load and classify with.
fs::path save_cnn(const fs::path& file) {
  ModelConfig mc;
  mc.model_type = "cnn";
  const auto spec = make_spec(mc, read_class_names(testing::batches_dir() / "batches.meta.txt"), {0.49, 0.48, 0.45},
                              {0.25, 0.24, 0.26});
  torch::manual_seed(1);
  auto model = build_model(spec);
  const nlohmann::json meta = {{"epoch", 1}, {"step_in_epoch", 0}, {"global_step", 8}, {"learning_rate", 0.001},
                               {"callbacks", nlohmann::json::object()}};
  save_checkpoint(file.string(), *model, spec, nullptr, meta);
  return file;
}

fs::path save_image(const fs::path& file) {
  write_png(file, torch::arange(3 * 32 * 32).reshape({3, 32, 32}).remainder(256).to(torch::kUInt8));
  return file;
}

// A training run's arguments up to the point of reading the data.
std::vector<std::string> training(const fs::path& out, std::vector<std::string> extra) {
  std::vector<std::string> args{"--data-dir", testing::data_root().string(), "--output-dir", out.string(),
                                "--epochs", "1", "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// /dev/zero read as a checkpoint took 30 s and 2 GB before it was refused
// (with no memory limit, it ran until memory ran out); a FIFO made the
// process wait for a writer forever. Every file a user names is now
// refused as what it is before a byte is read.
TEST(HostileInput, DevicesAndFifosAreRefusedBeforeAByteIsRead) {
  TempDir tmp("special");
  ASSERT_EQ(::mkfifo((tmp / "fifo.pt").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((tmp / "fifo.png").c_str(), 0600), 0);
  const fs::path model = save_cnn(tmp / "model.pt");
  const fs::path image = save_image(tmp / "cat.png");
  const std::string fifo = (tmp / "fifo.pt").string();
  const std::string device = ", not a regular file (hint: name a regular file)";
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"predict", "--load-model", "/dev/zero", image.string()}, "error: cannot read /dev/zero: a character device" + device},
      {{"predict", "--load-model", fifo, image.string()}, "error: cannot read " + fifo + ": a FIFO (named pipe)" + device},
      {training(tmp / "out", {"--load-model", fifo}), "error: cannot read --load-model " + fifo + ": a FIFO (named pipe)" + device},
      {training(tmp / "out", {"--resume", "/dev/zero"}), "error: cannot read --resume /dev/zero: a character device" + device},
      {training(tmp / "out", {"--resume", fifo}), "error: cannot read --resume " + fifo + ": a FIFO (named pipe)" + device},
      {training(tmp / "out", {"--model-type", "efficientnet", "--pretrained-weights", fifo}),
       "error: cannot read --pretrained-weights " + fifo + ": a FIFO (named pipe)" + device},
      {training(tmp / "out", {"--model-type", "efficientnet", "--pretrained-weights", "/dev/urandom"}),
       "error: cannot read --pretrained-weights /dev/urandom: a character device" + device},
  };
  for (const auto& c : cases) {
    const auto r = run_limited(c.args, tmp / "log");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.error + "\n"), std::string::npos) << c.error << "\n" << r.output;
    EXPECT_EQ(count(r.output, "error:"), 1) << r.output;
    EXPECT_EQ(r.output.find("Data:"), std::string::npos) << r.output;
  }
  // Images: each bad one its own line, the good one still classified.
  const auto r = run_limited({"predict", "--load-model", model.string(), "/dev/zero", (tmp / "fifo.png").string(),
                              image.string()},
                             tmp / "log");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("error: cannot read /dev/zero: a character device" + device), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error: cannot read " + (tmp / "fifo.png").string() + ": a FIFO (named pipe)" + device),
            std::string::npos)
      << r.output;
  EXPECT_EQ(count(r.output, "error:"), 2) << r.output;
  EXPECT_NE(r.output.find(image.string() + ": "), std::string::npos) << r.output;
}

// predict writes --output after classifying every image: a folder it cannot
// write into was found only then (exit 1, the work lost). It is checked
// first, before the model is even read (here: one that does not exist).
TEST(HostileInput, PredictChecksItsOutputBeforeLoadingTheModel) {
  TempDir tmp("output");
  const fs::path image = save_image(tmp / "cat.png");
  testing::write_bytes(tmp / "file.txt", "a file, not a folder");
  ASSERT_EQ(::mkfifo((tmp / "fifo.json").c_str(), 0600), 0);
  fs::create_directories(tmp / "folder.json");
  fs::create_directories(tmp / "ro");
  fs::permissions(tmp / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  // nobody must reach the files to be refused for the output alone.
  fs::permissions(tmp.path(), fs::perms::all);
  const std::string missing_model = (tmp / "missing.pt").string();
  struct Case {
    std::string output;
    std::string error;
  };
  const std::vector<Case> cases = {
      {(tmp / "folder.json").string(), "--output " + (tmp / "folder.json").string() + ": is a folder (hint: name a file)"},
      {(tmp / "file.txt/preds.json").string(),
       "--output " + (tmp / "file.txt/preds.json").string() + ": " + (tmp / "file.txt").string() +
           " is not a folder (hint: name a file in a folder)"},
      {(tmp / "fifo.json").string(),
       "--output " + (tmp / "fifo.json").string() + ": exists and is not a regular file (hint: name a file)"},
      {(tmp / "ro/new/preds.csv").string(), "--output " + (tmp / "ro/new/preds.csv").string() +
                                                ": cannot write into folder " + (tmp / "ro").string() +
                                                ": Permission denied (hint: make it writable, or name a file elsewhere)"},
  };
  for (const auto& c : cases) {
    const auto r = run_limited({"predict", "--load-model", missing_model, image.string(), "--output", c.output},
                               tmp / "log", true);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(r.output, "error: " + c.error + "\n");
  }
  EXPECT_FALSE(fs::exists(tmp / "ro/new")) << "the check creates nothing";
  // A folder that does not exist yet is made when the output is written.
  const fs::path model = save_cnn(tmp / "model.pt");
  const auto r = testing::run_cifar10(
      {"predict", "--load-model", model.string(), image.string(), "--output", (tmp / "new/preds.json").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(tmp / "new/preds.json")).size(), 1u);
}

// ---- safetensors for --pretrained-weights ----------------------------------

std::string safetensors_file(const std::string& header, const std::string& body) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);
  return out + header + body;
}

// One file per kind of damage. Each is refused with one line naming the
// file and the fault, exit 2; the format's faults before the data is read,
// a file that is well formed but does not fit EfficientNet-B0 once the
// model is built.
TEST(HostileInput, DamagedSafetensorsAreRefusedWithOneLine) {
  TempDir tmp("weights");
  const std::string f32x1 = R"({"dtype": "F32", "shape": [1], "data_offsets": )";
  struct Case {
    std::string name;
    std::string bytes;
    std::string error;           // part of the error line
  };
  const std::string deep = "{\"a\": " + std::string(1000000, '[') + std::string(1000000, ']') + "}";
  std::string past(8, '\0');
  past[5] = 1;  // a header of 2^40 bytes
  const std::vector<Case> cases = {
      {"length_past_end", past + "{}", "header length 1099511627776 runs past the end of the file (2 bytes follow"},
      {"overlap",
       safetensors_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                        std::string(12, '\0')),
       "tensors 'a' [0, 8] and 'b' [4, 12] in safetensors file"},
      {"gap", safetensors_file("{\"a\": " + f32x1 + "[4, 8]}}", std::string(8, '\0')),
       "4 unused bytes before tensor 'a' (data_offsets must tile the body)"},
      {"tail", safetensors_file("{\"a\": " + f32x1 + "[0, 4]}}", std::string(8, '\0')),
       "4 unused bytes after the last tensor (data_offsets must tile the body)"},
      {"huge_shape",
       safetensors_file(R"({"a": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}})",
                        std::string(4, '\0')),
       "shape [1099511627776, 1099511627776] of F32 needs more than 2^63 bytes but data_offsets [0, 4] hold 4"},
      {"unknown_dtype",
       safetensors_file(R"({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", std::string(1, '\0')),
       "has unsupported dtype 'F8_E4M3'"},
      {"duplicate_name",
       safetensors_file("{\"features.0.0.weight\": " + f32x1 + "[0, 4]}, \"features.0.0.weight\": {\"dtype\": \"I32\", "
                        "\"shape\": [1], \"data_offsets\": [0, 4]}}",
                        std::string(4, '\0')),
       "'features.0.0.weight' appears twice in one object of the header"},
      {"deep_json", safetensors_file(deep, ""), "header nests deeper than a safetensors header (3 levels)"},
      {"integer_weights",
       safetensors_file(R"({"features.0.0.weight": {"dtype": "I64", "shape": [32, 3, 3, 3], "data_offsets": [0, 6912]}})",
                        std::string(6912, '\0')),
       "not floating point: features.0.0.weight Long"},
  };
  for (const auto& c : cases) {
    const fs::path file = tmp / (c.name + ".safetensors");
    testing::write_bytes(file, c.bytes);
    const auto r = testing::run_cifar10(training(tmp / "out", {"--model-type", "efficientnet", "--train-limit", "256",
                                                               "--pretrained-weights", file.string()}),
                                        120);
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.output;
    EXPECT_EQ(count(r.output, "error:"), 1) << c.name << "\n" << r.output;
    EXPECT_NE(r.output.find(c.error), std::string::npos) << c.name << "\n" << r.output;
    EXPECT_NE(r.output.find(file.string()), std::string::npos) << c.name << ": the file is named\n" << r.output;
    // Even weights that parse but do not fit: refused before the data is read.
    EXPECT_EQ(r.output.find("Data:"), std::string::npos) << c.name << "\n" << r.output;
  }
}

// ---- images for predict ------------------------------------------------------

// Written by PIL (Debian's python3-pil), which makes progressive and CMYK
// JPEGs; the EXIF segments and BMP headers are put together by hand.
const char* kImageScript = R"PY(
import io, struct, sys
from PIL import Image
out = sys.argv[1]
im = Image.new('RGB', (40, 24))
im.putdata([(x * 6 % 256, y * 10 % 256, x * y % 256) for y in range(24) for x in range(40)])
def save(name, data): open(out + '/' + name, 'wb').write(data)
def jpeg(image, **kw):
    b = io.BytesIO(); image.save(b, 'JPEG', quality=90, **kw); return b.getvalue()
base, progressive = jpeg(im), jpeg(im, progressive=True)
def with_exif(data, tiff):
    payload = b'Exif\0\0' + tiff
    return data[:2] + b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload + data[2:]
def ifd(entries, next_ifd=0, at=8):
    t = b'II' + struct.pack('<HIH', 42, at, len(entries))
    for tag, kind, n, value in entries: t += struct.pack('<HHI', tag, kind, n) + value
    return t + struct.pack('<I', next_ifd)
orientation = lambda n: [(0x112, 3, 1, struct.pack('<HH', n, 0))]
save('progressive.jpg', progressive)
save('progressive_turned.jpg', with_exif(progressive, ifd(orientation(8))))
save('cmyk.jpg', jpeg(im.convert('CMYK')))
for n in (0, 6, 9, 65535): save('orientation_%d.jpg' % n, with_exif(base, ifd(orientation(n))))
save('exif_as_long.jpg', with_exif(base, ifd([(0x112, 4, 1, struct.pack('<I', 6))])))
save('exif_ifd_loop.jpg', with_exif(base, ifd(orientation(6), next_ifd=8)))
save('exif_subifd_to_itself.jpg', with_exif(base, ifd([(0x8769, 4, 1, struct.pack('<I', 8))] + orientation(6))))
save('exif_ifd_past_end.jpg', with_exif(base, ifd(orientation(6), at=0x7fffffff)))
save('exif_cut.jpg', with_exif(base, ifd(orientation(6))[:12]))
save('exif_garbage.jpg', with_exif(base, bytes(range(256)) * 4))
def bmp(w, h, pixels, offset=None):
    dib = struct.pack('<IiiHHIIiiII', 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    off = 54 if offset is None else offset
    return b'BM' + struct.pack('<IHHI', off + len(pixels), 0, 0, off) + dib + pixels
save('top_down.bmp', bmp(8, -6, b'\x80' * 24 * 6))
save('cut.bmp', bmp(8, 6, b'\x80' * 24 * 3))
save('pixels_past_end.bmp', bmp(8, 6, b'\x80' * 24 * 6, offset=0x7fffffff))
save('huge.bmp', bmp(100000, 100000, b'\x80' * 100))
)PY";

// Unusual but sound JPEGs (progressive, CMYK, every EXIF orientation
// whether valid or not, EXIF that is cut short, loops or points past its
// end) are classified; BMPs whose pixels run past the file or whose header
// claims 10 gigapixels are refused, one line each.
TEST(HostileInput, CraftedJpegsAndBmpsAreClassifiedOrRefusedOneLineEach) {
  TempDir tmp("images");
  fs::create_directories(tmp / "pics");
  testing::write_bytes(tmp / "make_images.py", kImageScript);
  ASSERT_EQ(std::system(("/usr/bin/python3 " + (tmp / "make_images.py").string() + " " + (tmp / "pics").string())
                            .c_str()),
            0);
  const fs::path model = save_cnn(tmp / "model.pt");
  const auto r = testing::run_cifar10({"predict", "--load-model", model.string(), "--no-tta", (tmp / "pics").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const std::vector<std::string> classified = {
      "progressive.jpg",   "progressive_turned.jpg", "cmyk.jpg",          "orientation_0.jpg",
      "orientation_6.jpg", "orientation_9.jpg",      "orientation_65535.jpg", "exif_as_long.jpg",
      "exif_ifd_loop.jpg", "exif_subifd_to_itself.jpg", "exif_ifd_past_end.jpg", "exif_cut.jpg",
      "exif_garbage.jpg",  "top_down.bmp"};
  const std::string lines = "\n" + r.output;
  for (const auto& name : classified) {
    EXPECT_NE(lines.find("\n" + (tmp / "pics" / name).string() + ": "), std::string::npos) << name << "\n" << r.output;
  }
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"cut.bmp", "corrupt or truncated BMP data"},
      {"pixels_past_end.bmp", "corrupt or truncated BMP data"},
      {"huge.bmp", "BMP header claims 100000x100000 pixels: image too large"}};
  for (const auto& [name, why] : refused) {
    EXPECT_NE(r.output.find("error: " + (tmp / "pics" / name).string() + ": " + why), std::string::npos)
        << name << "\n" << r.output;
  }
  EXPECT_EQ(count(r.output, "error:"), static_cast<int>(refused.size())) << r.output;
}

// ---- the data folder -------------------------------------------------------

// A batch that links to itself, or a batches folder that does: one line
// that names the loop, exit 2.
TEST(HostileInput, ASymbolicLinkLoopInTheDataFolderIsNamed) {
  TempDir tmp("loop");
  fs::create_directories(tmp / "file_loop/cifar-10-batches-bin");
  for (const auto& name : cifar10_files()) {
    fs::create_symlink(testing::batches_dir() / name, tmp / "file_loop/cifar-10-batches-bin" / name);
  }
  fs::remove(tmp / "file_loop/cifar-10-batches-bin/data_batch_1.bin");
  fs::create_symlink("data_batch_1.bin", tmp / "file_loop/cifar-10-batches-bin/data_batch_1.bin");
  fs::create_directories(tmp / "folder_loop");
  fs::create_symlink("cifar-10-batches-bin", tmp / "folder_loop/cifar-10-batches-bin");
  for (const char* data : {"file_loop", "folder_loop"}) {
    const auto r = testing::run_cifar10({"--data-dir", (tmp / data).string(), "--output-dir", (tmp / "out").string(),
                                         "--epochs", "1", "--model-type", "cnn"},
                                        120);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(count(r.output, "error:"), 1) << r.output;
    EXPECT_NE(r.output.find("error: cannot read " + (tmp / data / "cifar-10-batches-bin/data_batch_1.bin").string() +
                            ": Too many levels of symbolic links (hint: a symbolic link there leads back to itself: "
                            "fix or remove it, or pass another --data-dir)"),
              std::string::npos)
        << r.output;
  }
}

}  // namespace
}  // namespace cifar
