// Checkpoint files: read, then restored into a small state dict (names and shapes checked
// before any copy).
#include <torch/torch.h>

#include "FuzzInput.h"
#include "metasemi/io/Checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace metasemi;
  static const bool once = [] {
    torch::set_num_threads(1);
    return true;
  }();
  (void)once;
  const auto p = fuzz::asFile(data, size, "input.h5");
  fuzz::refusedOrRead([&] {
    const io::CheckpointState s = io::readCheckpoint(p.string());
    io::NamedTensors target = {{"fc.weight", torch::zeros({3, 4})}, {"fc.bias", torch::zeros({3})}};
    io::restoreNamed(s.model, target, p.string(), "model");
  });
  return 0;
}
