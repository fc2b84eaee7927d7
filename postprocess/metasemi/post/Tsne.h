// t-SNE (van der Maaten & Hinton 2008; Barnes-Hut: van der Maaten 2014) for embedding network
// features in 2-D, with the settings users of scikit-learn and openTSNE expect: perplexity 30,
// early exaggeration 12 for 250 iterations, 1000 iterations, PCA initialisation, momentum
// 0.5 -> 0.8 with per-coordinate gains, learning rate "auto".
//
// All matrices are row-major host arrays; no torch. Gradients are the full KL gradient
// dC/dy_i = 4 sum_j (p_ij - q_ij) w_ij (y_i - y_j), w_ij = 1 / (1 + |y_i - y_j|^2), so the
// learning rate follows scikit-learn's convention (openTSNE's is 4x larger for the same step).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace metasemi::post {

/// Symmetric joint probabilities P of the sparse (neighbour-graph) t-SNE, in CSR form: row i
/// holds the columns `cols[rowStart[i] .. rowStart[i+1])` with their values; sum of all = 1.
struct SparseP {
  std::size_t n = 0;
  std::vector<std::size_t> rowStart;  // n + 1 entries
  std::vector<std::uint32_t> cols;
  std::vector<double> vals;
};

/// k nearest neighbours of every row of `x` (n x d float, row-major), the point itself
/// excluded, by exact blocked brute-force search on `threads` threads. `indices` and
/// `sqDistances` are n x k row-major, each row sorted by increasing distance.
void nearestNeighbors(const float* x, std::size_t n, std::size_t d, std::size_t k, int threads,
                      std::vector<std::uint32_t>& indices, std::vector<double>& sqDistances);

/// For each row of `sqDistances` (n x k squared distances to the row's neighbours) finds the
/// Gaussian precision whose conditional distribution has the given perplexity (binary search on
/// the entropy, natural log) and writes the conditional probabilities p_{j|i} into `condP`
/// (n x k). Returns the mean sigma = sqrt(1 / precision), for logging.
double conditionalProbabilities(const std::vector<double>& sqDistances, std::size_t n,
                                std::size_t k, double perplexity, int threads,
                                std::vector<double>& condP);

/// Sparse symmetric P from the k nearest neighbours of every point: P = (C + C^T) / sum, where
/// C holds the conditional probabilities. `x` is n x d float row-major.
SparseP sparseAffinities(const float* x, std::size_t n, std::size_t d, double perplexity,
                         std::size_t k, int threads);

/// Dense symmetric P (n x n, row-major, zero diagonal, sum 1) over all pairs, as exact t-SNE
/// uses it. `x` is n x d float row-major.
std::vector<double> denseAffinities(const float* x, std::size_t n, std::size_t d, double perplexity,
                                    int threads);

/// Exact gradient `grad` (n x 2) at embedding `y` (n x 2 double) for a dense symmetric P (n x n,
/// the diagonal ignored) multiplied by `exaggeration` e: 4 sum_j (e p_ij - q_ij) w_ij (y_i - y_j).
/// Returns KL(eP || Q) = sum over the non-zero p_ij of e p_ij log(e p_ij / q_ij), both factors
/// clipped below at float64 epsilon as scikit-learn does. O(n^2) on `threads` threads; the result
/// does not depend on their count. Throws ConfigError when P is not n x n or not symmetric.
double klGradientExact(const std::vector<double>& p, const std::vector<double>& y, std::size_t n,
                       std::vector<double>& grad, int threads = 1, double exaggeration = 1.0);

/// Barnes-Hut approximation of the KL gradient for a sparse P: attractive forces exactly over
/// P's non-zeros, repulsive forces and the normalisation Z from a quadtree where a cell of
/// width w at distance r from the point is summarised by its centre of mass when w / r < theta
/// (theta = 0 gives the exact gradient). `exaggeration` multiplies P. Writes `grad` (n x 2) and
/// returns the estimate of Z = sum_{i != j} w_ij.
double klGradientBarnesHut(const SparseP& p, const std::vector<double>& y, double theta,
                           double exaggeration, int threads, std::vector<double>& grad);

/// KL(P || Q) of embedding `y` (n x 2 double) for a sparse P, with the normalisation Z summed
/// exactly over all pairs (O(n^2), multithreaded): the figure to compare two embeddings by.
double klDivergence(const SparseP& p, const std::vector<double>& y, int threads);

/// KL(P || Q) for a dense symmetric P (n x n), exactly, on `threads` threads.
double klDivergence(const std::vector<double>& p, const std::vector<double>& y, std::size_t n,
                    int threads = 1);

/// Top-2 principal-component scores of `x` (n x d float), as n x 2 doubles; each component's
/// sign is fixed so its largest-magnitude score is positive (scikit-learn's svd_flip).
std::vector<double> pcaScores(const float* x, std::size_t n, std::size_t d);

/// Trustworthiness (Venna & Kaski) of embedding `y` (n x 2 double) for input `x` (n x d float)
/// with `k` neighbours: 1 when every embedding neighbour is also an input neighbour.
double trustworthiness(const float* x, std::size_t n, std::size_t d, const std::vector<double>& y,
                       std::size_t k, int threads);

/// How the gradient is computed.
enum class TsneMethod { kAuto, kExact, kBarnesHut };

/// How the embedding starts.
enum class TsneInit { kPca, kRandom };

/// Settings of one t-SNE run (defaults as scikit-learn >= 1.2 and openTSNE).
struct TsneOptions {
  double perplexity = 30.0;
  int iterations = 1000;
  /// Iterations with exaggerated P and the initial momentum.
  int exaggerationIterations = 250;
  double earlyExaggeration = 12.0;
  /// Step size in scikit-learn's convention; <= 0 means max(n / earlyExaggeration / 4, 50).
  double learningRate = 0.0;
  double initialMomentum = 0.5;
  double finalMomentum = 0.8;
  double minGain = 0.01;
  /// Barnes-Hut opening angle.
  double theta = 0.5;
  TsneMethod method = TsneMethod::kAuto;
  /// kAuto uses the exact gradient up to this many points.
  std::size_t exactMaxPoints = 1000;
  TsneInit init = TsneInit::kPca;
  std::uint64_t seed = 0;
  /// Worker threads; 0 = all hardware threads. Results do not depend on it.
  int threads = 0;
  /// Called every `reportEvery` iterations and after the last one with the iteration (1-based)
  /// and the current KL: for Barnes-Hut an estimate from the tree's Z (cheap); for the exact
  /// method KL(eP || Q) at the embedding the iteration's gradient was taken at (e the
  /// exaggeration of that iteration), an extra O(n^2) pass with a logarithm per pair. 0 disables.
  int reportEvery = 50;
  std::function<void(int iteration, double kl)> progress;
  /// Throws ConfigError naming the offending setting (n = number of points).
  void validate(std::size_t n) const;
};

/// Outcome of `runTsne`.
struct TsneResult {
  /// n x 2 embedding, row-major.
  std::vector<double> embedding;
  /// Final KL(P || Q) for the P the run optimised (sparse for Barnes-Hut) with exact Z.
  double kl = 0.0;
  /// Which gradient was used.
  TsneMethod method = TsneMethod::kExact;
  /// Wall-clock seconds spent in affinities (kNN + binary search) and in the optimisation.
  double affinitySeconds = 0.0;
  double optimizeSeconds = 0.0;
};

/// Embeds the rows of `x` (n x d float, row-major, host) in 2-D. Deterministic for a given
/// (input, options), whatever the thread count. Throws ConfigError for invalid options.
TsneResult runTsne(const float* x, std::size_t n, std::size_t d, const TsneOptions& options);

/// Name of a method for logs ("exact", "barnes-hut").
std::string toString(TsneMethod method);

}  // namespace metasemi::post
