// IDX (MNIST format) images and labels, raw or gzip.
#include "FuzzInput.h"
#include "prep/RawReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  const auto p = fuzz::asFile(data, size, "input.idx");
  std::vector<std::int64_t> dims;
  fuzz::refusedOrRead([&] { prep::readIdx(p, 3, dims); });
  fuzz::refusedOrRead([&] { prep::readIdx(p, 1, dims); });
  return 0;
}
