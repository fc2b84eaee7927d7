// Models: ConvLarge and ResNet-18 state-dict names, shapes and parameter counts as PyTorch's,
// output shapes, and the strict HDF5 state-dict round trip.
#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/TensorIo.h"
#include "metasemi/models/ConvLarge.h"
#include "metasemi/models/Network.h"
#include "metasemi/models/ResNet18.h"
#include "metasemi/models/StateDict.h"
#include "support/TestSupport.h"

using namespace metasemi;
using metasemi::test::errorOf;

namespace {

// torchvision.models.resnet18(num_classes=1000).state_dict(): key and shape ("-" for 0-d), in
// order, as printed by torchvision 0.14.1.
const char* const kResNet18Keys = R"(
conv1.weight 64 3 7 7
bn1.weight 64
bn1.bias 64
bn1.running_mean 64
bn1.running_var 64
bn1.num_batches_tracked -
layer1.0.conv1.weight 64 64 3 3
layer1.0.bn1.weight 64
layer1.0.bn1.bias 64
layer1.0.bn1.running_mean 64
layer1.0.bn1.running_var 64
layer1.0.bn1.num_batches_tracked -
layer1.0.conv2.weight 64 64 3 3
layer1.0.bn2.weight 64
layer1.0.bn2.bias 64
layer1.0.bn2.running_mean 64
layer1.0.bn2.running_var 64
layer1.0.bn2.num_batches_tracked -
layer1.1.conv1.weight 64 64 3 3
layer1.1.bn1.weight 64
layer1.1.bn1.bias 64
layer1.1.bn1.running_mean 64
layer1.1.bn1.running_var 64
layer1.1.bn1.num_batches_tracked -
layer1.1.conv2.weight 64 64 3 3
layer1.1.bn2.weight 64
layer1.1.bn2.bias 64
layer1.1.bn2.running_mean 64
layer1.1.bn2.running_var 64
layer1.1.bn2.num_batches_tracked -
layer2.0.conv1.weight 128 64 3 3
layer2.0.bn1.weight 128
layer2.0.bn1.bias 128
layer2.0.bn1.running_mean 128
layer2.0.bn1.running_var 128
layer2.0.bn1.num_batches_tracked -
layer2.0.conv2.weight 128 128 3 3
layer2.0.bn2.weight 128
layer2.0.bn2.bias 128
layer2.0.bn2.running_mean 128
layer2.0.bn2.running_var 128
layer2.0.bn2.num_batches_tracked -
layer2.0.downsample.0.weight 128 64 1 1
layer2.0.downsample.1.weight 128
layer2.0.downsample.1.bias 128
layer2.0.downsample.1.running_mean 128
layer2.0.downsample.1.running_var 128
layer2.0.downsample.1.num_batches_tracked -
layer2.1.conv1.weight 128 128 3 3
layer2.1.bn1.weight 128
layer2.1.bn1.bias 128
layer2.1.bn1.running_mean 128
layer2.1.bn1.running_var 128
layer2.1.bn1.num_batches_tracked -
layer2.1.conv2.weight 128 128 3 3
layer2.1.bn2.weight 128
layer2.1.bn2.bias 128
layer2.1.bn2.running_mean 128
layer2.1.bn2.running_var 128
layer2.1.bn2.num_batches_tracked -
layer3.0.conv1.weight 256 128 3 3
layer3.0.bn1.weight 256
layer3.0.bn1.bias 256
layer3.0.bn1.running_mean 256
layer3.0.bn1.running_var 256
layer3.0.bn1.num_batches_tracked -
layer3.0.conv2.weight 256 256 3 3
layer3.0.bn2.weight 256
layer3.0.bn2.bias 256
layer3.0.bn2.running_mean 256
layer3.0.bn2.running_var 256
layer3.0.bn2.num_batches_tracked -
layer3.0.downsample.0.weight 256 128 1 1
layer3.0.downsample.1.weight 256
layer3.0.downsample.1.bias 256
layer3.0.downsample.1.running_mean 256
layer3.0.downsample.1.running_var 256
layer3.0.downsample.1.num_batches_tracked -
layer3.1.conv1.weight 256 256 3 3
layer3.1.bn1.weight 256
layer3.1.bn1.bias 256
layer3.1.bn1.running_mean 256
layer3.1.bn1.running_var 256
layer3.1.bn1.num_batches_tracked -
layer3.1.conv2.weight 256 256 3 3
layer3.1.bn2.weight 256
layer3.1.bn2.bias 256
layer3.1.bn2.running_mean 256
layer3.1.bn2.running_var 256
layer3.1.bn2.num_batches_tracked -
layer4.0.conv1.weight 512 256 3 3
layer4.0.bn1.weight 512
layer4.0.bn1.bias 512
layer4.0.bn1.running_mean 512
layer4.0.bn1.running_var 512
layer4.0.bn1.num_batches_tracked -
layer4.0.conv2.weight 512 512 3 3
layer4.0.bn2.weight 512
layer4.0.bn2.bias 512
layer4.0.bn2.running_mean 512
layer4.0.bn2.running_var 512
layer4.0.bn2.num_batches_tracked -
layer4.0.downsample.0.weight 512 256 1 1
layer4.0.downsample.1.weight 512
layer4.0.downsample.1.bias 512
layer4.0.downsample.1.running_mean 512
layer4.0.downsample.1.running_var 512
layer4.0.downsample.1.num_batches_tracked -
layer4.1.conv1.weight 512 512 3 3
layer4.1.bn1.weight 512
layer4.1.bn1.bias 512
layer4.1.bn1.running_mean 512
layer4.1.bn1.running_var 512
layer4.1.bn1.num_batches_tracked -
layer4.1.conv2.weight 512 512 3 3
layer4.1.bn2.weight 512
layer4.1.bn2.bias 512
layer4.1.bn2.running_mean 512
layer4.1.bn2.running_var 512
layer4.1.bn2.num_batches_tracked -
fc.weight 1000 512
fc.bias 1000
)";

std::vector<std::string> describe(const torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [key, t] : models::stateDict(m)) {
    std::ostringstream line;
    line << key;
    if (t.dim() == 0) line << " -";
    for (const auto s : t.sizes()) line << ' ' << s;
    out.push_back(line.str());
  }
  return out;
}

// The reference model.py ConvLarge's state_dict keys and shapes, spelled out from its layer table.
std::vector<std::string> convLargeExpected(int inputChannels, int numClasses) {
  struct Block {
    int in, out, k;
  };
  const Block blocks[] = {{inputChannels, 128, 3}, {128, 128, 3}, {128, 128, 3},
                          {128, 256, 3},           {256, 256, 3}, {256, 256, 3},
                          {256, 512, 3},           {512, 256, 1}, {256, 128, 1}};
  std::vector<std::string> out;
  for (int i = 0; i < 9; ++i) {
    const auto& b = blocks[i];
    const auto p = "block" + std::to_string(i + 1);
    out.push_back(p + ".0.weight " + std::to_string(b.out) + " " + std::to_string(b.in) + " " +
                  std::to_string(b.k) + " " + std::to_string(b.k));
    for (const char* s : {".1.weight ", ".1.bias ", ".1.running_mean ", ".1.running_var "}) {
      out.push_back(p + s + std::to_string(b.out));
    }
    out.push_back(p + ".1.num_batches_tracked -");
  }
  out.push_back("classifier.0.weight " + std::to_string(numClasses) + " 128");
  out.push_back("classifier.0.bias " + std::to_string(numClasses));
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

models::NetworkSpec spec(const std::string& arch, int channels, int classes, double width = 1.0) {
  models::NetworkSpec s;
  s.architecture = arch;
  s.inputChannels = channels;
  s.numClasses = classes;
  s.widthFactor = width;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(convlarge_parameter_counts_and_names) {
  torch::manual_seed(0);
  const auto net10 = models::makeNetwork(spec("convlarge", 3, 10));
  BOOST_TEST(models::countParameters(*net10) == 3121802);
  BOOST_TEST(net10->parameters().size() == 29u);
  const auto got10 = describe(*net10);
  const auto want10 = convLargeExpected(3, 10);
  BOOST_TEST(got10 == want10, boost::test_tools::per_element());

  const auto net100 = models::makeNetwork(spec("convlarge", 3, 100));
  BOOST_TEST(models::countParameters(*net100) == 3133412);
  const auto got100 = describe(*net100);
  const auto want100 = convLargeExpected(3, 100);
  BOOST_TEST(got100 == want100, boost::test_tools::per_element());

  std::int64_t bnChannels = 0;
  for (const auto& b : net10->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) bnChannels += b.value().numel();
  }
  BOOST_TEST(bnChannels == 2048);
}

BOOST_AUTO_TEST_CASE(convlarge_width_factor_and_input_channels) {
  models::ConvLargeOptions o;
  o.inputChannels = 1;
  o.widthFactor = 0.25;
  models::ConvLarge net(o);
  const auto names = describe(*net);
  BOOST_TEST(names.front() == "block1.0.weight 32 1 3 3");
  BOOST_TEST(names.back() == "classifier.0.bias 10");
  BOOST_CHECK_THROW(models::makeNetwork(spec("vgg", 3, 10)), core::ConfigError);
  o.widthFactor = 0.0;
  BOOST_CHECK_THROW(models::ConvLarge{o}, core::ConfigError);
}

BOOST_AUTO_TEST_CASE(resnet18_matches_torchvision) {
  torch::manual_seed(0);
  const auto net = models::makeNetwork(spec("resnet18", 3, 1000));
  BOOST_TEST(models::countParameters(*net) == 11689512);
  const auto got = describe(*net);
  const auto want = lines(kResNet18Keys);
  BOOST_TEST(got == want, boost::test_tools::per_element());
  // torchvision's He-normal (fan_out) init: std = sqrt(2 / (64 * 7 * 7)) for conv1.
  const auto w = models::stateDict(*net).front().second;
  const double wantStd = std::sqrt(2.0 / (64 * 49));
  BOOST_TEST(std::abs(w.std().item<double>() - wantStd) < 0.05 * wantStd);
}

BOOST_AUTO_TEST_CASE(output_shapes) {
  torch::manual_seed(1);
  torch::NoGradGuard noGrad;
  struct Case {
    int c, h;
  };
  for (const Case cs : {Case{1, 28}, Case{3, 32}, Case{3, 224}}) {
    auto conv = models::makeNetwork(spec("convlarge", cs.c, 10, cs.h == 224 ? 0.125 : 0.25));
    auto res = models::makeNetwork(spec("resnet18", cs.c, 100));
    for (auto* net : {conv.get(), res.get()}) {
      for (const bool train : {true, false}) {
        net->train(train);
        const auto x = torch::randn({2, cs.c, cs.h, cs.h});
        const auto y = net->forward(x);
        BOOST_TEST(y.sizes().vec() == (std::vector<std::int64_t>{2, net->numClasses()}),
                   "input " << cs.c << "x" << cs.h);
        BOOST_TEST(torch::isfinite(y).all().item<bool>());
      }
    }
    BOOST_TEST(conv->features(torch::randn({2, cs.c, cs.h, cs.h})).size(1) ==
               (cs.h == 224 ? 16 : 32));
    BOOST_TEST(res->features(torch::randn({2, cs.c, cs.h, cs.h})).size(1) == 512);
  }
}

BOOST_AUTO_TEST_CASE(channels_last_gives_the_same_logits) {
  torch::manual_seed(2);
  auto net = models::makeNetwork(spec("convlarge", 3, 10, 0.25));
  net->eval();
  torch::NoGradGuard noGrad;
  const auto x = torch::randn({4, 3, 32, 32});
  const auto ref = net->forward(x);
  models::toChannelsLast(*net);
  const auto y = net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast));
  BOOST_TEST(torch::allclose(ref, y, 1e-4, 1e-5));
}

BOOST_AUTO_TEST_CASE(state_dict_hdf5_round_trip_is_bit_exact) {
  const auto dir = test::freshDir("models_state_dict");
  const auto path = (dir / "model.h5").string();
  torch::manual_seed(3);
  auto a = models::makeNetwork(spec("convlarge", 3, 10, 0.25));
  models::toChannelsLast(*a);
  {
    // Train-mode forwards make the BN buffers non-trivial.
    a->train();
    torch::NoGradGuard noGrad;
    a->forward(torch::randn({4, 3, 32, 32}));
    a->forward(torch::randn({4, 3, 32, 32}));
  }
  {
    io::H5File f(path, io::H5File::Mode::kCreate);
    io::writeNamedTensors(f, "model", models::stateDict(*a));
  }
  torch::manual_seed(4);
  auto b = models::makeNetwork(spec("convlarge", 3, 10, 0.25));
  {
    io::H5File f(path, io::H5File::Mode::kRead);
    // Stored in the standard layout: the file holds what PyTorch's state_dict holds.
    const auto w = io::readTensor(f, "model/block2.0.weight");
    BOOST_TEST(torch::equal(w, models::stateDict(*a)[6].second.contiguous()));
    io::restoreNamed(io::readNamedTensors(f, "model"), models::stateDict(*b), f.path(), "model");
  }
  const auto sa = models::stateDict(*a);
  const auto sb = models::stateDict(*b);
  BOOST_REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    BOOST_TEST(sa[i].first == sb[i].first);
    BOOST_TEST(torch::equal(sa[i].second, sb[i].second), sa[i].first);
  }
  BOOST_TEST(sb[6].second.is_contiguous());  // b keeps its own (standard) layout
}

BOOST_AUTO_TEST_CASE(state_dict_load_is_strict) {
  const auto dir = test::freshDir("models_state_dict_strict");
  torch::manual_seed(5);
  auto net = models::makeNetwork(spec("convlarge", 3, 10, 0.25));
  const auto before = models::stateDict(*net)[0].second.clone();
  auto write = [&](const std::string& name, const std::function<void(io::H5File&)>& edit) {
    const auto path = (dir / name).string();
    io::H5File f(path, io::H5File::Mode::kCreate);
    io::writeNamedTensors(f, "/", models::stateDict(*net));
    edit(f);
    return path;
  };
  auto other = models::makeNetwork(spec("convlarge", 3, 100, 0.25));

  // Missing key: a file written from a model without block9's BN is built by hand.
  {
    const auto path = (dir / "missing.h5").string();
    {
      io::H5File f(path, io::H5File::Mode::kCreate);
      for (const auto& [key, t] : models::stateDict(*net)) {
        if (key != "block9.1.running_var") io::writeTensor(f, key, t);
      }
    }
    io::H5File f(path, io::H5File::Mode::kRead);
    const auto msg = errorOf([&] {
      io::restoreNamed(io::readNamedTensors(f, "/"), models::stateDict(*net), f.path(), "model");
    });
    BOOST_TEST(msg.find(path) != std::string::npos, msg);
    BOOST_TEST(msg.find("block9.1.running_var") != std::string::npos, msg);
    BOOST_TEST(msg.find("missing") != std::string::npos, msg);
    BOOST_TEST(msg.find("[32]") != std::string::npos, msg);
  }
  // Extra key.
  {
    const auto path = write("extra.h5", [](io::H5File& f) {
      io::writeTensor(f, "block10.0.weight", torch::zeros({2}));
    });
    io::H5File f(path, io::H5File::Mode::kRead);
    const auto msg = errorOf([&] {
      io::restoreNamed(io::readNamedTensors(f, "/"), models::stateDict(*net), f.path(), "model");
    });
    BOOST_TEST(msg.find(path) != std::string::npos, msg);
    BOOST_TEST(msg.find("block10.0.weight") != std::string::npos, msg);
  }
  // Shape mismatch: a 100-class checkpoint into a 10-class model.
  {
    const auto path = (dir / "shape.h5").string();
    {
      io::H5File f(path, io::H5File::Mode::kCreate);
      io::writeNamedTensors(f, "model", models::stateDict(*other));
    }
    io::H5File f(path, io::H5File::Mode::kRead);
    const auto msg = errorOf([&] {
      io::restoreNamed(io::readNamedTensors(f, "model"), models::stateDict(*net), f.path(),
                       "model");
    });
    BOOST_TEST(msg.find(path) != std::string::npos, msg);
    BOOST_TEST(msg.find("classifier.0.weight") != std::string::npos, msg);
    BOOST_TEST(msg.find("[100, 32]") != std::string::npos, msg);
    BOOST_TEST(msg.find("[10, 32]") != std::string::npos, msg);
    BOOST_TEST(std::count(msg.begin(), msg.end(), '\n') == 0);
    // Missing group.
    const auto msg2 = errorOf([&] {
      io::restoreNamed(io::readNamedTensors(f, "ema"), models::stateDict(*net), f.path(), "model");
    });
    BOOST_TEST(msg2.find("ema") != std::string::npos, msg2);
  }
  BOOST_TEST(torch::equal(models::stateDict(*net)[0].second, before));
}
