// Checkpoints: every field survives a write/read round trip bit for bit; damaged, foreign and
// mismatched files give one clear IoError; writes are atomic; h5py reads /model.
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::core::IoError;
using metasemi::io::CheckpointState;
using metasemi::io::NamedTensors;
using metasemi::test::errorOf;

namespace {

bool bitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

bool bitEqual(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !bitEqual(a[i].second, b[i].second)) return false;
  }
  return true;
}

// A small model's state: float parameters (including values whose bits matter: -0, subnormal,
// NaN payload-free), BatchNorm buffers and the 0-d int64 num_batches_tracked, in an order that
// is not alphabetical.
NamedTensors sampleModel(std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto w = at::randn({8, 3, 3, 3}, gen, torch::kFloat);
  w.view(-1)[0] = -0.0f;
  w.view(-1)[1] = std::numeric_limits<float>::denorm_min();
  w.view(-1)[2] = std::numeric_limits<float>::quiet_NaN();
  return {{"block1.0.weight", w},
          {"block1.1.weight", at::rand({8}, gen, torch::kFloat)},
          {"block1.1.bias", at::randn({8}, gen, torch::kFloat)},
          {"block1.1.running_mean", at::randn({8}, gen, torch::kFloat)},
          {"block1.1.running_var", at::rand({8}, gen, torch::kFloat)},
          {"block1.1.num_batches_tracked", torch::tensor(std::int64_t{1234567890123})},
          {"classifier.0.weight", at::randn({10, 8}, gen, torch::kFloat)},
          {"classifier.0.bias", at::randn({10}, gen, torch::kFloat)}};
}

CheckpointState sampleState() {
  CheckpointState s;
  s.step = 400;
  s.bestAcc1 = 71.23456789012345;
  s.bestAcc5 = 98.5;
  s.lastAcc1 = 70.1;
  s.lastAcc5 = 1.0 / 3.0;
  s.model = sampleModel(7);
  for (const auto& [key, t] : s.model) {
    if (key.find("running") == std::string::npos && key.find("num_batches") == std::string::npos) {
      s.momentum.emplace_back(key, torch::randn_like(t).mul_(0.01));
    }
  }
  auto gen = at::detail::createCPUGenerator(99);
  at::randn({17}, gen, torch::kFloat);  // advance: a state that is not the seed's initial one
  s.torchRng = gen.get_state();
  s.rngWords = {0, 1, std::numeric_limits<std::uint64_t>::max(), 0x8000000000000001ULL};
  s.dataState = {-1, 0, 42, std::numeric_limits<std::int64_t>::min()};
  s.dataJson = R"({"labeled":{"pass":3,"pos":17},"unlabeled":{"pass":1,"pos":0}})";
  s.config = "dataset = cifar10\nlr = 0.1\nsave_path = /tmp/r\u00e9sultats\n";
  return s;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
  const auto dir = metasemi::test::freshDir("checkpoint_round_trip");
  const auto path = (dir / "checkpoint.h5").string();
  const auto s = sampleState();
  metasemi::io::writeCheckpoint(path, s);
  const auto r = metasemi::io::readCheckpoint(path);
  BOOST_TEST(r.step == s.step);
  BOOST_TEST(std::memcmp(&r.bestAcc1, &s.bestAcc1, sizeof(double)) == 0);
  BOOST_TEST(std::memcmp(&r.bestAcc5, &s.bestAcc5, sizeof(double)) == 0);
  BOOST_TEST(std::memcmp(&r.lastAcc1, &s.lastAcc1, sizeof(double)) == 0);
  BOOST_TEST(std::memcmp(&r.lastAcc5, &s.lastAcc5, sizeof(double)) == 0);
  BOOST_TEST(bitEqual(r.model, s.model));
  BOOST_TEST(r.model[5].second.dim() == 0);
  BOOST_TEST(bitEqual(r.momentum, s.momentum));
  BOOST_TEST(bitEqual(r.torchRng, s.torchRng));
  BOOST_TEST(r.rngWords == s.rngWords);
  BOOST_TEST(r.dataState == s.dataState);
  BOOST_TEST(r.dataJson == s.dataJson);
  BOOST_TEST(r.config == s.config);
  // The torch generator continues exactly as the saved one.
  auto saved = at::detail::createCPUGenerator(0);
  saved.set_state(s.torchRng);
  auto restored = at::detail::createCPUGenerator(1);
  restored.set_state(r.torchRng);
  BOOST_TEST(
      bitEqual(at::randn({5}, saved, torch::kFloat), at::randn({5}, restored, torch::kFloat)));
  // Nothing but the final file is left in the folder.
  BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
}

BOOST_AUTO_TEST_CASE(empty_optional_parts_round_trip) {
  const auto dir = metasemi::test::freshDir("checkpoint_empty_parts");
  const auto path = (dir / "c.h5").string();
  CheckpointState s;
  s.model = sampleModel(3);
  metasemi::io::writeCheckpoint(path, s);
  const auto r = metasemi::io::readCheckpoint(path);
  BOOST_TEST(bitEqual(r.model, s.model));
  BOOST_TEST(r.momentum.empty());
  BOOST_TEST(!r.torchRng.defined());
  BOOST_TEST(r.rngWords.empty());
  BOOST_TEST(r.dataState.empty());
  BOOST_TEST(r.dataJson.empty());
}

BOOST_AUTO_TEST_CASE(restore_copies_into_live_tensors) {
  const auto dir = metasemi::test::freshDir("checkpoint_restore");
  const auto path = (dir / "c.h5").string();
  const auto s = sampleState();
  metasemi::io::writeCheckpoint(path, s);
  const auto r = metasemi::io::readCheckpoint(path);
  auto live = sampleModel(8);  // same keys and shapes, other values, other order
  std::swap(live[0], live[3]);
  metasemi::io::restoreNamed(r.model, live, path, "model");
  for (const auto& [key, t] : live) {
    for (const auto& [k2, t2] : s.model) {
      if (k2 == key) BOOST_TEST(bitEqual(t, t2), key);
    }
  }
}

BOOST_AUTO_TEST_CASE(model_mismatch_is_one_clear_line_and_changes_nothing) {
  const auto dir = metasemi::test::freshDir("checkpoint_mismatch");
  const auto path = (dir / "c.h5").string();
  metasemi::io::writeCheckpoint(path, sampleState());
  const auto r = metasemi::io::readCheckpoint(path);

  auto wrongShape = sampleModel(8);
  wrongShape[6].second = torch::zeros({100, 8});  // a 100-class classifier
  const auto before = wrongShape[0].second.clone();
  auto msg = errorOf([&] { metasemi::io::restoreNamed(r.model, wrongShape, path, "model"); });
  BOOST_TEST(contains(msg, path), msg);
  BOOST_TEST(contains(msg, "'classifier.0.weight' has shape [10, 8] in the file, [100, 8]"), msg);
  BOOST_TEST(!contains(msg, "\n"), msg);
  BOOST_TEST(bitEqual(wrongShape[0].second, before));  // validated before copying

  auto missing = sampleModel(8);
  missing.emplace_back("block2.0.weight", torch::zeros({4}));
  msg = errorOf([&] { metasemi::io::restoreNamed(r.model, missing, path, "model"); });
  BOOST_TEST(contains(msg, "has no 'block2.0.weight'"), msg);

  auto fewer = sampleModel(8);
  fewer.pop_back();
  msg = errorOf([&] { metasemi::io::restoreNamed(r.model, fewer, path, "model"); });
  BOOST_TEST(contains(msg, "unexpected entry 'classifier.0.bias'"), msg);
}

BOOST_AUTO_TEST_CASE(damaged_and_foreign_files_are_rejected) {
  const auto dir = metasemi::test::freshDir("checkpoint_damaged");
  const auto good = (dir / "good.h5").string();
  metasemi::io::writeCheckpoint(good, sampleState());

  // Truncated to half its size (a copy cut short, a full disk).
  const auto truncated = (dir / "truncated.h5").string();
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  auto msg = errorOf([&] { metasemi::io::readCheckpoint(truncated); });
  BOOST_TEST(contains(msg, truncated), msg);

  // Garbage bytes.
  const auto garbage = (dir / "garbage.h5").string();
  std::ofstream(garbage) << "this is not an HDF5 file\n";
  msg = errorOf([&] { metasemi::io::readCheckpoint(garbage); });
  BOOST_TEST(contains(msg, garbage), msg);

  // Missing file.
  msg = errorOf([&] { metasemi::io::readCheckpoint((dir / "none.h5").string()); });
  BOOST_TEST(contains(msg, "none.h5"), msg);

  // An HDF5 file of another kind (e.g. a data shard).
  const auto shard = (dir / "shard.h5").string();
  {
    metasemi::io::H5File f(shard, metasemi::io::H5File::Mode::kCreate);
    f.writeVector<std::int64_t>("labels", {1, 2, 3});
  }
  msg = errorOf([&] { metasemi::io::readCheckpoint(shard); });
  BOOST_TEST(contains(msg, "is not a MetaSemi checkpoint"), msg);

  // A future format version.
  const auto future = (dir / "future.h5").string();
  fs::copy_file(good, future);
  {
    metasemi::io::H5File f(future, metasemi::io::H5File::Mode::kReadWrite);
    f.setAttr("/", "format_version", std::int64_t{99});
  }
  msg = errorOf([&] { metasemi::io::readCheckpoint(future); });
  BOOST_TEST(contains(msg, "format version 99; this program reads version 1"), msg);

  // A required dataset removed (written by hand without /data/state).
  const auto partial = (dir / "partial.h5").string();
  {
    metasemi::io::H5File f(partial, metasemi::io::H5File::Mode::kCreate);
    f.setAttr("/", "format", "metasemi-checkpoint");
    f.setAttr("/", "format_version", std::int64_t{1});
    for (const char* k : {"best_acc1", "best_acc5", "last_acc1", "last_acc5"}) {
      f.setAttr("/", k, 0.0);
    }
    f.setAttr("/", "step", std::int64_t{1});
    f.setAttr("/", "config", "");
    f.writeVector<std::int64_t>("/rng/words", {1});
  }
  msg = errorOf([&] { metasemi::io::readCheckpoint(partial); });
  BOOST_TEST(contains(msg, "missing dataset '/data/state'"), msg);
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_previous_file) {
  const auto dir = metasemi::test::freshDir("checkpoint_atomic");
  const auto path = (dir / "checkpoint.h5").string();
  auto s = sampleState();
  metasemi::io::writeCheckpoint(path, s);
  auto bad = sampleState();
  bad.step = 800;
  bad.model.emplace_back("bad/name", torch::zeros({2}));  // fails half-way through the write
  BOOST_CHECK_THROW(metasemi::io::writeCheckpoint(path, bad), IoError);
  BOOST_TEST(metasemi::io::readCheckpoint(path).step == 400);
  BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
}

BOOST_AUTO_TEST_CASE(best_file_follows_best_evaluations_only) {
  const auto dir = metasemi::test::freshDir("checkpoint_best");
  auto s = sampleState();
  metasemi::io::writeCheckpointFiles(dir.string(), s, /*isBest=*/true);
  BOOST_TEST(fs::exists(dir / "model_best.h5"));
  BOOST_TEST(metasemi::io::readCheckpoint((dir / "model_best.h5").string()).step == 400);
  s.step = 800;
  metasemi::io::writeCheckpointFiles(dir.string(), s, /*isBest=*/false);
  BOOST_TEST(metasemi::io::readCheckpoint((dir / "checkpoint.h5").string()).step == 800);
  BOOST_TEST(metasemi::io::readCheckpoint((dir / "model_best.h5").string()).step == 400);
  s.step = 1200;
  metasemi::io::writeCheckpointFiles(dir.string(), s, /*isBest=*/true);
  BOOST_TEST(metasemi::io::readCheckpoint((dir / "model_best.h5").string()).step == 1200);
  BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
}

BOOST_AUTO_TEST_CASE(h5py_reads_the_model_group) {
  if (!fs::exists("/usr/bin/python3") ||
      metasemi::test::runCommand("/usr/bin/python3 -c 'import h5py, numpy'").exitCode != 0) {
    BOOST_TEST_MESSAGE("python3-h5py not installed: skipped");
    return;
  }
  const auto dir = metasemi::test::freshDir("checkpoint_h5py");
  const auto path = (dir / "checkpoint.h5").string();
  const auto s = sampleState();
  metasemi::io::writeCheckpoint(path, s);
  // Python prints, per key in the stored order: name, shape, dtype and the float64 sum of the
  // finite values; C++ computes the same figures from the tensors it wrote.
  const std::string script =
      "import h5py, numpy as np, sys\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "print('step', int(f.attrs['step']), f.attrs['format'])\n"
      "for k in f['model'].attrs['keys']:\n"
      "    a = f['model'][k][()]\n"
      "    s = np.nansum(np.asarray(a, dtype=np.float64))\n"
      "    print(k, list(a.shape), a.dtype, repr(float(s)))\n";
  const auto scriptPath = dir / "read.py";
  std::ofstream(scriptPath) << script;
  const auto r = metasemi::test::runCommand("/usr/bin/python3 " + scriptPath.string() + " " + path);
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  std::string expected = "step 400 metasemi-checkpoint\n";
  for (const auto& [key, t] : s.model) {
    const auto d = t.to(torch::kDouble);
    const double sum = torch::nansum(d).item<double>();
    std::vector<std::string> dims;
    for (auto v : t.sizes()) dims.push_back(std::to_string(v));
    std::string shape = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) shape += (i ? ", " : "") + dims[i];
    shape += "]";
    const std::string dtype = t.scalar_type() == torch::kFloat ? "float32" : "int64";
    expected += fmt::format("{} {} {} {}\n", key, shape, dtype, sum);
    (void)sum;
  }
  // Sums may differ in the last bits (summation order): compare names, shapes and dtypes
  // exactly, and the sums to 1e-9 relative.
  std::istringstream got(r.output);
  std::istringstream want(expected);
  std::string g;
  std::string w;
  while (std::getline(want, w)) {
    BOOST_TEST_REQUIRE(static_cast<bool>(std::getline(got, g)), r.output);
    const auto gCut = g.rfind(' ');
    const auto wCut = w.rfind(' ');
    BOOST_TEST(g.substr(0, gCut) == w.substr(0, wCut));
    if (w.rfind("step", 0) == 0) continue;
    const double gs = std::stod(g.substr(gCut + 1));
    const double ws = std::stod(w.substr(wCut + 1));
    BOOST_TEST(std::abs(gs - ws) <= 1e-9 * std::max(1.0, std::abs(ws)), g << " vs " << w);
  }
}
