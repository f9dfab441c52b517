// CIFAR-10 batch files (data_batch_*.bin, test_batch.bin) and
// batches.meta.txt: the bytes of a data folder the user points --data-dir at.
#include "data/cifar_reader.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  const auto bytes = fuzz::as_bytes(data, size);
  fuzz::parse_or_refuse([&] {
    const ImageSet set = parse_cifar_batch(bytes, "fuzz/data_batch_1.bin");
    const int64_t n = static_cast<int64_t>(size) / kRecordBytes;
    fuzz::require(set.size() == n, "one image per 3,073-byte record");
    fuzz::require(set.images.sizes() == torch::IntArrayRef({n, 3, kImageSide, kImageSide}), "images [N,3,32,32]");
    fuzz::require(set.labels.min().item<int64_t>() >= 0 && set.labels.max().item<int64_t>() < kNumClasses,
                  "labels 0..9");
    // The first record's pixels, red plane first, as stored.
    fuzz::require(std::memcmp(set.images[0].contiguous().data_ptr<uint8_t>(), data + 1, 3072) == 0,
                  "pixels copied as stored");
  });
  fuzz::parse_or_refuse([&] {
    const auto names = parse_class_names(bytes, "fuzz/batches.meta.txt");
    fuzz::require(names.size() == 10, "ten class names");
    for (const auto& name : names) fuzz::require(!name.empty(), "class names are not empty");
  });
  return 0;
}
