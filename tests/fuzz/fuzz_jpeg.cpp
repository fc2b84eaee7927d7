// One file of a JPEG tree: the check of jpeg-shards and verify (decode, statistics, re-encode
// to a bounded shorter side).
#include "FuzzInput.h"
#include "prep/Jpeg.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  static prep::JpegCodec codec;
  // Fuzzed headers may claim any size; a smaller limit keeps each run short.
  codec.setMaxPixels(4'000'000);
  std::vector<std::uint8_t> reencoded;
  fuzz::refusedOrRead([&] { codec.check(data, size, "input.jpg", 64, 90, reencoded); });
  return 0;
}
