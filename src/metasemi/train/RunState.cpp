#include "metasemi/train/RunState.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "metasemi/core/Error.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/ConfigText.h"

namespace metasemi::train {
namespace {

double jsonNumber(const nlohmann::json& j, const char* key) {
  // nlohmann writes NaN and infinity as null.
  return j.contains(key) && j[key].is_number() ? j[key].get<double>()
                                               : std::numeric_limits<double>::infinity();
}

}  // namespace

bool RunState::recordEvaluation(double top1Error, double top5Error) {
  const bool best = !(bestTop1Error <= top1Error);  // strict, NaN-safe the first time
  if (best) {
    bestTop1Error = top1Error;
    bestTop5Error = top5Error;
  }
  lastTop1Error = top1Error;
  lastTop5Error = top5Error;
  return best;
}

io::CheckpointState RunState::toCheckpoint(const models::Network& net, const meta::Sgd& sgd,
                                           const std::string& configText) const {
  io::CheckpointState s;
  s.step = nextStep;
  s.bestAcc1 = 100.0 - bestTop1Error;
  s.bestAcc5 = 100.0 - bestTop5Error;
  s.lastAcc1 = 100.0 - lastTop1Error;
  s.lastAcc5 = 100.0 - lastTop5Error;
  s.model = models::stateDict(net);
  const auto named = net.named_parameters();
  const auto buffers = sgd.momentumBuffers();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    if (buffers[i].defined()) s.momentum.emplace_back(named[i].key(), buffers[i]);
  }
  // Errors are kept exactly in the JSON (the accuracies above are for other readers).
  nlohmann::json j = {{"world_size", worldSize},
                      {"best_top1_error", bestTop1Error},
                      {"best_top5_error", bestTop5Error},
                      {"last_top1_error", lastTop1Error},
                      {"last_top5_error", lastTop5Error}};
  if (labeledStream) j["labeled_stream"] = labeledStream->toJson();
  if (unlabeledStream) j["unlabeled_stream"] = unlabeledStream->toJson();
  s.dataJson = j.dump();
  s.config = configText;
  return s;
}

RunState RunState::restore(const io::CheckpointState& s, const std::string& path,
                           models::Network& net, meta::Sgd& sgd) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(s.dataJson);
  } catch (const nlohmann::json::exception& e) {
    MS_THROW(core::IoError, "checkpoint '{}': unreadable run state: {}", path, e.what());
  }
  MS_REQUIRE(j.is_object() && j.contains("world_size") && j["world_size"].is_number_integer(),
             core::IoError, "checkpoint '{}' was not written by metasemi-train (no run state)",
             path);
  RunState p;
  p.nextStep = s.step;
  p.worldSize = j["world_size"].get<int>();
  p.bestTop1Error = jsonNumber(j, "best_top1_error");
  p.bestTop5Error = jsonNumber(j, "best_top5_error");
  p.lastTop1Error = jsonNumber(j, "last_top1_error");
  p.lastTop5Error = jsonNumber(j, "last_top5_error");
  try {
    if (j.contains("labeled_stream")) {
      p.labeledStream = data::StreamState::fromJson(j["labeled_stream"]);
    }
    if (j.contains("unlabeled_stream")) {
      p.unlabeledStream = data::StreamState::fromJson(j["unlabeled_stream"]);
    }
  } catch (const nlohmann::json::exception& e) {
    MS_THROW(core::IoError, "checkpoint '{}': unreadable data-stream state: {}", path, e.what());
  }
  // Momentum buffers by parameter name, in the optimizer's order; every check before a copy.
  const auto named = net.named_parameters();
  std::vector<torch::Tensor> buffers(named.size());
  for (const auto& [name, t] : s.momentum) {
    std::size_t i = 0;
    while (i < named.size() && named[i].key() != name) ++i;
    MS_REQUIRE(i < named.size(), core::IoError,
               "checkpoint '{}' does not match the model: unknown momentum buffer '{}'", path,
               name);
    MS_REQUIRE(t.sizes() == named[i].value().sizes(), core::IoError,
               "checkpoint '{}' does not match the model: momentum buffer '{}' has shape {}, the "
               "parameter {}",
               path, name, models::shapeString(t.sizes()),
               models::shapeString(named[i].value().sizes()));
    buffers[i] = t.to(named[i].value().device(), named[i].value().scalar_type());
  }
  io::restoreNamed(s.model, models::stateDict(net), path, "model");
  sgd.setMomentumBuffers(buffers);
  return p;
}

TrainConfig checkpointConfig(const io::CheckpointState& stored, const std::string& path) {
  try {
    return parseConfigText(stored.config, "checkpoint '" + path + "' config");
  } catch (const core::ConfigError& e) {
    MS_THROW(core::IoError, "damaged checkpoint: {}", e.what());
  }
}

void requireFiniteTensors(const io::NamedTensors& tensors, const std::string& path,
                          const std::string& what) {
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point()) continue;
    const auto bad = torch::logical_not(torch::isfinite(t)).sum().item<std::int64_t>();
    MS_REQUIRE(bad == 0, core::IoError,
               "checkpoint '{}': {} '{}' holds {} NaN or infinite value{} of {}: not a usable "
               "model",
               path, what, name, bad, bad == 1 ? "" : "s", t.numel());
  }
}

}  // namespace metasemi::train
