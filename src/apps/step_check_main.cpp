// metasemi-step-check: one training step on a given checkpoint and batch, every intermediate
// written to HDF5, so this implementation can be compared with the PyTorch reference on
// identical inputs. File layouts: src/metasemi/meta/README.md.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/Hdf5.h"
#include "metasemi/io/TensorIo.h"
#include "metasemi/meta/MetaStep.h"
#include "metasemi/meta/Sgd.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/StateDict.h"
#include "metasemi/train/Recipe.h"

namespace {

using namespace metasemi;
namespace po = boost::program_options;

struct Options {
  std::string checkpoint, modelGroup = "model", batch, output;
  std::string arch = "convlarge", method = "meta", metaGrad = "fd", dtype = "float32";
  bool mixUp = false, channelsLast = true, gpu = false;
  std::int64_t numClasses = 10, threads = 0;
  double widthFactor = 1.0, dropout = 0.5, lr = 0.1, epsilon = 1e-2, weight = 1.0, alpha = 1.0;
  double weightDecay = 1e-4, momentum = 0.9;
  std::uint64_t seed = 1234;
};

const char* const kUsage =
    "Usage: metasemi-step-check --checkpoint FILE --batch FILE --output FILE [options]\n"
    "Runs one MetaSemi (or baseline) step from a model state dict and a batch, and writes the\n"
    "losses, norms, pseudo-labels, gradients and the updated state dict to an HDF5 file.\n";

Options parse(int argc, char** argv, bool& help) {
  Options o;
  int channelsLast = 1;
  po::options_description desc("Options");
  desc.add_options()("help,h", "this text")("checkpoint", po::value(&o.checkpoint)->required(),
                                            "HDF5 file holding the state dict")(
      "model-group", po::value(&o.modelGroup)->default_value(o.modelGroup),
      "group of the state dict in the checkpoint ('/' = root)")(
      "batch", po::value(&o.batch)->required(), "HDF5 batch file")(
      "output", po::value(&o.output)->required(), "HDF5 file to write")(
      "architecture,a", po::value(&o.arch)->default_value(o.arch), "convlarge or resnet18")(
      "num-classes", po::value(&o.numClasses)->default_value(o.numClasses), "classes")(
      "width-factor", po::value(&o.widthFactor)->default_value(o.widthFactor),
      "ConvLarge channel multiplier")("dropout", po::value(&o.dropout)->default_value(o.dropout),
                                      "ConvLarge Dropout2d probability (0 = off)")(
      "method", po::value(&o.method)->default_value(o.method), "meta or baseline")(
      "mix-up", po::bool_switch(&o.mixUp), "mix-up (as the reference's --mix-up)")(
      "meta-grad", po::value(&o.metaGrad)->default_value(o.metaGrad), "fd or exact")(
      "lr", po::value(&o.lr)->default_value(o.lr), "learning rate of this step")(
      "epsilon", po::value(&o.epsilon)->default_value(o.epsilon), "eps0")(
      "weight", po::value(&o.weight)->default_value(o.weight), "consistency weight of this step")(
      "alpha", po::value(&o.alpha)->default_value(o.alpha), "mix-up Beta(alpha, alpha)")(
      "weight-decay", po::value(&o.weightDecay)->default_value(o.weightDecay), "SGD weight decay")(
      "momentum", po::value(&o.momentum)->default_value(o.momentum), "SGD momentum")(
      "seed", po::value(&o.seed)->default_value(o.seed),
      "seeds the global torch generator (dropout) and the mix-up generator")(
      "dtype", po::value(&o.dtype)->default_value(o.dtype), "float32 or float64")(
      "channels-last", po::value(&channelsLast)->default_value(channelsLast),
      "1: channels-last memory format, 0: NCHW")("threads",
                                                 po::value(&o.threads)->default_value(o.threads),
                                                 "intra-op threads (0 = LibTorch's default)")(
      "gpu", po::bool_switch(&o.gpu),
      "run the step on the GPU (inputs and outputs stay the same files; dropout masks then come "
      "from the CUDA generator)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      help = true;
      std::cout << kUsage << desc;
      return o;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw core::ConfigError(e.what());
  }
  o.channelsLast = channelsLast != 0;
  MS_REQUIRE(o.method == "meta" || o.method == "baseline", core::ConfigError,
             "--method: expected meta or baseline, got '{}'", o.method);
  MS_REQUIRE(o.metaGrad == "fd" || o.metaGrad == "exact", core::ConfigError,
             "--meta-grad: expected fd or exact, got '{}'", o.metaGrad);
  MS_REQUIRE(o.dtype == "float32" || o.dtype == "float64", core::ConfigError,
             "--dtype: expected float32 or float64, got '{}'", o.dtype);
  MS_REQUIRE(o.numClasses >= 1, core::ConfigError, "--num-classes: expected >= 1, got {}",
             o.numClasses);
  MS_REQUIRE(o.lr >= 0, core::ConfigError, "--lr: expected >= 0, got {}", o.lr);
  MS_REQUIRE(o.threads >= 0, core::ConfigError, "--threads: expected >= 0, got {}", o.threads);
  return o;
}

// The run settings these options stand for, so that the step kind and the network are the
// trainer's (train::Recipe) and not decided again here.
train::TrainConfig runConfigOf(const Options& o) {
  train::TrainConfig c;
  c.method = o.method == "meta" ? train::Method::kMeta : train::Method::kBaseline;
  c.mixUp = o.mixUp;
  c.architecture = o.arch;
  c.widthFactor = o.widthFactor;
  c.dropout = o.dropout;
  return c;
}

torch::Tensor readChecked(const io::H5File& f, const std::string& name, torch::ScalarType type,
                          std::int64_t dims) {
  MS_REQUIRE(f.isDataset(name), core::IoError, "{}: missing dataset '{}'", f.path(), name);
  auto t = io::readTensor(f, name);
  MS_REQUIRE(t.dim() == dims, core::IoError, "{}: dataset '{}' should have {} dimensions, found {}",
             f.path(), name, dims, models::shapeString(t.sizes()));
  return t.to(type);
}

void writeScalar(io::H5File& f, const std::string& name, const torch::Tensor& t) {
  if (t.defined()) io::writeTensor(f, name, t.detach().to(torch::kCPU));
}

int run(const Options& o) {
  const torch::Device device = train::deviceFor(o.gpu, 0);
  train::configureDevice(device, /*deterministic=*/true);
  if (o.threads > 0) torch::set_num_threads(static_cast<int>(o.threads));
  const auto dtype = o.dtype == "float64" ? torch::kDouble : torch::kFloat;
  const train::TrainConfig runConfig = runConfigOf(o);
  const auto kind = train::stepKindOf(runConfig);
  const bool usesUnlabeled = kind != meta::StepKind::kLabeledOnly;

  meta::StepBatch batch;
  {
    io::H5File f(o.batch, io::H5File::Mode::kRead);
    batch.labeledImages = readChecked(f, "labeled_images", dtype, 4);
    batch.labels = readChecked(f, "labels", torch::kLong, 1);
    const auto b = batch.labeledImages.size(0);
    MS_REQUIRE(batch.labels.size(0) == b, core::IoError,
               "{}: 'labels' has {} entries for {} labeled images", o.batch, batch.labels.size(0),
               b);
    if (usesUnlabeled) {
      batch.unlabeledImages = readChecked(f, "unlabeled_images", dtype, 4);
      MS_REQUIRE(batch.unlabeledImages.sizes() == batch.labeledImages.sizes(), core::IoError,
                 "{}: 'unlabeled_images' has shape {}, expected {} (as 'labeled_images')", o.batch,
                 models::shapeString(batch.unlabeledImages.sizes()),
                 models::shapeString(batch.labeledImages.sizes()));
      if (f.exists("unlabeled_labels")) {
        batch.unlabeledLabels = readChecked(f, "unlabeled_labels", torch::kLong, 1);
      }
    }
    if (f.exists("lambda")) {
      batch.lambda = readChecked(f, "lambda", dtype, 1);
      MS_REQUIRE(batch.lambda.size(0) == b, core::IoError,
                 "{}: 'lambda' has {} entries for a batch of {}", o.batch, batch.lambda.size(0), b);
    }
  }

  auto net = models::makeNetwork(
      train::networkSpecOf(runConfig, batch.labeledImages.size(1), o.numClasses));
  net->to(dtype);
  {
    io::H5File f(o.checkpoint, io::H5File::Mode::kRead);
    io::restoreNamed(io::readNamedTensors(f, o.modelGroup), models::stateDict(*net), f.path(),
                     "model");
  }
  net->to(device);
  for (torch::Tensor* t : {&batch.labeledImages, &batch.labels, &batch.unlabeledImages,
                           &batch.unlabeledLabels, &batch.lambda}) {
    if (t->defined()) *t = t->to(device);
  }
  if (o.channelsLast) models::toChannelsLast(*net);

  meta::Sgd sgd(net->parameters(), o.momentum, o.weightDecay);
  meta::MetaStep step(net, sgd, o.channelsLast);
  std::vector<torch::Tensor> labeledGrad;
  step.setLabeledGradientHook([&](std::vector<torch::Tensor>& g) {
    for (const auto& t : g) labeledGrad.push_back(t.detach().clone());
  });
  meta::StepSettings settings;
  settings.kind = kind;
  settings.metaGrad =
      o.metaGrad == "exact" ? meta::MetaGrad::kExact : meta::MetaGrad::kFiniteDifference;
  settings.lr = o.lr;
  settings.epsilon = o.epsilon;
  settings.weight = o.weight;
  settings.alpha = o.alpha;
  torch::manual_seed(o.seed);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto r = step.run(batch, settings, generator);

  io::AtomicOutput out(o.output);
  {
    io::H5File f(out.tempPath(), io::H5File::Mode::kCreate);
    writeScalar(f, "loss", r.loss);
    writeScalar(f, "labeled_loss", r.labeledLoss);
    writeScalar(f, "mix_loss", r.mixLoss);
    writeScalar(f, "unlabeled_loss", r.unlabeledLoss);
    writeScalar(f, "labeled_accuracy", r.labeledAccuracy);
    writeScalar(f, "unlabeled_accuracy", r.unlabeledAccuracy);
    writeScalar(f, "grad_norm", r.gradNorm);
    writeScalar(f, "epsilon", r.epsilon);
    writeScalar(f, "pseudo_labels_init", r.pseudoLabelsInit);
    writeScalar(f, "pseudo_labels", r.pseudoLabels);
    writeScalar(f, "lambda", r.lambda);
    const auto names = net->named_parameters();
    for (std::size_t i = 0; i < names.size(); ++i) {
      io::writeTensor(f, "grads/" + names[i].key(), names[i].value().grad().detach());
      if (!labeledGrad.empty()) {
        io::writeTensor(f, "labeled_grads/" + names[i].key(), labeledGrad[i]);
      }
    }
    io::writeNamedTensors(f, "model", models::stateDict(*net));
    f.setAttr("/", "method", o.method);
    f.setAttr("/", "mix_up", static_cast<std::int64_t>(o.mixUp));
    f.setAttr("/", "meta_grad", o.metaGrad);
    f.setAttr("/", "lr", o.lr);
    f.setAttr("/", "epsilon0", o.epsilon);
    f.setAttr("/", "weight", o.weight);
    f.setAttr("/", "alpha", o.alpha);
    f.setAttr("/", "dtype", o.dtype);
  }
  out.commit();
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  metasemi::io::silenceHdf5Errors();
  try {
    bool help = false;
    const auto options = parse(argc, argv, help);
    return help ? metasemi::core::kExitOk : run(options);
  } catch (const std::exception& e) {
    std::cerr << "metasemi-step-check: " << metasemi::core::describeError(e) << "\n";
    return metasemi::core::exitCodeFor(e);
  }
}
