// SVHN's MATLAB files: the structural check, then matio's read of X and y.
#include "FuzzInput.h"
#include "prep/RawReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  const auto p = fuzz::asFile(data, size, "input.mat");
  fuzz::refusedOrRead([&] { prep::readSvhn(p); });
  return 0;
}
