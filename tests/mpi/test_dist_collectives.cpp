// Two ranks: tensor collectives and bucketed gradient averaging give the hand-computed results
// bit for bit; broadcasts leave identical tensors on every rank.
#include <torch/torch.h>

#include <cstring>
#include <vector>

#include "metasemi/comm/GradientBucketer.h"
#include "metasemi/core/Error.h"
#include "support/TestSupport.h"

using metasemi::comm::GradientBucketer;
using metasemi::comm::ReduceOp;
using metasemi::test::allRanks;
using metasemi::test::comm;
using metasemi::test::sameOnAllRanks;

namespace {

// ConvLarge's 29 parameter tensors (10 classes): nine 3x3/1x1 convolutions without bias, nine
// BatchNorm weight/bias pairs, and the linear classifier.
std::vector<std::vector<std::int64_t>> convLargeShapes() {
  const std::vector<std::vector<std::int64_t>> convs = {
      {128, 3, 3, 3},   {128, 128, 3, 3}, {128, 128, 3, 3}, {256, 128, 3, 3}, {256, 256, 3, 3},
      {256, 256, 3, 3}, {512, 256, 3, 3}, {256, 512, 1, 1}, {128, 256, 1, 1}};
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& c : convs) {
    shapes.push_back(c);
    shapes.push_back({c[0]});
    shapes.push_back({c[0]});
  }
  shapes.push_back({10, 128});
  shapes.push_back({10});
  return shapes;
}

// Different values on each rank, derived from the rank so that every rank can compute the
// other's contribution and the expected average itself.
std::vector<torch::Tensor> rankTensors(int rank, torch::ScalarType dtype) {
  std::vector<torch::Tensor> ts;
  std::int64_t seed = 100;
  for (const auto& shape : convLargeShapes()) {
    auto gen = at::detail::createCPUGenerator(static_cast<std::uint64_t>(seed++ * 7 + rank));
    ts.push_back(at::randn(shape, gen, torch::TensorOptions().dtype(dtype)));
  }
  return ts;
}

bool bitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

void checkAverage(torch::ScalarType dtype, std::size_t bucketBytes, std::size_t minBuckets) {
  BOOST_TEST_REQUIRE(comm().size() == 2);
  auto mine = rankTensors(comm().rank(), dtype);
  const auto r0 = rankTensors(0, dtype);
  const auto r1 = rankTensors(1, dtype);
  GradientBucketer bucketer(bucketBytes);
  // Twice: the second call reuses the flat buffers of the first.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) mine = rankTensors(comm().rank(), dtype);
    bucketer.allreduce(comm(), mine);
    bool ok = true;
    for (std::size_t i = 0; i < mine.size(); ++i) {
      ok = ok && bitEqual(mine[i], (r0[i] + r1[i]) / 2);
    }
    MS_COLLECTIVE_CHECK(ok);
  }
  MS_COLLECTIVE_CHECK(bucketer.numBuckets() >= minBuckets);
  for (std::size_t b = 0; b < bucketer.numBuckets(); ++b) {
    // A bucket exceeds the limit only when it holds one tensor larger than the limit.
    MS_COLLECTIVE_CHECK(bucketer.bucketBytes(b) <=
                        std::max<std::size_t>(bucketBytes, 512 * 256 * 9 * 8));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(bucketed_average_float32_one_bucket) {
  checkAverage(torch::kFloat, GradientBucketer::kDefaultBucketBytes, 1);
}

BOOST_AUTO_TEST_CASE(bucketed_average_float32_many_buckets) {
  checkAverage(torch::kFloat, 1 << 20, 8);
}

BOOST_AUTO_TEST_CASE(bucketed_average_float64) { checkAverage(torch::kDouble, 4 << 20, 3); }

BOOST_AUTO_TEST_CASE(bucketed_sum_and_mixed_dtypes) {
  // float32 and float64 tensors interleaved: separate buckets, each summed exactly.
  const int r = comm().rank();
  std::vector<torch::Tensor> ts = {
      torch::full({3, 4}, 0.25 + r, torch::kFloat), torch::full({5}, 1.5 + r, torch::kDouble),
      torch::full({7}, -2.0 * r, torch::kFloat), torch::arange(6, torch::kDouble)};
  GradientBucketer bucketer;
  bucketer.allreduce(comm(), ts, /*average=*/false);
  MS_COLLECTIVE_CHECK(bucketer.numBuckets() == 4);
  MS_COLLECTIVE_CHECK(bitEqual(ts[0], torch::full({3, 4}, 1.5, torch::kFloat)));
  MS_COLLECTIVE_CHECK(bitEqual(ts[1], torch::full({5}, 4.0, torch::kDouble)));
  MS_COLLECTIVE_CHECK(bitEqual(ts[2], torch::full({7}, -2.0, torch::kFloat)));
  MS_COLLECTIVE_CHECK(bitEqual(ts[3], torch::arange(6, torch::kDouble) * 2));
}

BOOST_AUTO_TEST_CASE(non_contiguous_gradients_are_written_back) {
  const int r = comm().rank();
  auto base = torch::arange(12, torch::kFloat).reshape({3, 4}).add(static_cast<float>(r));
  auto t = base.t();  // a transposed view: not contiguous
  GradientBucketer bucketer;
  bucketer.allreduce(comm(), {t});
  const auto expected = torch::arange(12, torch::kFloat).reshape({3, 4}).add(0.5f);
  MS_COLLECTIVE_CHECK(bitEqual(base, expected));
}

BOOST_AUTO_TEST_CASE(tensor_allreduce_ops) {
  const int r = comm().rank();
  auto f = torch::tensor({1.0f + r, -3.0f * r, 0.1f});
  comm().allreduce(f, ReduceOp::kSum);
  MS_COLLECTIVE_CHECK(bitEqual(f, torch::tensor({3.0f, -3.0f, 0.1f + 0.1f})));
  auto i = torch::tensor({static_cast<std::int64_t>(r), 5 - static_cast<std::int64_t>(r)});
  comm().allreduce(i, ReduceOp::kMax);
  MS_COLLECTIVE_CHECK(bitEqual(i, torch::tensor({std::int64_t{1}, std::int64_t{5}})));
  auto d = torch::tensor({2.0 + r});
  comm().allreduce(d, ReduceOp::kMin);
  MS_COLLECTIVE_CHECK(d.item<double>() == 2.0);
  std::int64_t m = 3 * r;
  comm().allreduceMax(&m, 1);
  MS_COLLECTIVE_CHECK(m == 3);
  std::vector<float> fs = {0.5f * r, 1.0f};
  comm().allreduceSum(fs.data(), fs.size());
  MS_COLLECTIVE_CHECK(fs[0] == 0.5f && fs[1] == 2.0f);
}

BOOST_AUTO_TEST_CASE(unsupported_dtype_is_a_comm_error) {
  // Checked before any message is sent, so both ranks throw and nobody waits.
  auto h = torch::zeros({4}, torch::kHalf);
  bool threw = false;
  try {
    comm().allreduce(h, ReduceOp::kSum);
  } catch (const metasemi::core::CommError& e) {
    threw = std::string(e.what()).find("dtype") != std::string::npos;
  }
  MS_COLLECTIVE_CHECK(threw);
}

BOOST_AUTO_TEST_CASE(broadcast_tensors_from_rank0) {
  auto ts = rankTensors(comm().rank(), torch::kFloat);
  ts.push_back(torch::full({9}, 10 + comm().rank(), torch::kLong));
  ts.push_back(torch::full({2, 2}, comm().rank() == 0, torch::kBool));
  const auto rank0 = rankTensors(0, torch::kFloat);
  GradientBucketer bucketer(2 << 20);
  bucketer.broadcast(comm(), ts, 0);
  bool ok = true;
  for (std::size_t i = 0; i < rank0.size(); ++i) ok = ok && bitEqual(ts[i], rank0[i]);
  ok = ok && bitEqual(ts[ts.size() - 2], torch::full({9}, 10, torch::kLong));
  ok = ok && ts.back().all().item<bool>();
  MS_COLLECTIVE_CHECK(ok);
  for (const auto& t : ts) MS_COLLECTIVE_CHECK(sameOnAllRanks(t.data_ptr(), t.nbytes()));
}

BOOST_AUTO_TEST_CASE(broadcast_module_parameters_and_buffers) {
  // Each rank builds the module from its own seed; afterwards all hold rank 0's values.
  torch::manual_seed(42 + comm().rank());
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).bias(false)),
                            torch::nn::BatchNorm2d(8), torch::nn::Linear(8, 4));
  net->named_buffers()["1.running_mean"].fill_(static_cast<float>(comm().rank()));
  net->named_buffers()["1.num_batches_tracked"].fill_(7 + comm().rank());
  torch::manual_seed(42);
  torch::nn::Sequential ref(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).bias(false)),
                            torch::nn::BatchNorm2d(8), torch::nn::Linear(8, 4));
  metasemi::comm::broadcastModule(comm(), *net);
  bool ok = true;
  for (const auto& p : ref->named_parameters()) {
    ok = ok && bitEqual(net->named_parameters()[p.key()], p.value());
  }
  ok = ok && net->named_buffers()["1.running_mean"].eq(0).all().item<bool>();
  ok = ok && net->named_buffers()["1.num_batches_tracked"].item<std::int64_t>() == 7;
  MS_COLLECTIVE_CHECK(ok);
  for (const auto& p : net->named_parameters()) {
    MS_COLLECTIVE_CHECK(sameOnAllRanks(p.value().data_ptr(), p.value().nbytes()));
  }
  for (const auto& p : net->named_buffers()) {
    MS_COLLECTIVE_CHECK(sameOnAllRanks(p.value().data_ptr(), p.value().nbytes()));
  }
}

BOOST_AUTO_TEST_CASE(watchdog_lets_quick_collectives_through) {
  // With a limit, collectives go through the non-blocking path and still give exact results.
  comm().setCollectiveTimeout(30.0);
  auto ts = rankTensors(comm().rank(), torch::kFloat);
  const auto r0 = rankTensors(0, torch::kFloat);
  const auto r1 = rankTensors(1, torch::kFloat);
  GradientBucketer bucketer(1 << 20);
  bucketer.allreduce(comm(), ts);
  comm().barrier();
  bool ok = true;
  for (std::size_t i = 0; i < ts.size(); ++i) ok = ok && bitEqual(ts[i], (r0[i] + r1[i]) / 2);
  comm().setCollectiveTimeout(0.0);
  MS_COLLECTIVE_CHECK(ok);
  MS_COLLECTIVE_CHECK(comm().collectiveTimeout() == 0.0);
}

BOOST_AUTO_TEST_CASE(gradients_as_bucket_views_are_averaged_in_place) {
  // The gradients live in the buckets: backward accumulates into them, allreduce copies nothing,
  // and the result is the average of both ranks' gradients.
  torch::manual_seed(5);
  torch::nn::Linear net(16, 4);
  std::vector<torch::Tensor> params = net->parameters();
  GradientBucketer bucketer;
  const auto views = bucketer.bucketViews(params);
  for (std::size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = views[i];
    params[i].mutable_grad().zero_();
  }
  auto gradsOf = [&](int rank) {
    torch::manual_seed(100 + rank);
    const auto x = torch::randn({8, 16});
    for (auto& p : params) p.mutable_grad().zero_();
    net->forward(x).pow(2).sum().backward();
    std::vector<torch::Tensor> g;
    for (auto& p : params) g.push_back(p.grad().clone());
    return g;
  };
  const auto g0 = gradsOf(0);
  const auto g1 = gradsOf(1);
  gradsOf(comm().rank());
  bool inPlace = true;
  for (std::size_t i = 0; i < params.size(); ++i) {
    inPlace = inPlace && params[i].grad().data_ptr() == views[i].data_ptr();
  }
  bucketer.allreduce(comm(), {params[0].grad(), params[1].grad()});
  bool ok = inPlace;
  for (std::size_t i = 0; i < params.size(); ++i) {
    ok = ok && bitEqual(params[i].grad(), (g0[i] + g1[i]) / 2);
  }
  MS_COLLECTIVE_CHECK(inPlace);
  MS_COLLECTIVE_CHECK(ok);
}

BOOST_AUTO_TEST_CASE(views_and_separate_tensors_mixed) {
  const int r = comm().rank();
  std::vector<torch::Tensor> like = {torch::zeros({4}), torch::zeros({2, 3}), torch::zeros({5})};
  GradientBucketer bucketer;
  auto views = bucketer.bucketViews(like);
  std::vector<torch::Tensor> grads = {views[0], torch::zeros({2, 3}), views[2]};
  grads[0].fill_(1.0f + r);
  grads[1].fill_(3.0f * r);
  grads[2].fill_(-1.0f);
  bucketer.allreduce(comm(), grads);
  MS_COLLECTIVE_CHECK(bitEqual(grads[0], torch::full({4}, 1.5f)));
  MS_COLLECTIVE_CHECK(bitEqual(grads[1], torch::full({2, 3}, 1.5f)));
  MS_COLLECTIVE_CHECK(bitEqual(grads[2], torch::full({5}, -1.0f)));
  MS_COLLECTIVE_CHECK(grads[0].data_ptr() == views[0].data_ptr());
}

BOOST_AUTO_TEST_CASE(bucket_views_keep_channels_last_strides) {
  // Channels-last convolution weights get channels-last gradient views, so an optimiser reads
  // them in the parameter's own layout, and the average is still exact and in place.
  const int r = comm().rank();
  std::vector<torch::Tensor> like = {
      torch::zeros({8, 3, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast), torch::zeros({8}),
      torch::zeros({4, 8, 1, 1}).contiguous(torch::MemoryFormat::ChannelsLast)};
  GradientBucketer bucketer;
  auto views = bucketer.bucketViews(like);
  bool ok = true;
  std::vector<torch::Tensor> expected;
  for (std::size_t i = 0; i < like.size(); ++i) {
    ok = ok && views[i].strides() == like[i].strides() && views[i].sizes() == like[i].sizes();
    const auto mine = torch::arange(like[i].numel(), torch::kFloat).view(like[i].sizes()) * (r + 1);
    views[i].copy_(mine);
    expected.push_back(torch::arange(like[i].numel(), torch::kFloat).view(like[i].sizes()) * 1.5);
  }
  const void* before = views[0].data_ptr();
  bucketer.allreduce(comm(), views);
  ok = ok && views[0].data_ptr() == before;
  for (std::size_t i = 0; i < like.size(); ++i) ok = ok && bitEqual(views[i], expected[i]);
  MS_COLLECTIVE_CHECK(ok);
}
