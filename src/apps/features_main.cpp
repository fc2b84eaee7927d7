// metasemi-features: the penultimate-layer features of a run's labeled, unlabeled and test images
// (ConvLarge's pooled feature, ResNet-18's 512-d), written for metasemi-tsne. Runs under mpirun:
// ranks split the images.
#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>

#include "metasemi/app/CommandLine.h"
#include "metasemi/app/MpiProgram.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/Random.h"
#include "metasemi/data/ShardSource.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/ConfigText.h"
#include "metasemi/train/Recipe.h"
#include "metasemi/train/RunState.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace metasemi;

namespace {

struct Options {
  std::string checkpoint, dataPath, labelSplit, output;
  std::int64_t maxPoints = 0;
  std::uint64_t seed = 0;
  int batch = 500;
  int threads = 0;
  bool gpu = false;
};

// Up to `k` of `v`, drawn without replacement with `rng` (all of them, in order, when k >= size).
std::vector<std::int64_t> sample(std::vector<std::int64_t> v, std::int64_t k, core::Rng& rng) {
  if (k < 0 || k >= static_cast<std::int64_t>(v.size())) return v;
  core::shuffle(v, rng);
  v.resize(static_cast<std::size_t>(k));
  std::sort(v.begin(), v.end());
  return v;
}

// Features of `indices` of `source` (rank r takes every R-th batch); rows summed over ranks, so
// every rank ends with all of them.
std::vector<float> extract(models::Network& net, const data::ShardSource& source,
                           const data::AugmentConfig& augment,
                           const std::vector<std::int64_t>& indices, std::int64_t dim, int batch,
                           comm::Communicator& comm) {
  std::vector<float> out(indices.size() * static_cast<std::size_t>(dim), 0.0f);
  torch::NoGradGuard noGrad;
  const auto n = static_cast<std::int64_t>(indices.size());
  for (std::int64_t b = 0, k = 0; b < n; b += batch, ++k) {
    if (k % comm.size() != comm.rank()) continue;
    const std::int64_t e = std::min(n, b + batch);
    std::vector<std::int64_t> part(indices.begin() + b, indices.begin() + e);
    const data::Batch x =
        data::makeBatch(source, augment, part, std::vector<std::uint64_t>(part.size(), 0));
    const torch::Device device = net.parameters().front().device();
    const torch::Tensor f =
        net.features(x.images.to(device)).to(torch::kCPU, torch::kFloat32).contiguous();
    std::copy(f.data_ptr<float>(), f.data_ptr<float>() + f.numel(), out.begin() + b * dim);
  }
  comm.allreduceSum(out.data(), out.size());
  return out;
}

int run(const Options& o, comm::Communicator& comm) {
  const torch::Device device = train::deviceFor(o.gpu, comm.localRank());
  train::configureDevice(device, /*deterministic=*/true);
  at::set_num_threads(o.threads > 0 ? o.threads : 1);
  core::requireFile(o.checkpoint, "--checkpoint");
  const io::CheckpointState ckpt = io::readCheckpoint(o.checkpoint);
  const train::TrainConfig c = train::checkpointConfig(ckpt, o.checkpoint);
  train::requireFiniteTensors(ckpt.model, o.checkpoint, "model tensor");
  const std::string dataPath = o.dataPath.empty() ? c.dataPath : o.dataPath;
  const std::string split =
      o.labelSplit.empty() ? io::labelSplitName(c.numLabel, c.seed) : o.labelSplit;
  data::RunDataSpec spec;
  spec.dir = dataPath;
  spec.labelSplit = split;
  spec.crop = c.imcrop;
  spec.resize = c.imsize;
  const data::RunData run(spec);

  const models::NetworkSpec ns =
      train::networkSpecOf(c, run.trainInfo().decodedChannels, run.trainInfo().numClasses);
  auto net = models::makeNetwork(ns);
  io::restoreNamed(ckpt.model, models::stateDict(*net), o.checkpoint, "model");
  net->to(device);
  net->eval();

  // The reference's sets: labeled = the split's images, unlabeled = the other training images,
  // test = the whole test split; --max-points keeps every labeled image and an equal seeded
  // share of the other two.
  core::Rng rng(core::deriveSeed(o.seed, {0x66656174}));
  std::vector<std::int64_t> labeled = run.labelSplit().labeled;
  std::vector<std::int64_t> unlabeled = run.labelSplit().unlabeled;
  std::vector<std::int64_t> test(static_cast<std::size_t>(run.testSource()->size()));
  for (std::size_t i = 0; i < test.size(); ++i) test[i] = static_cast<std::int64_t>(i);
  if (o.maxPoints > 0) {
    const std::int64_t rest =
        std::max<std::int64_t>(0, o.maxPoints - static_cast<std::int64_t>(labeled.size())) / 2;
    unlabeled = sample(unlabeled, rest, rng);
    test = sample(test, rest, rng);
  }
  const std::int64_t dim = net->features(torch::zeros({1, ns.inputChannels, run.trainInfo().height,
                                                       run.trainInfo().width},
                                                      torch::TensorOptions().device(device)))
                               .size(1);

  std::vector<float> features;
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> subset;
  auto append = [&](const data::ShardSource& src, const std::vector<std::int64_t>& idx,
                    std::uint8_t tag) {
    const auto f = extract(*net, src, run.evalAugment(), idx, dim, o.batch, comm);
    features.insert(features.end(), f.begin(), f.end());
    for (auto i : idx) {
      labels.push_back(src.label(i));
      subset.push_back(tag);
    }
  };
  append(*run.trainSource(), labeled, 0);
  append(*run.trainSource(), unlabeled, 1);
  append(*run.testSource(), test, 2);

  if (comm.isRoot()) {
    io::AtomicOutput out(o.output);
    {
      io::H5File f(out.tempPath(), io::H5File::Mode::kCreate);
      f.write("features", io::DType::kFloat32, features.data(),
              {static_cast<std::int64_t>(labels.size()), dim});
      f.writeVector("labels", labels);
      f.writeVector("subset", subset);
      f.setAttr("/", "class_names", run.trainInfo().classNames);
      f.setAttr("/", "checkpoint", o.checkpoint);
    }
    out.commit();
    core::rootLog().info("{} x {} features ({} labeled, {} unlabeled, {} test) -> {}",
                         labels.size(), dim, labeled.size(), unlabeled.size(), test.size(),
                         o.output);
  }
  comm.barrier();
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  app::MpiProgram program("metasemi-features", argc, argv);
  comm::Communicator& comm = program.comm();
  Options o;
  po::options_description desc(
      "Usage: metasemi-features --checkpoint FILE.h5 --output FEATURES.h5 [options]\n"
      "Penultimate-layer features of a run's labeled, unlabeled and test images, for "
      "metasemi-tsne.\nOptions");
  desc.add_options()("help,h", "show this help")("checkpoint", po::value(&o.checkpoint),
                                                 "checkpoint.h5 or model_best.h5 of a run")(
      "data-path", po::value(&o.dataPath), "shard set folder (default: the run's --data-path)")(
      "label-split", po::value(&o.labelSplit),
      "label split (default: the run's labels-<num-label>-seed<seed>)")(
      "output", po::value(&o.output), "features file to write (HDF5)")(
      "max-points", po::value(&o.maxPoints)->default_value(0),
      "keep every labeled image and at most this many points in all (0 = every image)")(
      "seed", po::value(&o.seed)->default_value(0), "seed of the --max-points sample")(
      "batch", po::value(&o.batch)->default_value(500), "images per forward")(
      "threads", po::value(&o.threads)->default_value(0), "LibTorch threads per rank (0 = 1)")(
      "gpu", po::bool_switch(&o.gpu), "run the network on this rank's GPU (by node-local rank)");
  return program.run([&]() -> int {
    po::variables_map vm;
    if (!app::parseCommandLine(argc, argv, desc, vm, comm.isRoot())) return core::kExitOk;
    MS_REQUIRE(!o.checkpoint.empty(), core::ConfigError, "--checkpoint is required");
    MS_REQUIRE(!o.output.empty(), core::ConfigError, "--output is required");
    MS_REQUIRE(o.batch > 0, core::ConfigError, "--batch must be positive, got {}", o.batch);
    MS_REQUIRE(o.maxPoints >= 0, core::ConfigError, "--max-points must be >= 0");
    return run(o, comm);
  });
}
