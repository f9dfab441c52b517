// TensorBoard event files (read back by tests, tools and resume checks):
// TFRecord framing with masked CRC32C, then protobuf Events. The first byte
// picks what the rest is:
//   even: a whole event file, CRCs and all;
//   odd:  Event payloads, each a 1-byte length then that many bytes, framed
//         here with correct CRCs, so mutations reach the protobuf parsing
//         instead of dying at the first CRC check.
#include "fuzz_util.h"
#include "reporting/tensorboard.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  if (size < 1) return 0;
  std::string file;
  if (data[0] % 2 == 1) {
    for (size_t at = 1; at < size;) {
      const size_t n = std::min<size_t>(data[at], size - at - 1);
      append_tfrecord(file, fuzz::as_bytes(data + at + 1, n));
      at += 1 + n;
    }
  } else {
    file.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  }
  fuzz::parse_or_refuse([&] {
    const auto events = parse_tensorboard_events(file, "fuzz.tfevents");
    // What parsed re-frames and re-parses to the same events.
    std::string again;
    for (const auto& e : events) append_tfrecord(again, e.SerializeAsString());
    const auto reparsed = parse_tensorboard_events(again, "re-framed");
    fuzz::require(reparsed.size() == events.size(), "event count round-trips");
    for (size_t i = 0; i < events.size(); ++i) {
      fuzz::require(reparsed[i].SerializeAsString() == events[i].SerializeAsString(), "events round-trip");
    }
  });
  return 0;
}
