// --config files: JSON or YAML text, through the same CLI11 formatter,
// field conversions and validation as `cifar10 --config FILE`.
#include "config/cli.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::parse_or_refuse([&] {
    const Config config = parse_config_text(text, "fuzz.yaml");
    // An accepted config is a valid one, and its JSON form (what
    // results/config.json and checkpoints hold) reads back unchanged.
    validate(config);
    Config back;
    config_from_json(config_to_json(config), back);
    fuzz::require(config_to_json(back) == config_to_json(config), "config round-trips through JSON");
  });
  return 0;
}
