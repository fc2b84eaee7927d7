// A .tar.gz as the CIFAR downloads come: the member list, then every member's bytes.
#include "FuzzInput.h"
#include "prep/RawReaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  const auto p = fuzz::asFile(data, size, "input.tar.gz");
  fuzz::refusedOrRead([&] {
    const prep::ArchiveFiles files(p);
    for (const char* name : {"test_batch.bin", "batches.meta.txt", "data_batch_1.bin"}) {
      if (files.has(name)) fuzz::refusedOrRead([&] { files.read(name); });
    }
  });
  return 0;
}
