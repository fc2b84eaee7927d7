#include "metasemi/io/TensorIo.h"

#include "metasemi/core/Error.h"

namespace metasemi::io {

DType dtypeOfTensor(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kUInt8:
      return DType::kUInt8;
    case torch::kInt32:
      return DType::kInt32;
    case torch::kInt64:
      return DType::kInt64;
    case torch::kFloat32:
      return DType::kFloat32;
    case torch::kFloat64:
      return DType::kFloat64;
    default:
      MS_THROW(core::IoError, "tensors of type {} cannot be stored",
               std::string(c10::toString(t.scalar_type())));
  }
}

torch::ScalarType scalarTypeOf(DType d) {
  switch (d) {
    case DType::kUInt8:
      return torch::kUInt8;
    case DType::kInt32:
      return torch::kInt32;
    case DType::kInt64:
      return torch::kInt64;
    case DType::kFloat32:
      return torch::kFloat32;
    case DType::kFloat64:
      return torch::kFloat64;
  }
  return torch::kUInt8;
}

void writeTensor(H5File& file, const std::string& name, const torch::Tensor& t,
                 const DatasetOptions& options) {
  const DType dtype = dtypeOfTensor(t);
  const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  std::vector<std::int64_t> shape(c.sizes().begin(), c.sizes().end());
  file.write(name, dtype, c.data_ptr(), shape, options);
}

torch::Tensor readTensor(const H5File& file, const std::string& name) {
  const DatasetInfo di = file.infoForRead(name);
  torch::Tensor t = torch::empty(di.shape, torch::TensorOptions().dtype(scalarTypeOf(di.dtype)));
  file.read(name, di.dtype, t.data_ptr(), di.numElements());
  return t;
}

}  // namespace metasemi::io
