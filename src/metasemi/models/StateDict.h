// A module's parameters and buffers under their PyTorch state_dict keys. Their HDF5 form (one
// dataset per key inside a group) is io::writeNamedTensors / io::readNamedTensors +
// io::restoreNamed, shared with checkpoints.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace metasemi::models {

/// One state_dict entry: key ("block1.0.weight") and the live tensor (parameter or buffer).
using StateEntry = std::pair<std::string, torch::Tensor>;

/// The entries in PyTorch's state_dict order: per module its parameters, then its buffers, then
/// its children in registration order. Undefined buffers are left out.
std::vector<StateEntry> stateDict(const torch::nn::Module& module);

/// "[128, 3, 3, 3]" for messages.
std::string shapeString(torch::IntArrayRef shape);

}  // namespace metasemi::models
