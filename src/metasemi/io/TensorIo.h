// torch::Tensor <-> HDF5 datasets (shape and element type preserved).
#pragma once

#include <torch/torch.h>

#include <string>

#include "metasemi/io/H5File.h"

namespace metasemi::io {

/// Writes `t` (any device; uint8, int32, int64, float32 or float64; any shape, including 0-d)
/// as dataset `name`. The tensor is copied to a contiguous CPU buffer first.
void writeTensor(H5File& file, const std::string& name, const torch::Tensor& t,
                 const DatasetOptions& options = {});

/// Reads dataset `name` into a new contiguous CPU tensor of the stored type and shape.
torch::Tensor readTensor(const H5File& file, const std::string& name);

/// The DType of a tensor's scalar type; IoError for types the files do not store.
DType dtypeOfTensor(const torch::Tensor& t);

/// The torch scalar type of a DType.
torch::ScalarType scalarTypeOf(DType d);

}  // namespace metasemi::io
