// A module's parameters and buffers under their PyTorch state_dict keys, and their HDF5 form:
// one dataset per key inside a group, so `h5py` + `torch.from_numpy` loads them into the PyTorch
// model and back.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "metasemi/io/H5File.h"

namespace metasemi::models {

/// One state_dict entry: key ("block1.0.weight") and the live tensor (parameter or buffer).
using StateEntry = std::pair<std::string, torch::Tensor>;

/// The entries in PyTorch's state_dict order: per module its parameters, then its buffers, then
/// its children in registration order. Undefined buffers are left out.
std::vector<StateEntry> stateDict(const torch::nn::Module& module);

/// Writes every entry of `module` as dataset `<group>/<key>` (float32 parameters and buffers,
/// int64 num_batches_tracked; standard row-major layout whatever the memory format). `group`
/// "" or "/" is the file's root. Throws core::IoError when a dataset already exists.
void saveStateDict(const torch::nn::Module& module, io::H5File& file, const std::string& group);

/// Strict load: copies dataset `<group>/<key>` into every entry of `module` (values converted to
/// the entry's type; its device and memory format kept). A missing key, a dataset in the group
/// that is not a key, or a shape mismatch throws core::IoError with one line naming the file,
/// the key, the expected and the found shape. Nothing is modified when it throws.
void loadStateDict(torch::nn::Module& module, const io::H5File& file, const std::string& group);

/// "[128, 3, 3, 3]" for messages.
std::string shapeString(torch::IntArrayRef shape);

}  // namespace metasemi::models
