// TensorBoard event files written and read without TensorFlow: TFRecord
// framing (length, masked CRC32C of the length, protobuf Event, masked CRC32C
// of the Event) around the messages of event.proto. The reader checks every
// CRC, so tests, and a fuzzer, can hold the writer to the format.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "event.pb.h"

namespace cifar {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
uint32_t crc32c(std::string_view bytes);
// TFRecord stores CRCs masked, so a CRC of data that holds CRCs stays strong.
uint32_t mask_crc32c(uint32_t crc);
inline uint32_t masked_crc32c(std::string_view bytes) { return mask_crc32c(crc32c(bytes)); }

// Appends one TFRecord (length, masked CRC, data, masked CRC) to `out`.
void append_tfrecord(std::string& out, std::string_view data);

// TensorBoard's default histogram limits (TensorFlow's histogram.cc): +-1e-12
// growing by 10% up to 1e20, with 0 and +-DBL_MAX: fine near zero, where
// weights live, and still finite for any value.
const std::vector<double>& histogram_bucket_limits();

// Histogram of every non-NaN value of `values` over the default limits,
// bucket i counting [limit[i-1], limit[i]) as TensorFlow does (a value on a
// limit goes to the next bucket); runs of empty buckets are merged
// into one, as TensorFlow does, so a histogram costs tens of buckets, not
// 1,500. Returns num == 0 (and no buckets) when no value is left.
tensorboard::HistogramProto make_histogram(const torch::Tensor& values);

// PNG bytes of a uint8 image, CHW or HWC with 1 to 4 channels. The layout is
// HWC when the last dimension is 1..4, else CHW when the first one is.
struct EncodedImage {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::string png;
};
EncodedImage encode_png(const torch::Tensor& image);

// Tiles uint8 images [B,C,H,W] into one [C, rows*(H+pad)+pad, cols*(W+pad)+pad]
// image, `columns` per row, at most `max_images` of them, on a black ground
// (torchvision's make_grid layout).
torch::Tensor tile_images(const torch::Tensor& images, int64_t columns = 8,
                          int64_t max_images = 64, int64_t padding = 2);

// Writes one event file in `dir`. Records are buffered in memory and handed
// to the OS by flush() (and by the destructor), so a process killed after a
// flush loses nothing that was flushed; a kill can at worst leave a torn last
// record, which TensorBoard ignores.
class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new file
  // events.out.tfevents.<10-digit unix time>.<hostname>.<pid>.<counter>
  // that starts with Event{wall_time, file_version = "brain.Event:2"}.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  const std::filesystem::path& path() const { return path_; }

  void add_scalar(const std::string& tag, double value, int64_t step);
  // Skips tensors with no non-NaN value: TensorBoard cannot draw them.
  void add_histogram(const std::string& tag, const torch::Tensor& values, int64_t step);
  // uint8 CHW or HWC image (see encode_png).
  void add_image(const std::string& tag, const torch::Tensor& image, int64_t step);
  // SessionLog START at `step`. TensorBoard ignores the first START in a
  // run (folder) and at each later one drops every point with step >=
  // `step`, the leftovers of a killed run: so every run writes one at its
  // start, fresh or resumed.
  void add_session_start(int64_t step);
  // Stamps wall_time when unset and queues the event.
  void add_event(tensorboard::Event event);

  // Hands every queued record to the OS; throws UserError if it cannot.
  void flush();

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::string pending_;  // framed records not yet written
};

// Parses a whole event file's bytes; `source` names it in errors. Throws
// UserError naming the source, the record index and its byte offset when a
// length or data CRC does not match, a record is truncated, or an Event does
// not parse.
std::vector<tensorboard::Event> parse_tensorboard_events(std::string_view bytes,
                                                         const std::string& source);
std::vector<tensorboard::Event> read_tensorboard_events(const std::filesystem::path& path);

// The event files in `dir` ordered by the unix time, then the counter, in
// their names: the order they were created in. TensorBoard sorts names as
// text, which agrees whenever the times differ (a resumed run is a later
// process); the numeric counter keeps one process's files in order too.
std::vector<std::filesystem::path> list_event_files(const std::filesystem::path& dir);

}  // namespace cifar
