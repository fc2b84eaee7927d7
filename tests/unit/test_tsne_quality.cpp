// Whole t-SNE runs: Barnes-Hut against the exact method, cluster preservation, determinism.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "metasemi/core/Random.h"
#include "metasemi/post/Tsne.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

// `clusters` Gaussian blobs in d dimensions, centres 10 apart on random axes, unit spread.
std::vector<float> blobs(std::size_t n, std::size_t d, std::size_t clusters, std::uint64_t seed,
                         std::vector<int>& labels) {
  core::Rng rng(seed);
  auto normal = [&] {
    const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  std::vector<double> centres(clusters * d);
  for (auto& c : centres) c = 10.0 * normal() / std::sqrt(2.0);
  std::vector<float> x(n * d);
  labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int>(i % clusters);
    for (std::size_t t = 0; t < d; ++t) {
      x[i * d + t] = static_cast<float>(centres[labels[i] * d + t] + normal());
    }
  }
  return x;
}

// Fraction of each point's k nearest embedding neighbours that share its label.
double neighbourPurity(const std::vector<double>& y, const std::vector<int>& labels,
                       std::size_t k) {
  const std::size_t n = labels.size();
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, std::size_t>> d;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      d.emplace_back(dx * dx + dy * dy, j);
    }
    std::partial_sort(d.begin(), d.begin() + k, d.end());
    for (std::size_t r = 0; r < k; ++r) same += labels[d[r].second] == labels[i];
  }
  return static_cast<double>(same) / static_cast<double>(n * k);
}

// PCA scores scaled so that the first coordinate has standard deviation 1e-4.
std::vector<double> directStart(const std::vector<float>& x, std::size_t n, std::size_t d) {
  auto y = post::pcaScores(x.data(), n, d);
  double mean = 0.0, var = 0.0;
  for (std::size_t i = 0; i < n; ++i) mean += y[2 * i] / double(n);
  for (std::size_t i = 0; i < n; ++i) var += (y[2 * i] - mean) * (y[2 * i] - mean) / double(n);
  for (auto& v : y) v *= 1e-4 / std::sqrt(var);
  return y;
}

// The exact method as postprocess/README.md states it, written directly: dense P, PCA start
// scaled to standard deviation 1e-4, gradient 4 sum_j (e p_ij - q_ij) w_ij (y_i - y_j) from the
// stored W, exaggeration e then 1, momentum and gains restarting between the phases. `reported`
// gets (iteration, KL(eP || Q) at the embedding the gradient was taken at) as progress does.
std::vector<double> directExactRun(const std::vector<float>& x, std::size_t n, std::size_t d,
                                   const post::TsneOptions& o,
                                   std::vector<std::pair<int, double>>& reported) {
  const double eps = std::numeric_limits<double>::epsilon();
  const auto p = post::denseAffinities(x.data(), n, d, o.perplexity, 1);
  auto y = directStart(x, n, d);
  const double lr = std::max(double(n) / o.earlyExaggeration / 4.0, 50.0);
  std::vector<double> w(n * n), grad(2 * n), update(2 * n, 0.0), gains(2 * n, 1.0);
  for (int it = 0; it < o.iterations; ++it) {
    const bool early = it < o.exaggerationIterations;
    if (it == o.exaggerationIterations) {
      std::fill(update.begin(), update.end(), 0.0);
      std::fill(gains.begin(), gains.end(), 1.0);
    }
    const double e = early ? o.earlyExaggeration : 1.0;
    const double momentum = early ? o.initialMomentum : o.finalMomentum;
    double z = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
        w[i * n + j] = i == j ? 0.0 : 1.0 / (1.0 + dx * dx + dy * dy);
        z += w[i * n + j];
      }
    }
    double kl = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      double gx = 0.0, gy = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        const double pe = e * p[i * n + j], q = w[i * n + j] / z;
        gx += (pe - q) * w[i * n + j] * (y[2 * i] - y[2 * j]);
        gy += (pe - q) * w[i * n + j] * (y[2 * i + 1] - y[2 * j + 1]);
        if (pe > 0) kl += pe * std::log(std::max(pe, eps) / std::max(q, eps));
      }
      grad[2 * i] = 4.0 * gx;
      grad[2 * i + 1] = 4.0 * gy;
    }
    for (std::size_t k = 0; k < 2 * n; ++k) {
      gains[k] = update[k] * grad[k] < 0.0 ? gains[k] + 0.2 : gains[k] * 0.8;
      gains[k] = std::max(gains[k], o.minGain);
      update[k] = momentum * update[k] - lr * gains[k] * grad[k];
      y[k] += update[k];
    }
    if ((it + 1) % o.reportEvery == 0 || it + 1 == o.iterations) reported.emplace_back(it + 1, kl);
  }
  return y;
}

double maxRelativeDifference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

// 300 iterations of `o` on n blobs in d dimensions, with 1 and with 3 threads: the same bits.
void checkSameForOneAndThreeThreads(std::size_t n, std::size_t d, std::size_t clusters,
                                    std::uint64_t seed, post::TsneOptions o) {
  std::vector<int> labels;
  const auto x = blobs(n, d, clusters, seed, labels);
  o.iterations = 300;
  o.threads = 1;
  const auto one = post::runTsne(x.data(), n, d, o);
  o.threads = 3;
  const auto three = post::runTsne(x.data(), n, d, o);
  BOOST_CHECK(one.embedding == three.embedding);
  BOOST_CHECK_EQUAL(one.kl, three.kl);
}

}  // namespace

BOOST_AUTO_TEST_CASE(exact_method_follows_the_stated_optimiser) {
  std::vector<int> labels;
  const std::size_t n = 150, d = 12;  // not a multiple of the four lanes rows are summed in
  const auto x = blobs(n, d, 3, 6, labels);
  // Both phases, a few iterations each: from the tiny start the descent is chaotic (rounding
  // differences grow about tenfold every two or three iterations while the clusters form), so
  // only a short run can be compared point by point.
  post::TsneOptions o;
  o.perplexity = 10.0;
  o.iterations = 12;
  o.exaggerationIterations = 6;
  o.reportEvery = 4;
  o.threads = 2;
  o.method = post::TsneMethod::kExact;
  std::vector<std::pair<int, double>> seen, expected;
  o.progress = [&](int it, double kl) { seen.emplace_back(it, kl); };
  const auto r = post::runTsne(x.data(), n, d, o);
  const auto y = directExactRun(x, n, d, o, expected);
  const double diff = maxRelativeDifference(r.embedding, y);
  BOOST_TEST_MESSAGE("exact run against the direct optimiser: max relative difference " << diff);
  BOOST_CHECK_LT(diff, 1e-9);
  // The embedding moved: a start-only comparison could not tell the schedules apart.
  BOOST_CHECK_GT(maxRelativeDifference(r.embedding, directStart(x, n, d)), 1e-3);
  BOOST_REQUIRE_EQUAL(seen.size(), 3u);
  BOOST_REQUIRE_EQUAL(seen.size(), expected.size());
  for (std::size_t k = 0; k < seen.size(); ++k) {
    BOOST_CHECK_EQUAL(seen[k].first, expected[k].first);
    BOOST_CHECK_CLOSE(seen[k].second, expected[k].second, 1e-9);
  }
  const auto dense = post::denseAffinities(x.data(), n, d, o.perplexity, 1);
  BOOST_CHECK_CLOSE(r.kl, post::klDivergence(dense, y, n), 1e-9);
}

BOOST_AUTO_TEST_CASE(exact_results_do_not_depend_on_the_thread_count) {
  post::TsneOptions o;
  o.perplexity = 10.0;
  o.method = post::TsneMethod::kExact;
  checkSameForOneAndThreeThreads(130, 8, 3, 7, o);
}

BOOST_AUTO_TEST_CASE(barnes_hut_reaches_the_exact_methods_kl) {
  std::vector<int> labels;
  const std::size_t n = 500, d = 20;
  const auto x = blobs(n, d, 5, 1, labels);
  post::TsneOptions o;
  o.threads = 2;
  o.method = post::TsneMethod::kExact;
  const auto exact = post::runTsne(x.data(), n, d, o);
  o.method = post::TsneMethod::kBarnesHut;
  const auto bh = post::runTsne(x.data(), n, d, o);
  BOOST_CHECK(exact.method == post::TsneMethod::kExact);
  BOOST_CHECK(bh.method == post::TsneMethod::kBarnesHut);
  // Both embeddings scored by the same objective: the exact method's dense P.
  const auto dense = post::denseAffinities(x.data(), n, d, o.perplexity, 2);
  const double klExact = post::klDivergence(dense, exact.embedding, n);
  const double klBh = post::klDivergence(dense, bh.embedding, n);
  BOOST_TEST_MESSAGE("KL exact run " << klExact << ", Barnes-Hut run " << klBh
                                     << " (Barnes-Hut's own sparse-P KL " << bh.kl << ")");
  BOOST_CHECK_CLOSE(exact.kl, klExact, 1e-9);
  BOOST_CHECK_LT(klBh, klExact * 1.05);
  BOOST_CHECK_GT(klExact, 0.0);
}

BOOST_AUTO_TEST_CASE(separated_clusters_stay_apart) {
  std::vector<int> labels;
  const std::size_t n = 1200, d = 50;
  const auto x = blobs(n, d, 6, 2, labels);
  post::TsneOptions o;
  o.threads = 2;
  o.method = post::TsneMethod::kBarnesHut;
  const auto r = post::runTsne(x.data(), n, d, o);
  const double trust = post::trustworthiness(x.data(), n, d, r.embedding, 10, 2);
  const double purity = neighbourPurity(r.embedding, labels, 10);
  BOOST_TEST_MESSAGE("trustworthiness@10 " << trust << ", 10-NN label purity " << purity);
  BOOST_CHECK_GT(trust, 0.9);
  BOOST_CHECK_GT(purity, 0.99);

  // A random arrangement scores far lower, so the checks above can fail.
  core::Rng rng(3);
  std::vector<double> noise(2 * n);
  for (auto& v : noise) v = rng.uniform();
  BOOST_CHECK_LT(post::trustworthiness(x.data(), n, d, noise, 10, 2), 0.7);
  BOOST_CHECK_LT(neighbourPurity(noise, labels, 10), 0.5);
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_the_thread_count) {
  post::TsneOptions o;
  o.method = post::TsneMethod::kBarnesHut;
  checkSameForOneAndThreeThreads(700, 16, 4, 3, o);
}

BOOST_AUTO_TEST_CASE(progress_reports_a_decreasing_kl) {
  std::vector<int> labels;
  const std::size_t n = 400, d = 10;
  const auto x = blobs(n, d, 4, 4, labels);
  post::TsneOptions o;
  o.threads = 2;
  o.method = post::TsneMethod::kBarnesHut;
  o.init = post::TsneInit::kRandom;
  o.seed = 5;
  std::vector<std::pair<int, double>> seen;
  o.progress = [&](int it, double kl) { seen.emplace_back(it, kl); };
  const auto r = post::runTsne(x.data(), n, d, o);
  BOOST_REQUIRE_EQUAL(seen.size(), 20u);
  BOOST_CHECK_EQUAL(seen.back().first, 1000);
  // After the exaggeration phase the objective keeps falling.
  BOOST_CHECK_LT(seen.back().second, seen[5].second);
  BOOST_CHECK_CLOSE(seen.back().second, r.kl, 1.0);
}
