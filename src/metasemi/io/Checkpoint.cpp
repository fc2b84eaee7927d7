#include "metasemi/io/Checkpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"

namespace metasemi::io {
namespace {

constexpr const char* kFormat = "metasemi-checkpoint";

std::string shapeText(torch::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.begin(), shape.end(), ", "));
}

std::string memberName(const std::string& group, const std::string& key) {
  if (group.empty() || group == "/") return key;
  return group.back() == '/' ? group + key : group + "/" + key;
}

}  // namespace

void writeNamedTensors(H5File& f, const std::string& group, const NamedTensors& tensors) {
  const bool root = group.empty() || group == "/";
  if (!root) f.createGroup(group);
  std::vector<std::string> keys;
  for (const auto& [key, t] : tensors) {
    MS_REQUIRE(!key.empty() && key.find('/') == std::string::npos, core::IoError,
               "'{}': tensor name '{}' cannot be a dataset name", f.path(), key);
    MS_REQUIRE(t.defined(), core::IoError, "'{}': tensor '{}' is undefined", f.path(), key);
    writeTensor(f, memberName(group, key), t.detach());
    keys.push_back(key);
  }
  // HDF5 lists group members sorted by name; the attribute keeps the caller's order.
  if (!keys.empty()) f.setAttr(root ? "/" : group, "keys", keys);
}

NamedTensors readNamedTensors(const H5File& f, const std::string& group) {
  const std::string where = group.empty() ? std::string("/") : group;
  MS_REQUIRE(f.exists(where), core::IoError, "'{}': missing group '{}'", f.path(), where);
  std::vector<std::string> keys;
  if (f.hasAttr(where, "keys")) keys = f.attrStrings(where, "keys");
  // Datasets the attribute does not list are read too, so that a strict restore sees them.
  std::set<std::string> listed(keys.begin(), keys.end());
  for (const auto& name : f.list(where)) {
    if (listed.count(name) == 0 && f.isDataset(memberName(where, name))) keys.push_back(name);
  }
  NamedTensors out;
  for (const auto& key : keys) {
    const std::string name = memberName(where, key);
    MS_REQUIRE(f.isDataset(name), core::IoError, "'{}': missing dataset '{}'", f.path(), name);
    out.emplace_back(key, readTensor(f, name));
  }
  return out;
}

void writeCheckpoint(const std::string& path, const CheckpointState& s) {
  AtomicOutput out(path);
  {
    H5File f(out.tempPath(), H5File::Mode::kCreate);
    f.setAttr("/", "format", kFormat);
    f.setAttr("/", "format_version", CheckpointState::kFormatVersion);
    f.setAttr("/", "step", s.step);
    f.setAttr("/", "best_acc1", s.bestAcc1);
    f.setAttr("/", "best_acc5", s.bestAcc5);
    f.setAttr("/", "last_acc1", s.lastAcc1);
    f.setAttr("/", "last_acc5", s.lastAcc5);
    f.setAttr("/", "config", s.config);
    writeNamedTensors(f, "/model", s.model);
    writeNamedTensors(f, "/optimizer/momentum_buffer", s.momentum);
    f.createGroup("/rng");
    if (s.torchRng.defined()) {
      MS_REQUIRE(s.torchRng.scalar_type() == torch::kUInt8 && s.torchRng.dim() == 1, core::IoError,
                 "'{}': torch generator state must be a 1-d uint8 tensor", path);
      writeTensor(f, "/rng/torch", s.torchRng);
    }
    std::vector<std::int64_t> words(s.rngWords.size());
    if (!words.empty()) std::memcpy(words.data(), s.rngWords.data(), words.size() * 8);
    f.writeVector("/rng/words", words);
    f.createGroup("/data");
    f.writeVector("/data/state", s.dataState);
    f.setAttr("/data", "json", s.dataJson);
    f.close();
  }
  out.commit();
}

void writeCheckpointFiles(const std::string& dir, const CheckpointState& state, bool isBest) {
  namespace fs = std::filesystem;
  const fs::path folder(dir);
  const std::string last = (folder / "checkpoint.h5").string();
  writeCheckpoint(last, state);
  if (!isBest) return;
  // Link under a temporary name, then rename: model_best.h5 is always a complete file.
  const std::string best = (folder / "model_best.h5").string();
  const std::string tmp = fmt::format("{}.tmp.{}", best, static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  if (::link(last.c_str(), tmp.c_str()) != 0) {
    fs::copy_file(last, tmp, fs::copy_options::overwrite_existing, ec);
    MS_REQUIRE(!ec, core::IoError, "cannot copy '{}' to '{}': {}", last, tmp, ec.message());
  }
  if (std::rename(tmp.c_str(), best.c_str()) != 0) {
    const int err = errno;
    fs::remove(tmp, ec);
    MS_THROW(core::IoError, "cannot rename '{}' to '{}': {}", tmp, best, std::strerror(err));
  }
}

CheckpointState readCheckpoint(const std::string& path) {
  H5File f(path, H5File::Mode::kRead);
  MS_REQUIRE(f.hasAttr("/", "format") && f.attrString("/", "format") == kFormat, core::IoError,
             "'{}' is not a MetaSemi checkpoint (no format attribute '{}')", path, kFormat);
  MS_REQUIRE(f.hasAttr("/", "format_version"), core::IoError,
             "checkpoint '{}': missing attribute 'format_version'", path);
  const std::int64_t version = f.attrInt("/", "format_version");
  MS_REQUIRE(version == CheckpointState::kFormatVersion, core::IoError,
             "checkpoint '{}' has format version {}; this program reads version {}", path, version,
             CheckpointState::kFormatVersion);
  for (const char* key : {"step", "best_acc1", "best_acc5", "last_acc1", "last_acc5", "config"}) {
    MS_REQUIRE(f.hasAttr("/", key), core::IoError, "checkpoint '{}': missing attribute '{}'", path,
               key);
  }
  for (const char* name : {"/rng/words", "/data/state"}) {
    MS_REQUIRE(f.isDataset(name), core::IoError, "checkpoint '{}': missing dataset '{}'", path,
               name);
  }
  CheckpointState s;
  s.step = f.attrInt("/", "step");
  s.bestAcc1 = f.attrDouble("/", "best_acc1");
  s.bestAcc5 = f.attrDouble("/", "best_acc5");
  s.lastAcc1 = f.attrDouble("/", "last_acc1");
  s.lastAcc5 = f.attrDouble("/", "last_acc5");
  s.config = f.attrString("/", "config");
  s.model = readNamedTensors(f, "/model");
  s.momentum = readNamedTensors(f, "/optimizer/momentum_buffer");
  if (f.isDataset("/rng/torch")) s.torchRng = readTensor(f, "/rng/torch");
  const auto words = f.readVector<std::int64_t>("/rng/words");
  s.rngWords.resize(words.size());
  if (!words.empty()) std::memcpy(s.rngWords.data(), words.data(), words.size() * 8);
  s.dataState = f.readVector<std::int64_t>("/data/state");
  s.dataJson = f.hasAttr("/data", "json") ? f.attrString("/data", "json") : "";
  return s;
}

void restoreNamed(const NamedTensors& stored, const NamedTensors& target, const std::string& path,
                  const std::string& what) {
  std::map<std::string, const torch::Tensor*> byKey;
  for (const auto& [key, t] : stored) byKey[key] = &t;
  // Validate everything before the first copy, so a mismatch leaves the target untouched.
  for (const auto& [key, t] : target) {
    const auto it = byKey.find(key);
    MS_REQUIRE(it != byKey.end(), core::IoError,
               "checkpoint '{}' does not match the {}: it has no '{}' (missing; expected shape {})",
               path, what, key, shapeText(t.sizes()));
    MS_REQUIRE(it->second->sizes() == t.sizes(), core::IoError,
               "checkpoint '{}' does not match the {}: '{}' has shape {} in the file, {} "
               "expected",
               path, what, key, shapeText(it->second->sizes()), shapeText(t.sizes()));
  }
  if (stored.size() != target.size()) {
    std::map<std::string, bool> known;
    for (const auto& entry : target) known[entry.first] = true;
    for (const auto& entry : stored) {
      MS_REQUIRE(known.count(entry.first) > 0, core::IoError,
                 "checkpoint '{}' does not match the {}: unexpected entry '{}'", path, what,
                 entry.first);
    }
  }
  torch::NoGradGuard noGrad;
  for (const auto& [key, t] : target) t.copy_(*byKey.at(key));
}

}  // namespace metasemi::io
