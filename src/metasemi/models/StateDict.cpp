#include "metasemi/models/StateDict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

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

}  // namespace

std::string shapeString(torch::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.vec(), ", "));
}

std::vector<StateEntry> stateDict(const torch::nn::Module& module) {
  std::vector<StateEntry> out;
  collect(module, "", out);
  return out;
}

}  // namespace metasemi::models
