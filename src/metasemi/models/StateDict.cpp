#include "metasemi/models/StateDict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/io/TensorIo.h"

namespace metasemi::models {
namespace {

void collect(const torch::nn::Module& m, const std::string& prefix, std::vector<StateEntry>& out) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : m.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& c : m.named_children()) collect(*c.value(), prefix + c.key() + ".", out);
}

std::string datasetName(const std::string& group, const std::string& key) {
  if (group.empty() || group == "/") return key;
  return group.back() == '/' ? group + key : group + "/" + key;
}

std::string groupLabel(const std::string& group) {
  return group.empty() || group == "/" ? std::string("/") : group;
}

}  // namespace

std::string shapeString(torch::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.vec(), ", "));
}

std::vector<StateEntry> stateDict(const torch::nn::Module& module) {
  std::vector<StateEntry> out;
  collect(module, "", out);
  return out;
}

void saveStateDict(const torch::nn::Module& module, io::H5File& file, const std::string& group) {
  if (!(group.empty() || group == "/")) file.createGroup(group);
  for (const auto& [key, tensor] : stateDict(module)) {
    io::writeTensor(file, datasetName(group, key), tensor.detach());
  }
}

void loadStateDict(torch::nn::Module& module, const io::H5File& file, const std::string& group) {
  const auto entries = stateDict(module);
  const std::string where = groupLabel(group);
  MS_REQUIRE(file.exists(where), core::IoError, "{}: no group '{}' holding a model state dict",
             file.path(), where);
  std::set<std::string> expected;
  // Check everything before touching the module, so a bad file leaves it as it was.
  for (const auto& [key, tensor] : entries) {
    expected.insert(key);
    const auto name = datasetName(group, key);
    MS_REQUIRE(file.isDataset(name), core::IoError,
               "{}: state dict key '{}' missing in group '{}' (expected shape {})", file.path(),
               key, where, shapeString(tensor.sizes()));
    const auto info = file.info(name);
    MS_REQUIRE(info.shape == tensor.sizes().vec(), core::IoError,
               "{}: state dict key '{}' has shape {}, expected {}", file.path(), key,
               shapeString(info.shape), shapeString(tensor.sizes()));
  }
  for (const auto& name : file.list(where)) {
    if (expected.count(name) == 0) {
      MS_THROW(core::IoError, "{}: unexpected key '{}' in state dict group '{}' (not in the model)",
               file.path(), name, where);
    }
  }
  torch::NoGradGuard noGrad;
  for (const auto& [key, tensor] : entries) {
    auto target = tensor;
    target.copy_(io::readTensor(file, datasetName(group, key)));
  }
}

}  // namespace metasemi::models
