// Bit-for-bit comparison of two checkpoints written by metasemi-train, for the resume and
// preemption tests.
#pragma once

#include <torch/torch.h>
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <filesystem>
#include <string>

#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"

namespace metasemi::test {

/// True when both checkpoints hold bit-identical model and optimizer tensors, and enough of them
/// (more than 30) to be a whole ConvLarge. Each differing tensor is named in the test log.
inline bool sameCheckpointState(const std::filesystem::path& a, const std::filesystem::path& b) {
  io::H5File fa(a.string(), io::H5File::Mode::kRead), fb(b.string(), io::H5File::Mode::kRead);
  bool same = true;
  std::size_t compared = 0;
  for (const std::string group : {"model", "optimizer/momentum_buffer"}) {
    const auto names = fa.list(group);
    same &= names == fb.list(group);
    for (const auto& n : names) {
      const auto ta = io::readTensor(fa, group + "/" + n);
      const auto tb = io::readTensor(fb, group + "/" + n);
      const bool eq = ta.sizes() == tb.sizes() && torch::equal(ta, tb);
      if (!eq) BOOST_TEST_MESSAGE("differs: " << group << "/" << n);
      same &= eq;
      ++compared;
    }
  }
  return same && compared > 30;
}

}  // namespace metasemi::test
