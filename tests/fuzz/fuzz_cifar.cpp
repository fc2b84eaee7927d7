// CIFAR-10 and CIFAR-100 binary records (the test batch of each) and the class-name files.
#include "FuzzInput.h"
#include "prep/RawReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  const auto dir = fuzz::scratch() / "cifar";
  std::filesystem::create_directories(dir);
  for (const char* name : {"test_batch.bin", "test.bin", "batches.meta.txt"}) {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fuzz::refusedOrRead([&] {
    const prep::ArchiveFiles files(dir);
    fuzz::refusedOrRead([&] { prep::readCifar10(files, false); });
    fuzz::refusedOrRead([&] { prep::readCifar100(files, false, true); });
    fuzz::refusedOrRead([&] { prep::classNamesFrom(files, "batches.meta.txt", 10, {}); });
  });
  return 0;
}
