// t-SNE building blocks: neighbours, affinities and gradients against independent computations
// (brute force, central finite differences in double precision).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/post/Tsne.h"
#include "support/TestSupport.h"

using namespace metasemi;

namespace {

std::vector<float> randomFeatures(std::size_t n, std::size_t d, std::uint64_t seed) {
  core::Rng rng(seed);
  std::vector<float> x(n * d);
  for (auto& v : x) v = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  return x;
}

std::vector<double> randomEmbedding(std::size_t n, double scale, std::uint64_t seed) {
  core::Rng rng(seed);
  std::vector<double> y(2 * n);
  for (auto& v : y) v = (rng.uniform() * 2.0 - 1.0) * scale;
  return y;
}

std::vector<double> toDense(const post::SparseP& p) {
  std::vector<double> dense(p.n * p.n, 0.0);
  for (std::size_t i = 0; i < p.n; ++i) {
    for (std::size_t e = p.rowStart[i]; e < p.rowStart[i + 1]; ++e) {
      dense[i * p.n + p.cols[e]] = p.vals[e];
    }
  }
  return dense;
}

double relativeError(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return std::sqrt(diff / norm);
}

// e sum_{i != j} p_ij log(1 + |y_i - y_j|^2) + log Z: the objective whose gradient is the
// exaggerated t-SNE gradient 4 sum_j (e p_ij - q_ij) w_ij (y_i - y_j); for e = 1 and P summing
// to 1 it is KL(P || Q) less the constant sum p log p.
double exaggeratedObjective(const std::vector<double>& p, const std::vector<double>& y,
                            std::size_t n, double e) {
  double attract = 0.0, z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      attract += p[i * n + j] * std::log1p(dx * dx + dy * dy);
      z += 1.0 / (1.0 + dx * dx + dy * dy);
    }
  }
  return e * attract + std::log(z);
}

// KL(eP || Q) summed directly over the non-zero p_ij, both factors clipped at float64 epsilon.
double directKl(const std::vector<double>& p, const std::vector<double>& y, std::size_t n,
                double e) {
  const double eps = std::numeric_limits<double>::epsilon();
  std::vector<double> w(n * n, 0.0);
  double z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      w[i * n + j] = 1.0 / (1.0 + dx * dx + dy * dy);
      z += w[i * n + j];
    }
  }
  double kl = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double pe = e * p[i * n + j];
      if (i == j || !(pe > 0)) continue;
      kl += pe * std::log(std::max(pe, eps) / std::max(w[i * n + j] / z, eps));
    }
  }
  return kl;
}

}  // namespace

BOOST_AUTO_TEST_CASE(nearest_neighbours_match_brute_force) {
  // d = 37 is not a multiple of any vector width; n = 301 leaves a partial panel.
  const std::size_t n = 301, d = 37, k = 12;
  const auto x = randomFeatures(n, d, 11);
  std::vector<std::uint32_t> idx;
  std::vector<double> sq;
  post::nearestNeighbors(x.data(), n, d, k, 2, idx, sq);
  BOOST_REQUIRE_EQUAL(idx.size(), n * k);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, std::uint32_t>> all;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0.0;
      for (std::size_t t = 0; t < d; ++t) {
        const double diff = double(x[i * d + t]) - double(x[j * d + t]);
        s += diff * diff;
      }
      all.emplace_back(s, static_cast<std::uint32_t>(j));
    }
    std::sort(all.begin(), all.end());
    for (std::size_t r = 0; r < k; ++r) {
      BOOST_CHECK_EQUAL(idx[i * k + r], all[r].second);
      BOOST_CHECK_CLOSE(sq[i * k + r], all[r].first, 1e-9);
    }
  }
}

BOOST_AUTO_TEST_CASE(conditional_probabilities_have_the_requested_perplexity) {
  const std::size_t n = 200, d = 10, k = 91;
  const auto x = randomFeatures(n, d, 5);
  std::vector<std::uint32_t> idx;
  std::vector<double> sq, cond;
  post::nearestNeighbors(x.data(), n, d, k, 1, idx, sq);
  post::conditionalProbabilities(sq, n, k, 30.0, 2, cond);
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0.0, entropy = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
      const double p = cond[i * k + j];
      sum += p;
      if (p > 0) entropy -= p * std::log(p);
    }
    BOOST_CHECK_CLOSE(sum, 1.0, 1e-9);
    BOOST_CHECK_SMALL(std::exp(entropy) - 30.0, 1e-3);
  }
}

BOOST_AUTO_TEST_CASE(sparse_affinities_are_symmetric_and_normalised) {
  const std::size_t n = 150, d = 8;
  const auto x = randomFeatures(n, d, 7);
  const auto p = post::sparseAffinities(x.data(), n, d, 10.0, 31, 2);
  const auto dense = toDense(p);
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    BOOST_CHECK_EQUAL(dense[i * n + i], 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      BOOST_CHECK_EQUAL(dense[i * n + j], dense[j * n + i]);
      total += dense[i * n + j];
    }
  }
  BOOST_CHECK_CLOSE(total, 1.0, 1e-9);
}

BOOST_AUTO_TEST_CASE(exact_gradient_matches_central_finite_differences) {
  const std::size_t n = 12, d = 6;
  const auto x = randomFeatures(n, d, 3);
  const auto p = post::denseAffinities(x.data(), n, d, 3.0, 1);
  auto y = randomEmbedding(n, 2.0, 4);
  std::vector<double> grad;
  const double kl = post::klGradientExact(p, y, n, grad, 2);
  BOOST_CHECK_CLOSE(kl, post::klDivergence(p, y, n), 1e-10);
  const double h = 1e-5;
  std::vector<double> numeric(2 * n);
  for (std::size_t e = 0; e < 2 * n; ++e) {
    const double saved = y[e];
    y[e] = saved + h;
    const double plus = post::klDivergence(p, y, n);
    y[e] = saved - h;
    const double minus = post::klDivergence(p, y, n);
    y[e] = saved;
    numeric[e] = (plus - minus) / (2.0 * h);
  }
  BOOST_TEST_MESSAGE("relative error of the exact gradient: " << relativeError(grad, numeric));
  BOOST_CHECK_LT(relativeError(grad, numeric), 1e-7);
}

BOOST_AUTO_TEST_CASE(exaggerated_exact_gradient_matches_central_finite_differences) {
  // n = 13 is not a multiple of the four lanes the rows are summed in.
  const std::size_t n = 13, d = 5;
  const auto x = randomFeatures(n, d, 41);
  const auto p = post::denseAffinities(x.data(), n, d, 3.0, 2);
  auto y = randomEmbedding(n, 3.0, 42);
  for (const double e : {1.0, 12.0}) {
    std::vector<double> grad;
    post::klGradientExact(p, y, n, grad, 3, e);
    BOOST_REQUIRE_EQUAL(grad.size(), 2 * n);
    const double h = 1e-5;
    std::vector<double> numeric(2 * n);
    for (std::size_t k = 0; k < 2 * n; ++k) {
      const double saved = y[k];
      y[k] = saved + h;
      const double plus = exaggeratedObjective(p, y, n, e);
      y[k] = saved - h;
      const double minus = exaggeratedObjective(p, y, n, e);
      y[k] = saved;
      numeric[k] = (plus - minus) / (2.0 * h);
    }
    BOOST_TEST_MESSAGE("exaggeration " << e << ": relative error of the exact gradient "
                                       << relativeError(grad, numeric));
    BOOST_CHECK_LT(relativeError(grad, numeric), 1e-7);
  }
}

BOOST_AUTO_TEST_CASE(exact_kl_matches_a_direct_sum_with_clipping) {
  // Entries below epsilon in P and a far point (q below epsilon) exercise both clips.
  const std::size_t n = 11, d = 4;
  const auto x = randomFeatures(n, d, 51);
  auto p = post::denseAffinities(x.data(), n, d, 2.5, 1);
  p[0 * n + 5] = p[5 * n + 0] = 1e-20;
  p[3 * n + 7] = p[7 * n + 3] = 0.0;
  auto y = randomEmbedding(n, 2.0, 52);
  y[2 * 9] = 1e9;
  for (const double e : {1.0, 12.0}) {
    std::vector<double> one, three;
    const double kl1 = post::klGradientExact(p, y, n, one, 1, e);
    const double kl3 = post::klGradientExact(p, y, n, three, 3, e);
    BOOST_CHECK_CLOSE(kl1, directKl(p, y, n, e), 1e-10);
    // Rows are summed in a fixed order whatever the thread count.
    BOOST_CHECK_EQUAL(kl1, kl3);
    BOOST_CHECK(one == three);
  }
  BOOST_CHECK_CLOSE(post::klDivergence(p, y, n, 2), directKl(p, y, n, 1.0), 1e-10);
}

BOOST_AUTO_TEST_CASE(barnes_hut_with_theta_zero_is_the_exact_gradient) {
  // With k = n - 1 neighbours the sparse P is the dense one, and theta = 0 opens every cell.
  const std::size_t n = 90, d = 5;
  const auto x = randomFeatures(n, d, 21);
  const auto sparse = post::sparseAffinities(x.data(), n, d, 8.0, n - 1, 2);
  const auto dense = post::denseAffinities(x.data(), n, d, 8.0, 2);
  const auto denseFromSparse = toDense(sparse);
  BOOST_CHECK_LT(relativeError(denseFromSparse, dense), 1e-9);
  const auto y = randomEmbedding(n, 5.0, 22);
  std::vector<double> exactGrad, bhGrad;
  post::klGradientExact(dense, y, n, exactGrad, 1);
  post::klGradientBarnesHut(sparse, y, 0.0, 1.0, 2, bhGrad);
  BOOST_CHECK_LT(relativeError(bhGrad, exactGrad), 1e-9);
  // Exaggeration scales only the attractive part.
  std::vector<double> pe(dense);
  for (auto& v : pe) v *= 4.0;
  post::klGradientExact(pe, y, n, exactGrad, 1);
  post::klGradientBarnesHut(sparse, y, 0.0, 4.0, 1, bhGrad);
  BOOST_CHECK_LT(relativeError(bhGrad, exactGrad), 1e-9);
}

BOOST_AUTO_TEST_CASE(barnes_hut_approximates_the_gradient_and_z) {
  const std::size_t n = 2000, d = 5;
  const auto x = randomFeatures(n, d, 31);
  const auto sparse = post::sparseAffinities(x.data(), n, d, 30.0, 91, 2);
  const auto y = randomEmbedding(n, 20.0, 32);
  std::vector<double> exactGrad, bhGrad;
  const double zExact = post::klGradientBarnesHut(sparse, y, 0.0, 1.0, 2, exactGrad);
  const double zApprox = post::klGradientBarnesHut(sparse, y, 0.5, 1.0, 2, bhGrad);
  BOOST_TEST_MESSAGE("theta 0.5: gradient relative error "
                     << relativeError(bhGrad, exactGrad) << ", Z " << zApprox << " vs " << zExact);
  BOOST_CHECK_LT(relativeError(bhGrad, exactGrad), 0.02);
  BOOST_CHECK_CLOSE(zApprox, zExact, 0.5);
  // The exact-Z KL evaluation agrees with a direct O(n^2) sum.
  double z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      z += 1.0 / (1.0 + dx * dx + dy * dy);
    }
  }
  BOOST_CHECK_CLOSE(zExact, z, 1e-9);
  double kl = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t e = sparse.rowStart[i]; e < sparse.rowStart[i + 1]; ++e) {
      const std::size_t j = sparse.cols[e];
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      kl += sparse.vals[e] * std::log(sparse.vals[e] * z * (1.0 + dx * dx + dy * dy));
    }
  }
  BOOST_CHECK_CLOSE(post::klDivergence(sparse, y, 2), kl, 1e-8);
}

BOOST_AUTO_TEST_CASE(pca_scores_follow_the_leading_directions) {
  // Points spread along (3, 4, 0) / 5 with a little noise in the third axis. The reference
  // components come from power iteration on the 3 x 3 covariance (deflated for the second).
  const std::size_t n = 400;
  core::Rng rng(9);
  std::vector<float> x(3 * n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = rng.uniform() * 10.0 - 5.0;
    x[3 * i] = static_cast<float>(0.6 * t + 2.0);
    x[3 * i + 1] = static_cast<float>(0.8 * t - 1.0);
    x[3 * i + 2] = static_cast<float>((rng.uniform() - 0.5) * 0.1);
  }
  double mean[3] = {0, 0, 0};
  for (std::size_t i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a) mean[a] += x[3 * i + a] / double(n);
  }
  double cov[3][3] = {};
  for (std::size_t i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) cov[a][b] += (x[3 * i + a] - mean[a]) * (x[3 * i + b] - mean[b]);
    }
  }
  auto power = [&](double v[3]) {
    for (int it = 0; it < 500; ++it) {
      double w[3] = {0, 0, 0};
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) w[a] += cov[a][b] * v[b];
      }
      const double norm = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
      for (int a = 0; a < 3; ++a) v[a] = w[a] / norm;
    }
    double lambda = 0.0;
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) lambda += v[a] * cov[a][b] * v[b];
    }
    return lambda;
  };
  double v1[3] = {1, 1, 1}, v2[3] = {1, -1, 1};
  const double l1 = power(v1);
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) cov[a][b] -= l1 * v1[a] * v1[b];
  }
  power(v2);
  BOOST_CHECK_CLOSE(std::abs(v1[1] / v1[0]), 4.0 / 3.0, 0.1);
  const auto scores = post::pcaScores(x.data(), n, 3);
  double s1 = 0.0, s2 = 0.0, e1 = 0.0, e2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    double r1 = 0.0, r2 = 0.0;
    for (int a = 0; a < 3; ++a) {
      r1 += (x[3 * i + a] - mean[a]) * v1[a];
      r2 += (x[3 * i + a] - mean[a]) * v2[a];
    }
    // Components are defined up to sign.
    if (i == 0) {
      s1 = scores[0] * r1 < 0 ? -1.0 : 1.0;
      s2 = scores[1] * r2 < 0 ? -1.0 : 1.0;
    }
    e1 = std::max(e1, std::abs(scores[2 * i] - s1 * r1));
    e2 = std::max(e2, std::abs(scores[2 * i + 1] - s2 * r2));
  }
  BOOST_CHECK_SMALL(e1, 1e-9);
  BOOST_CHECK_SMALL(e2, 1e-9);
}

BOOST_AUTO_TEST_CASE(invalid_options_are_config_errors) {
  post::TsneOptions o;
  BOOST_CHECK_THROW(o.validate(50), core::ConfigError);  // perplexity 30 needs > 90 points
  o.perplexity = 5;
  BOOST_CHECK_NO_THROW(o.validate(50));
  o.theta = 1.5;
  BOOST_CHECK_THROW(o.validate(50), core::ConfigError);
}
