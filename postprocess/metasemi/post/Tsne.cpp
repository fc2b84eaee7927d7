#include "metasemi/post/Tsne.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/post/Parallel.h"

namespace metasemi::post {
namespace {

// scikit-learn clips probabilities at float64 machine epsilon before taking logs.
constexpr double kEps = std::numeric_limits<double>::epsilon();

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Exact k nearest neighbours. In 128-512 dimensions space-partitioning trees visit most of the
// points anyway, so an exact blocked brute-force search (dot products through |a|^2 + |b|^2 -
// 2 a.b) is both simpler and faster. The reference points are stored in panels of kPanel points
// transposed (d x kPanel) so the kernel vectorises across points without reassociating sums.

constexpr std::size_t kPanel = 16;
constexpr std::size_t kQueryGroup = 8;
using Vec16 = float __attribute__((vector_size(64)));

// dots[q][p] = <query q, panel point p> for up to kQueryGroup queries (rows of `q`, stride d).
// Compiled for AVX-512, AVX2 and baseline x86-64, picked at run time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void panelDots(const float* q, std::size_t nq, const float* panel, std::size_t d,
               float* dots) {
  Vec16 acc[kQueryGroup];
  for (auto& a : acc) a = Vec16{};
  for (std::size_t t = 0; t < d; ++t) {
    Vec16 p;
    std::memcpy(&p, panel + t * kPanel, sizeof(p));
    for (std::size_t i = 0; i < kQueryGroup; ++i) acc[i] += q[i * d + t] * p;
  }
  for (std::size_t i = 0; i < nq; ++i) std::memcpy(dots + i * kPanel, &acc[i], sizeof(Vec16));
}

struct Candidate {
  float dist;
  std::uint32_t index;
  bool operator<(const Candidate& o) const {
    return dist < o.dist || (dist == o.dist && index < o.index);
  }
};

double exactSqDist(const float* a, const float* b, std::size_t d) {
  double s = 0.0;
  for (std::size_t t = 0; t < d; ++t) {
    const double diff = static_cast<double>(a[t]) - static_cast<double>(b[t]);
    s += diff * diff;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Quadtree over the embedding for the Barnes-Hut repulsion, rebuilt every iteration. Points are
// sorted along a Morton (Z-order) curve so every node owns a contiguous range of them: nodes need
// no point lists, leaves are contiguous arrays, and walking the points in that order reuses the
// same tree paths from one point to the next.

constexpr int kMortonBits = 16;
constexpr std::uint32_t kLeafSize = 32;

std::uint32_t spreadBits(std::uint32_t v) {
  v &= 0xffffu;
  v = (v | (v << 8)) & 0x00ff00ffu;
  v = (v | (v << 4)) & 0x0f0f0f0fu;
  v = (v | (v << 2)) & 0x33333333u;
  v = (v | (v << 1)) & 0x55555555u;
  return v;
}

constexpr std::size_t kLanes = 4;
using Vec4d = double __attribute__((vector_size(32)));

// Sums w = 1 / (1 + |p - c|^2) weighted by the cells' counts over `m` cells (m a multiple of
// kLanes): z = sum count w, (gx, gy) = sum count w^2 (p - c).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void farField(double px, double py, const double* cx, const double* cy, const double* count,
              std::size_t m, double& z, double& gx, double& gy) {
  Vec4d vz{}, vx{}, vy{};
  const Vec4d one = {1.0, 1.0, 1.0, 1.0};
  for (std::size_t i = 0; i < m; i += kLanes) {
    Vec4d x, y, c;
    std::memcpy(&x, cx + i, sizeof(x));
    std::memcpy(&y, cy + i, sizeof(y));
    std::memcpy(&c, count + i, sizeof(c));
    const Vec4d dx = px - x, dy = py - y;
    const Vec4d w = one / (one + dx * dx + dy * dy);
    const Vec4d cw = c * w;
    vz += cw;
    vx += cw * w * dx;
    vy += cw * w * dy;
  }
  z = (vz[0] + vz[1]) + (vz[2] + vz[3]);
  gx = (vx[0] + vx[1]) + (vx[2] + vx[3]);
  gy = (vy[0] + vy[1]) + (vy[2] + vy[3]);
}

// Attractive force on point i: sum over its P entries (cols, vals; m of them) of
// p_ij w_ij (y_i - y_j), four entries at a time so the divisions run in parallel.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void attraction(const double* y, std::size_t i, const std::uint32_t* cols, const double* vals,
                std::size_t m, double& ax, double& ay) {
  const double yx = y[2 * i], yy = y[2 * i + 1];
  const Vec4d one = {1.0, 1.0, 1.0, 1.0};
  Vec4d vx{}, vy{};
  std::size_t e = 0;
  for (; e + kLanes <= m; e += kLanes) {
    const Vec4d jx = {y[2 * cols[e]], y[2 * cols[e + 1]], y[2 * cols[e + 2]], y[2 * cols[e + 3]]};
    const Vec4d jy = {y[2 * cols[e] + 1], y[2 * cols[e + 1] + 1], y[2 * cols[e + 2] + 1],
                      y[2 * cols[e + 3] + 1]};
    Vec4d pv;
    std::memcpy(&pv, vals + e, sizeof(pv));
    const Vec4d dx = yx - jx, dy = yy - jy;
    const Vec4d f = pv / (one + dx * dx + dy * dy);
    vx += f * dx;
    vy += f * dy;
  }
  double sx = (vx[0] + vx[1]) + (vx[2] + vx[3]), sy = (vy[0] + vy[1]) + (vy[2] + vy[3]);
  for (; e < m; ++e) {
    const double dx = yx - y[2 * cols[e]], dy = yy - y[2 * cols[e] + 1];
    const double f = vals[e] / (1.0 + dx * dx + dy * dy);
    sx += f * dx;
    sy += f * dy;
  }
  ax = sx;
  ay = sy;
}

struct Node {
  double cx = 0.0, cy = 0.0;  // centre of mass
  double width2 = 0.0;        // squared cell width
  std::uint32_t begin = 0, end = 0;
  std::int32_t firstChild = -1;
  std::uint8_t numChildren = 0;
};

class QuadTree {
 public:
  void build(const std::vector<double>& y, std::size_t n) {
    double minX = y[0], maxX = y[0], minY = y[1], maxY = y[1];
    for (std::size_t i = 1; i < n; ++i) {
      minX = std::min(minX, y[2 * i]);
      maxX = std::max(maxX, y[2 * i]);
      minY = std::min(minY, y[2 * i + 1]);
      maxY = std::max(maxY, y[2 * i + 1]);
    }
    double side = std::max(maxX - minX, maxY - minY);
    side = side > 0 ? side * (1.0 + 1e-9) : 1.0;
    const double scale = static_cast<double>(1u << kMortonBits) / side;
    codes_.resize(n);
    order_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto qx = static_cast<std::uint32_t>(
          std::clamp((y[2 * i] - minX) * scale, 0.0, double((1u << kMortonBits) - 1)));
      const auto qy = static_cast<std::uint32_t>(
          std::clamp((y[2 * i + 1] - minY) * scale, 0.0, double((1u << kMortonBits) - 1)));
      codes_[i] = spreadBits(qx) | (spreadBits(qy) << 1);
      order_[i] = static_cast<std::uint32_t>(i);
    }
    radixSort();
    xs_.resize(n);
    ys_.resize(n);
    sortedCodes_.resize(n);
    for (std::size_t s = 0; s < n; ++s) {
      xs_[s] = y[2 * order_[s]];
      ys_[s] = y[2 * order_[s] + 1];
      sortedCodes_[s] = codes_[order_[s]];
    }
    nodes_.clear();
    leaves_.clear();
    nodes_.reserve(2 * n / kLeafSize + 64);
    nodes_.emplace_back();
    buildNode(0, 0, 0, static_cast<std::uint32_t>(n), side * side);
  }

  /// Interaction list of one leaf: cells summarised by their centre of mass for all of the
  /// leaf's points at once, and single points.
  struct Lists {
    std::vector<double> cx, cy, count;
  };

  /// Number of leaves; leaf `l` owns sorted positions leafRange(l).
  std::size_t numLeaves() const { return leaves_.size(); }
  std::pair<std::uint32_t, std::uint32_t> leafRange(std::size_t l) const {
    return {nodes_[leaves_[l]].begin, nodes_[leaves_[l]].end};
  }

  /// For every point s of leaf `l`: z[s] = sum over all other points j of w_sj, and
  /// (fx[s], fy[s]) = sum of w_sj^2 (y_s - y_j). A cell is summarised when its squared width is
  /// below theta^2 times its squared distance to the leaf's bounding box, so the criterion holds
  /// for each point of the leaf: one walk of the tree serves all of them.
  void repulsion(std::size_t l, double theta2, Lists& lists, double* z, double* fx,
                 double* fy) const {
    const Node& leaf = nodes_[leaves_[l]];
    double bx0 = xs_[leaf.begin], bx1 = bx0, by0 = ys_[leaf.begin], by1 = by0;
    for (std::uint32_t s = leaf.begin + 1; s < leaf.end; ++s) {
      bx0 = std::min(bx0, xs_[s]);
      bx1 = std::max(bx1, xs_[s]);
      by0 = std::min(by0, ys_[s]);
      by1 = std::max(by1, ys_[s]);
    }
    lists.cx.clear();
    lists.cy.clear();
    lists.count.clear();
    std::int32_t stack[4 * kMortonBits + 8];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const Node& node = nodes_[stack[--top]];
      const bool containsLeaf = leaf.begin >= node.begin && leaf.begin < node.end;
      if (!containsLeaf) {
        const double dx = std::max({bx0 - node.cx, node.cx - bx1, 0.0});
        const double dy = std::max({by0 - node.cy, node.cy - by1, 0.0});
        if (node.width2 < theta2 * (dx * dx + dy * dy)) {
          lists.cx.push_back(node.cx);
          lists.cy.push_back(node.cy);
          lists.count.push_back(static_cast<double>(node.end - node.begin));
          continue;
        }
      }
      if (node.numChildren == 0) {
        // Points of a leaf that is too close enter one by one, as cells of count 1; this
        // includes the leaf's own points, whose self-term (w = 1, zero force) is removed below.
        for (std::uint32_t j = node.begin; j < node.end; ++j) {
          lists.cx.push_back(xs_[j]);
          lists.cy.push_back(ys_[j]);
          lists.count.push_back(1.0);
        }
      } else {
        for (int c = node.numChildren - 1; c >= 0; --c) stack[top++] = node.firstChild + c;
      }
    }
    // Pad to whole vectors with empty cells (count 0 contributes nothing).
    while (lists.cx.size() % kLanes != 0) {
      lists.cx.push_back(0.0);
      lists.cy.push_back(0.0);
      lists.count.push_back(0.0);
    }
    for (std::uint32_t s = leaf.begin; s < leaf.end; ++s) {
      double zs, gx, gy;
      farField(xs_[s], ys_[s], lists.cx.data(), lists.cy.data(), lists.count.data(),
               lists.cx.size(), zs, gx, gy);
      z[s] = zs - 1.0;
      fx[s] = gx;
      fy[s] = gy;
    }
  }

  const std::vector<std::uint32_t>& order() const { return order_; }

 private:
  void radixSort() {
    const std::size_t n = order_.size();
    tmp_.resize(n);
    for (int pass = 0; pass < 4; ++pass) {
      const int shift = 8 * pass;
      std::array<std::size_t, 257> count{};
      for (std::size_t i = 0; i < n; ++i) ++count[((codes_[order_[i]] >> shift) & 0xffu) + 1];
      for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
      for (std::size_t i = 0; i < n; ++i) {
        tmp_[count[(codes_[order_[i]] >> shift) & 0xffu]++] = order_[i];
      }
      order_.swap(tmp_);
    }
  }

  void buildNode(std::size_t index, int level, std::uint32_t begin, std::uint32_t end,
                 double width2) {
    {
      Node& node = nodes_[index];
      node.begin = begin;
      node.end = end;
      node.width2 = width2;
    }
    if (end - begin <= kLeafSize || level == kMortonBits) {
      double sx = 0.0, sy = 0.0;
      for (std::uint32_t s = begin; s < end; ++s) {
        sx += xs_[s];
        sy += ys_[s];
      }
      Node& node = nodes_[index];
      node.cx = sx / (end - begin);
      node.cy = sy / (end - begin);
      leaves_.push_back(static_cast<std::int32_t>(index));
      return;
    }
    const int shift = 2 * (kMortonBits - 1 - level);
    std::array<std::uint32_t, 5> bounds{};
    bounds[0] = begin;
    for (std::uint32_t q = 1; q < 4; ++q) {
      bounds[q] = static_cast<std::uint32_t>(
          std::partition_point(sortedCodes_.begin() + bounds[q - 1], sortedCodes_.begin() + end,
                               [&](std::uint32_t c) { return ((c >> shift) & 3u) < q; }) -
          sortedCodes_.begin());
    }
    bounds[4] = end;
    const auto first = static_cast<std::int32_t>(nodes_.size());
    std::uint8_t children = 0;
    for (int q = 0; q < 4; ++q) {
      if (bounds[q + 1] > bounds[q]) ++children;
    }
    nodes_.resize(nodes_.size() + children);
    nodes_[index].firstChild = first;
    nodes_[index].numChildren = children;
    double sx = 0.0, sy = 0.0;
    int c = 0;
    for (int q = 0; q < 4; ++q) {
      if (bounds[q + 1] == bounds[q]) continue;
      const std::size_t child = static_cast<std::size_t>(first + c++);
      buildNode(child, level + 1, bounds[q], bounds[q + 1], width2 / 4.0);
      const double cnt = bounds[q + 1] - bounds[q];
      sx += nodes_[child].cx * cnt;
      sy += nodes_[child].cy * cnt;
    }
    nodes_[index].cx = sx / (end - begin);
    nodes_[index].cy = sy / (end - begin);
  }

  std::vector<std::uint32_t> codes_, sortedCodes_, order_, tmp_;
  std::vector<double> xs_, ys_;
  std::vector<Node> nodes_;
  std::vector<std::int32_t> leaves_;  // in Morton order
};

// Cyclic Jacobi eigen-decomposition of a symmetric m x m matrix (row-major, destroyed):
// eigenvalues on return in `values`, eigenvectors as the columns of `vectors`.
void jacobiEigen(std::vector<double>& a, std::size_t m, std::vector<double>& values,
                 std::vector<double>& vectors) {
  vectors.assign(m * m, 0.0);
  for (std::size_t i = 0; i < m; ++i) vectors[i * m + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
      diag += a[i * m + i] * a[i * m + i];
      for (std::size_t j = i + 1; j < m; ++j) off += a[i * m + j] * a[i * m + j];
    }
    if (off <= 1e-30 * diag || off == 0.0) break;
    for (std::size_t p = 0; p < m; ++p) {
      for (std::size_t q = p + 1; q < m; ++q) {
        const double apq = a[p * m + q];
        if (std::abs(apq) < 1e-300) continue;
        const double tau = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1.0 + tau * tau));
        const double c = 1.0 / std::sqrt(1.0 + t * t), s = t * c;
        for (std::size_t k = 0; k < m; ++k) {
          const double akp = a[k * m + p], akq = a[k * m + q];
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < m; ++k) {
          const double apk = a[p * m + k], aqk = a[q * m + k];
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < m; ++k) {
          const double vkp = vectors[k * m + p], vkq = vectors[k * m + q];
          vectors[k * m + p] = c * vkp - s * vkq;
          vectors[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  values.resize(m);
  for (std::size_t i = 0; i < m; ++i) values[i] = a[i * m + i];
}

// Entropy-matching binary search for one row of squared distances (scikit-learn's
// _binary_search_perplexity, with distances shifted by their minimum so exp() cannot underflow
// for unnormalised features). Returns the precision beta.
double searchPrecision(const double* sq, std::size_t k, double logPerplexity, double* out) {
  double dMin = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < k; ++j) dMin = std::min(dMin, sq[j]);
  double beta = 1.0, betaMin = -std::numeric_limits<double>::infinity(),
         betaMax = std::numeric_limits<double>::infinity();
  for (int step = 0; step < 200; ++step) {
    double sum = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
      out[j] = std::exp(-(sq[j] - dMin) * beta);
      sum += out[j];
    }
    double weighted = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
      out[j] /= sum;
      weighted += (sq[j] - dMin) * out[j];
    }
    const double diff = std::log(sum) + beta * weighted - logPerplexity;
    if (std::abs(diff) <= 1e-5) break;
    if (diff > 0) {
      betaMin = beta;
      beta = std::isinf(betaMax) ? beta * 2.0 : (beta + betaMax) / 2.0;
    } else {
      betaMax = beta;
      beta = std::isinf(betaMin) ? beta / 2.0 : (beta + betaMin) / 2.0;
    }
  }
  return beta;
}

}  // namespace

void nearestNeighbors(const float* x, std::size_t n, std::size_t d, std::size_t k, int threads,
                      std::vector<std::uint32_t>& indices, std::vector<double>& sqDistances) {
  MS_REQUIRE(k >= 1 && k < n, core::ConfigError,
             "nearest neighbours: need 1 <= k < number of points, got k = {} for {} points", k, n);
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  std::vector<float> packed(panels * kPanel * d, 0.0f);
  // Padded to whole panels with +inf so that padding never looks like a neighbour.
  std::vector<float> norms(panels * kPanel, std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    double s = 0.0;
    for (std::size_t t = 0; t < d; ++t) {
      packed[(i / kPanel) * kPanel * d + t * kPanel + i % kPanel] = row[t];
      s += double(row[t]) * row[t];
    }
    norms[i] = static_cast<float>(s);
  }
  indices.assign(n * k, 0);
  sqDistances.assign(n * k, 0.0);
  // Blocks of queries against chunks of reference panels that fit in L2.
  constexpr std::size_t kQueryBlock = 128;
  const std::size_t panelsPerChunk = std::max<std::size_t>(1, (256 * 1024) / (kPanel * d * 4));
  const std::size_t queryBlocks = (n + kQueryBlock - 1) / kQueryBlock;
  parallelForDynamic(queryBlocks, 1, threads, [&](std::size_t b0, std::size_t b1, int) {
    std::vector<std::vector<Candidate>> heaps(kQueryBlock);
    std::vector<float> qbuf(kQueryGroup * d);
    float dots[kQueryGroup * kPanel];
    for (std::size_t block = b0; block < b1; ++block) {
      const std::size_t q0 = block * kQueryBlock, q1 = std::min(n, q0 + kQueryBlock);
      for (auto& h : heaps) h.clear();
      for (std::size_t c0 = 0; c0 < panels; c0 += panelsPerChunk) {
        const std::size_t c1 = std::min(panels, c0 + panelsPerChunk);
        for (std::size_t g = q0; g < q1; g += kQueryGroup) {
          const std::size_t nq = std::min(kQueryGroup, q1 - g);
          std::fill(qbuf.begin(), qbuf.end(), 0.0f);
          std::memcpy(qbuf.data(), x + g * d, nq * d * sizeof(float));
          for (std::size_t pnl = c0; pnl < c1; ++pnl) {
            panelDots(qbuf.data(), nq, packed.data() + pnl * kPanel * d, d, dots);
            const std::size_t r0 = pnl * kPanel, r1 = std::min(n, r0 + kPanel);
            Vec16 panelNorm;
            std::memcpy(&panelNorm, norms.data() + r0, sizeof(panelNorm));
            for (std::size_t qi = 0; qi < nq; ++qi) {
              const std::size_t q = g + qi;
              auto& heap = heaps[q - q0];
              // Once the heap is full most panels hold no closer point: reject all 16 at once.
              if (heap.size() == k) {
                Vec16 dot;
                std::memcpy(&dot, dots + qi * kPanel, sizeof(dot));
                const Vec16 dist = norms[q] + panelNorm - 2.0f * dot;
                const float limit = heap.front().dist;
                bool any = false;
                for (std::size_t lane = 0; lane < kPanel; ++lane) any |= dist[lane] <= limit;
                if (!any) continue;
              }
              for (std::size_t r = r0; r < r1; ++r) {
                if (r == q) continue;
                const Candidate cand{
                    std::max(0.0f, norms[q] + norms[r] - 2.0f * dots[qi * kPanel + (r - r0)]),
                    static_cast<std::uint32_t>(r)};
                if (heap.size() < k) {
                  heap.push_back(cand);
                  std::push_heap(heap.begin(), heap.end());
                } else if (cand < heap.front()) {
                  std::pop_heap(heap.begin(), heap.end());
                  heap.back() = cand;
                  std::push_heap(heap.begin(), heap.end());
                }
              }
            }
          }
        }
      }
      for (std::size_t q = q0; q < q1; ++q) {
        auto& heap = heaps[q - q0];
        // Re-rank by distances recomputed in double: the float expansion loses digits when
        // neighbours are far closer than the points' norms.
        std::vector<std::pair<double, std::uint32_t>> exact(heap.size());
        for (std::size_t j = 0; j < heap.size(); ++j) {
          exact[j] = {exactSqDist(x + q * d, x + std::size_t(heap[j].index) * d, d), heap[j].index};
        }
        std::sort(exact.begin(), exact.end());
        for (std::size_t j = 0; j < k; ++j) {
          indices[q * k + j] = exact[j].second;
          sqDistances[q * k + j] = exact[j].first;
        }
      }
    }
  });
}

double conditionalProbabilities(const std::vector<double>& sqDistances, std::size_t n,
                                std::size_t k, double perplexity, int threads,
                                std::vector<double>& condP) {
  condP.assign(n * k, 0.0);
  std::vector<double> sigma(n);
  const double logPerplexity = std::log(perplexity);
  parallelFor(n, threads, [&](std::size_t i0, std::size_t i1, int) {
    for (std::size_t i = i0; i < i1; ++i) {
      const double beta =
          searchPrecision(sqDistances.data() + i * k, k, logPerplexity, condP.data() + i * k);
      sigma[i] = std::sqrt(1.0 / beta);
    }
  });
  return std::accumulate(sigma.begin(), sigma.end(), 0.0) / static_cast<double>(n);
}

SparseP sparseAffinities(const float* x, std::size_t n, std::size_t d, double perplexity,
                         std::size_t k, int threads) {
  std::vector<std::uint32_t> nn;
  std::vector<double> sq, cond;
  nearestNeighbors(x, n, d, k, threads, nn, sq);
  conditionalProbabilities(sq, n, k, perplexity, threads, cond);
  // P = C + C^T: every (i, j, c) lands in row i and, transposed, in row j.
  std::vector<std::size_t> rowCount(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    rowCount[i + 1] += k;
    for (std::size_t j = 0; j < k; ++j) ++rowCount[nn[i * k + j] + 1];
  }
  for (std::size_t i = 0; i < n; ++i) rowCount[i + 1] += rowCount[i];
  std::vector<std::pair<std::uint32_t, double>> entries(rowCount[n]);
  std::vector<std::size_t> fill(rowCount.begin(), rowCount.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      const std::uint32_t col = nn[i * k + j];
      const double c = cond[i * k + j];
      entries[fill[i]++] = {col, c};
      entries[fill[col]++] = {static_cast<std::uint32_t>(i), c};
    }
  }
  SparseP p;
  p.n = n;
  p.rowStart.assign(n + 1, 0);
  p.cols.reserve(entries.size());
  p.vals.reserve(entries.size());
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    auto first = entries.begin() + rowCount[i], last = entries.begin() + rowCount[i + 1];
    std::sort(first, last, [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = first; it != last; ++it) {
      if (!p.cols.empty() && p.cols.size() > p.rowStart[i] && p.cols.back() == it->first) {
        p.vals.back() += it->second;
      } else {
        p.cols.push_back(it->first);
        p.vals.push_back(it->second);
      }
      total += it->second;
    }
    p.rowStart[i + 1] = p.cols.size();
  }
  const double scale = 1.0 / std::max(total, kEps);
  for (auto& v : p.vals) v *= scale;
  return p;
}

std::vector<double> denseAffinities(const float* x, std::size_t n, std::size_t d, double perplexity,
                                    int threads) {
  MS_REQUIRE(n >= 2, core::ConfigError, "t-SNE needs at least 2 points, got {}", n);
  std::vector<double> cond(n * n, 0.0);
  const double logPerplexity = std::log(perplexity);
  parallelFor(n, threads, [&](std::size_t i0, std::size_t i1, int) {
    std::vector<double> sq(n - 1), row(n - 1);
    for (std::size_t i = i0; i < i1; ++i) {
      std::size_t m = 0;
      for (std::size_t j = 0; j < n; ++j) {
        if (j != i) sq[m++] = exactSqDist(x + i * d, x + j * d, d);
      }
      searchPrecision(sq.data(), n - 1, logPerplexity, row.data());
      m = 0;
      for (std::size_t j = 0; j < n; ++j) {
        if (j != i) cond[i * n + j] = row[m++];
      }
    }
  });
  std::vector<double> p(n * n, 0.0);
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      p[i * n + j] = cond[i * n + j] + cond[j * n + i];
      total += p[i * n + j];
    }
  }
  for (auto& v : p) v /= std::max(total, kEps);
  return p;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Exact gradient: one pass over the pairs i < j per iteration, without storing W. With
// dC/dy_i = 4 sum_j (e p_ij - w_ij / Z) w_ij (y_i - y_j), row i needs z_i = sum_j w_ij, the
// attraction sum_j p_ij w_ij (y_i - y_j) and the repulsion sum_j w_ij^2 (y_i - y_j); the
// repulsion is divided by Z = sum_i z_i afterwards, and the exaggeration e is a factor on the
// attraction. P and W are symmetric and y_j - y_i = -(y_i - y_j), so each pair is evaluated once
// and enters both rows.
//
// The pairs are cut into square tiles of kTile x kTile; tile (I, J), I <= J, writes the sums of
// the rows of block I over the columns of block J and those of the rows of J over I into their
// own slots, slot(K, r) = row r's sums over block K. Every slot has one writer, and row r adds its
// slots in block order, so the result does not depend on the number of threads or on which
// thread ran which tile.

constexpr std::size_t kTile = 128;
static_assert(kTile % (2 * kLanes) == 0, "tiles hold whole vectors and pairs of rows");
constexpr int kSums = 5;  // z, attraction x, y, repulsion x, y

// One tile: rows [i0, i1) against columns [j0, j1), only the pairs j > i on the diagonal
// (i0 == j0). Writes the five sums of the tile's rows over its columns to `rowOut` (indexed from
// i0) and those of its columns over its rows to `colOut` (from j0), each sum an array `stride`
// apart; on the diagonal both are the same slots and hold the total. Rows are taken two at a
// time, so that each column's running sums are loaded and stored once per two rows; they live in
// a local buffer of whole vectors. Off the diagonal a tile has an even number of rows (only the
// last block is short, and its tiles with I < J have it as J); on the diagonal an odd last row
// has no pair j > i left in the tile.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void exactTile(const double* xs, const double* ys, const double* p, std::size_t n, std::size_t i0,
               std::size_t i1, std::size_t j0, std::size_t j1, double* rowOut, double* colOut,
               std::size_t stride) {
  const bool diagonal = i0 == j0;
  Vec4d col[kTile / kLanes][kSums];
  const std::size_t vectors = (j1 - j0 + kLanes - 1) / kLanes;
  for (std::size_t v = 0; v < vectors; ++v) {
    for (auto& c : col[v]) c = Vec4d{};
  }
  // Columns [j0, wholeEnd) form whole vectors.
  const std::size_t wholeEnd = j0 + (j1 - j0) / kLanes * kLanes;
  // One pair outside the vector loop: its terms go to the row's `sums` and the column's lane.
  auto scalarPair = [&](std::size_t i, std::size_t j, double* sums) {
    const double dx = xs[i] - xs[j], dy = ys[i] - ys[j];
    const double w = 1.0 / (1.0 + dx * dx + dy * dy);
    const double pw = p[i * n + j] * w, ww = w * w;
    const double f[kSums] = {w, pw * dx, pw * dy, ww * dx, ww * dy};
    Vec4d* c = col[(j - j0) / kLanes];
    const std::size_t lane = (j - j0) % kLanes;
    sums[0] += f[0];
    c[0][lane] += f[0];
    for (int q = 1; q < kSums; ++q) {
      sums[q] += f[q];
      c[q][lane] -= f[q];
    }
  };
  const Vec4d one = {1.0, 1.0, 1.0, 1.0};
  for (std::size_t i = i0; i + 1 < i1; i += 2) {
    double sa[kSums] = {}, sb[kSums] = {};
    std::size_t jStart = j0;
    if (diagonal) {
      scalarPair(i, i + 1, sa);
      jStart = i + 2;
    }
    const std::size_t vecBegin =
        std::min(wholeEnd, j0 + (jStart - j0 + kLanes - 1) / kLanes * kLanes);
    for (std::size_t j = jStart; j < vecBegin; ++j) {
      scalarPair(i, j, sa);
      scalarPair(i + 1, j, sb);
    }
    const double xa = xs[i], ya = ys[i], xb = xs[i + 1], yb = ys[i + 1];
    const double* pa = p + i * n;
    const double* pb = pa + n;
    Vec4d za{}, axa{}, aya{}, rxa{}, rya{}, zb{}, axb{}, ayb{}, rxb{}, ryb{};
    for (std::size_t j = vecBegin; j < wholeEnd; j += kLanes) {
      Vec4d x, y, pva, pvb;
      std::memcpy(&x, xs + j, sizeof(x));
      std::memcpy(&y, ys + j, sizeof(y));
      std::memcpy(&pva, pa + j, sizeof(pva));
      std::memcpy(&pvb, pb + j, sizeof(pvb));
      const Vec4d dxa = xa - x, dya = ya - y, dxb = xb - x, dyb = yb - y;
      const Vec4d wa = one / (one + dxa * dxa + dya * dya);
      const Vec4d wb = one / (one + dxb * dxb + dyb * dyb);
      const Vec4d pwa = pva * wa, wwa = wa * wa, pwb = pvb * wb, wwb = wb * wb;
      const Vec4d fa1 = pwa * dxa, fa2 = pwa * dya, fa3 = wwa * dxa, fa4 = wwa * dya;
      const Vec4d fb1 = pwb * dxb, fb2 = pwb * dyb, fb3 = wwb * dxb, fb4 = wwb * dyb;
      za += wa;
      axa += fa1;
      aya += fa2;
      rxa += fa3;
      rya += fa4;
      zb += wb;
      axb += fb1;
      ayb += fb2;
      rxb += fb3;
      ryb += fb4;
      Vec4d* c = col[(j - j0) / kLanes];
      c[0] += wa + wb;
      c[1] -= fa1 + fb1;
      c[2] -= fa2 + fb2;
      c[3] -= fa3 + fb3;
      c[4] -= fa4 + fb4;
    }
    for (std::size_t j = std::max(wholeEnd, jStart); j < j1; ++j) {
      scalarPair(i, j, sa);
      scalarPair(i + 1, j, sb);
    }
    const Vec4d va[kSums] = {za, axa, aya, rxa, rya}, vb[kSums] = {zb, axb, ayb, rxb, ryb};
    for (int q = 0; q < kSums; ++q) {
      rowOut[q * stride + (i - i0)] = (va[q][0] + va[q][1]) + (va[q][2] + va[q][3]) + sa[q];
      rowOut[q * stride + (i + 1 - i0)] = (vb[q][0] + vb[q][1]) + (vb[q][2] + vb[q][3]) + sb[q];
    }
  }
  if (diagonal && (i1 - i0) % 2 == 1) {
    for (int q = 0; q < kSums; ++q) rowOut[q * stride + (i1 - 1 - i0)] = 0.0;
  }
  for (std::size_t j = j0; j < j1; ++j) {
    const Vec4d* c = col[(j - j0) / kLanes];
    const std::size_t lane = (j - j0) % kLanes;
    for (int q = 0; q < kSums; ++q) {
      double& out = colOut[q * stride + (j - j0)];
      out = diagonal ? out + c[q][lane] : c[q][lane];
    }
  }
}

// Treats subnormal operands and results as zero on this thread while alive. For well-separated
// clusters dense P holds probabilities below the normal range (exp() of large negative numbers),
// and products with w fall there too; x86 takes a slow path for each such operation, which made
// the tile loop more than twice as slow when a third of P was subnormal. A value below DBL_MIN
// (2.2e-308) is far under the rounding unit of the row sums it enters (each row of P sums to
// about 1 / n), so flushing it leaves those sums as they are.
class FlushSubnormals {
 public:
#if defined(__SSE2__)
  FlushSubnormals() : saved_(_mm_getcsr()) {
    _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
  }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_;
#endif
};

// The exact gradient and KL for one dense symmetric P, with its buffers allocated once.
class ExactGradient {
 public:
  ExactGradient(const std::vector<double>& p, std::size_t n, int threads)
      : p_(p),
        n_(n),
        threads_(threads),
        blocks_((n + kTile - 1) / kTile),
        xs_(n),
        ys_(n),
        slots_(blocks_ * kSums * n),
        sums_(kSums * n),
        rowSum_(n) {
    MS_REQUIRE(p.size() == n * n, core::ConfigError,
               "exact t-SNE: P has {} entries, expected {} x {}", p.size(), n, n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = i + 1; j < n; ++j) {
        MS_REQUIRE(p[i * n + j] == p[j * n + i], core::ConfigError,
                   "exact t-SNE: P must be symmetric, P[{}][{}] != P[{}][{}]", i, j, j, i);
      }
    }
    for (std::size_t b = 0; b < blocks_; ++b) {
      for (std::size_t c = b; c < blocks_; ++c) tiles_.emplace_back(b, c);
    }
  }

  // Writes the gradient (2n) for P scaled by `exaggeration` at `y` and returns Z.
  double gradient(const std::vector<double>& y, double exaggeration, std::vector<double>& grad) {
    for (std::size_t i = 0; i < n_; ++i) {
      xs_[i] = y[2 * i];
      ys_[i] = y[2 * i + 1];
    }
    parallelForDynamic(tiles_.size(), 1, threads_, [&](std::size_t t0, std::size_t t1, int) {
      const FlushSubnormals flush;
      for (std::size_t t = t0; t < t1; ++t) {
        const auto [bi, bj] = tiles_[t];
        const std::size_t i0 = bi * kTile, i1 = std::min(n_, i0 + kTile);
        const std::size_t j0 = bj * kTile, j1 = std::min(n_, j0 + kTile);
        exactTile(xs_.data(), ys_.data(), p_.data(), n_, i0, i1, j0, j1, slot(bj, i0), slot(bi, j0),
                  n_);
      }
    });
    std::copy(slots_.begin(), slots_.begin() + kSums * n_, sums_.begin());
    for (std::size_t b = 1; b < blocks_; ++b) {
      const double* s = slot(b, 0);
      for (std::size_t e = 0; e < kSums * n_; ++e) sums_[e] += s[e];
    }
    const double* z = sums_.data();
    const double *ax = z + n_, *ay = z + 2 * n_, *rx = z + 3 * n_, *ry = z + 4 * n_;
    const double total = std::accumulate(z, z + n_, 0.0);
    grad.resize(2 * n_);
    for (std::size_t i = 0; i < n_; ++i) {
      grad[2 * i] = 4.0 * (exaggeration * ax[i] - rx[i] / total);
      grad[2 * i + 1] = 4.0 * (exaggeration * ay[i] - ry[i] / total);
    }
    return total;
  }

  // sum over the non-zero p_ij (i != j) of p_ij log max(e p_ij, eps): the part of KL(eP || Q)
  // that does not depend on the embedding, divided by e. Twice the sum over i < j.
  double pLogP(double exaggeration) {
    upperRows([&](std::size_t i) {
      const double* p = p_.data() + i * n_;
      double s = 0.0;
      for (std::size_t j = i + 1; j < n_; ++j) {
        if (p[j] > 0) s += p[j] * std::log(std::max(exaggeration * p[j], kEps));
      }
      return s;
    });
    return 2.0 * std::accumulate(rowSum_.begin(), rowSum_.end(), 0.0);
  }

  // KL(eP || Q) = e (sum p log max(e p, eps) - sum p log max(q, eps)) over the non-zero p_ij, at
  // the embedding of the last gradient() call, whose Z was `z`; `pLogP` = pLogP(e).
  double kl(double z, double exaggeration, double pLogP) {
    upperRows([&](std::size_t i) {
      const double* p = p_.data() + i * n_;
      double s = 0.0;
      for (std::size_t j = i + 1; j < n_; ++j) {
        if (!(p[j] > 0)) continue;
        const double dx = xs_[i] - xs_[j], dy = ys_[i] - ys_[j];
        const double q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
        s += p[j] * std::log(std::max(q, kEps));
      }
      return s;
    });
    const double crossEntropy = 2.0 * std::accumulate(rowSum_.begin(), rowSum_.end(), 0.0);
    return exaggeration * (pLogP - crossEntropy);
  }

 private:
  double* slot(std::size_t block, std::size_t row) {
    return slots_.data() + block * kSums * n_ + row;
  }

  // rowSum_[i] = fn(i) for every row, over its pairs j > i; rows are uneven, so they are handed
  // out dynamically (each result has its own place, so the sums stay thread-count independent).
  template <typename Fn>
  void upperRows(Fn&& fn) {
    parallelForDynamic(n_, 16, threads_, [&](std::size_t i0, std::size_t i1, int) {
      for (std::size_t i = i0; i < i1; ++i) rowSum_[i] = fn(i);
    });
  }

  const std::vector<double>& p_;
  std::size_t n_;
  int threads_;
  std::size_t blocks_;
  std::vector<std::pair<std::size_t, std::size_t>> tiles_;
  std::vector<double> xs_, ys_;
  std::vector<double> slots_;  // blocks x 5 sums x n rows
  std::vector<double> sums_;   // 5 sums x n rows
  std::vector<double> rowSum_;
};

}  // namespace

double klGradientExact(const std::vector<double>& p, const std::vector<double>& y, std::size_t n,
                       std::vector<double>& grad, int threads, double exaggeration) {
  ExactGradient exact(p, n, threads);
  const double z = exact.gradient(y, exaggeration, grad);
  return exact.kl(z, exaggeration, exact.pLogP(exaggeration));
}

namespace {

// Barnes-Hut gradient with the tree supplied by the caller (reused across iterations).
double barnesHut(QuadTree& tree, const SparseP& p, const std::vector<double>& y, double theta,
                 double exaggeration, int threads, std::vector<double>& grad,
                 std::vector<double>& repulse, std::vector<double>& zPerPoint) {
  const std::size_t n = p.n;
  tree.build(y, n);
  const auto& order = tree.order();
  repulse.resize(2 * n);
  zPerPoint.resize(n);
  std::vector<double> sortedZ(n), sortedFx(n), sortedFy(n);
  const double theta2 = theta * theta;
  const int workers = std::max(threads, 1);
  std::vector<QuadTree::Lists> lists(static_cast<std::size_t>(workers));
  parallelForDynamic(tree.numLeaves(), 64, workers, [&](std::size_t l0, std::size_t l1, int w) {
    for (std::size_t l = l0; l < l1; ++l) {
      tree.repulsion(l, theta2, lists[static_cast<std::size_t>(w)], sortedZ.data(), sortedFx.data(),
                     sortedFy.data());
    }
  });
  for (std::size_t s = 0; s < n; ++s) {
    const std::uint32_t i = order[s];
    zPerPoint[i] = sortedZ[s];
    repulse[2 * i] = sortedFx[s];
    repulse[2 * i + 1] = sortedFy[s];
  }
  // Summed in point order, not per worker, so the result does not depend on the thread count.
  const double z = std::max(std::accumulate(zPerPoint.begin(), zPerPoint.end(), 0.0), kEps);
  grad.resize(2 * n);
  parallelFor(n, threads, [&](std::size_t i0, std::size_t i1, int) {
    for (std::size_t i = i0; i < i1; ++i) {
      double ax, ay;
      attraction(y.data(), i, p.cols.data() + p.rowStart[i], p.vals.data() + p.rowStart[i],
                 p.rowStart[i + 1] - p.rowStart[i], ax, ay);
      grad[2 * i] = 4.0 * (exaggeration * ax - repulse[2 * i] / z);
      grad[2 * i + 1] = 4.0 * (exaggeration * ay - repulse[2 * i + 1] / z);
    }
  });
  return z;
}

// KL over P's non-zeros for a given normalisation Z.
double sparseKl(const SparseP& p, const std::vector<double>& y, double z) {
  double kl = 0.0;
  for (std::size_t i = 0; i < p.n; ++i) {
    for (std::size_t e = p.rowStart[i]; e < p.rowStart[i + 1]; ++e) {
      const std::size_t j = p.cols[e];
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const double q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
      kl += p.vals[e] * std::log(std::max(p.vals[e], kEps) / std::max(q, kEps));
    }
  }
  return kl;
}

}  // namespace

double klGradientBarnesHut(const SparseP& p, const std::vector<double>& y, double theta,
                           double exaggeration, int threads, std::vector<double>& grad) {
  QuadTree tree;
  std::vector<double> repulse, zPerPoint;
  return barnesHut(tree, p, y, theta, exaggeration, threads, grad, repulse, zPerPoint);
}

double klDivergence(const SparseP& p, const std::vector<double>& y, int threads) {
  const std::size_t n = p.n;
  std::vector<double> rowZ(n, 0.0);
  // Rows are uneven (upper triangle), so hand them out dynamically.
  parallelForDynamic(n, 64, threads, [&](std::size_t i0, std::size_t i1, int) {
    for (std::size_t i = i0; i < i1; ++i) {
      const double yx = y[2 * i], yy = y[2 * i + 1];
      double z = 0.0;
      for (std::size_t j = i + 1; j < n; ++j) {
        const double dx = yx - y[2 * j], dy = yy - y[2 * j + 1];
        z += 1.0 / (1.0 + dx * dx + dy * dy);
      }
      rowZ[i] = 2.0 * z;
    }
  });
  return sparseKl(p, y, std::accumulate(rowZ.begin(), rowZ.end(), 0.0));
}

double klDivergence(const std::vector<double>& p, const std::vector<double>& y, std::size_t n,
                    int threads) {
  std::vector<double> grad;
  return klGradientExact(p, y, n, grad, threads);
}

std::vector<double> pcaScores(const float* x, std::size_t n, std::size_t d) {
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t t = 0; t < d; ++t) mean[t] += x[i * d + t];
  }
  for (auto& m : mean) m /= static_cast<double>(n);
  // Covariance from fixed row blocks summed in block order: thread-count independent.
  constexpr std::size_t kRows = 4096;
  const std::size_t blocks = (n + kRows - 1) / kRows;
  std::vector<std::vector<double>> partial(blocks);
  parallelForDynamic(blocks, 1, 0, [&](std::size_t b0, std::size_t b1, int) {
    std::vector<double> row(d);
    for (std::size_t b = b0; b < b1; ++b) {
      auto& c = partial[b];
      c.assign(d * d, 0.0);
      for (std::size_t i = b * kRows; i < std::min(n, (b + 1) * kRows); ++i) {
        for (std::size_t t = 0; t < d; ++t) row[t] = x[i * d + t] - mean[t];
        for (std::size_t a = 0; a < d; ++a) {
          const double ra = row[a];
          double* ca = c.data() + a * d;
          for (std::size_t t = a; t < d; ++t) ca[t] += ra * row[t];
        }
      }
    }
  });
  std::vector<double> cov(d * d, 0.0);
  for (const auto& c : partial) {
    for (std::size_t e = 0; e < d * d; ++e) cov[e] += c[e];
  }
  for (std::size_t a = 0; a < d; ++a) {
    for (std::size_t t = 0; t < a; ++t) cov[a * d + t] = cov[t * d + a];
  }
  std::vector<double> values, vectors;
  jacobiEigen(cov, d, values, vectors);
  std::vector<std::size_t> rank(d);
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](std::size_t a, std::size_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  const std::size_t comps = std::min<std::size_t>(2, d);
  std::vector<double> scores(2 * n, 0.0);
  for (std::size_t c = 0; c < comps; ++c) {
    const std::size_t col = rank[c];
    double best = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (std::size_t t = 0; t < d; ++t) s += (x[i * d + t] - mean[t]) * vectors[t * d + col];
      scores[2 * i + c] = s;
      if (std::abs(s) > std::abs(best)) best = s;
    }
    if (best < 0) {
      for (std::size_t i = 0; i < n; ++i) scores[2 * i + c] = -scores[2 * i + c];
    }
  }
  return scores;
}

double trustworthiness(const float* x, std::size_t n, std::size_t d, const std::vector<double>& y,
                       std::size_t k, int threads) {
  MS_REQUIRE(k >= 1 && 2 * n > 3 * k + 1, core::ConfigError,
             "trustworthiness: k = {} is too large for {} points", k, n);
  std::vector<double> penalty(n, 0.0);
  parallelFor(n, threads, [&](std::size_t i0, std::size_t i1, int) {
    std::vector<std::pair<double, std::uint32_t>> input(n), embed(n);
    std::vector<std::size_t> rankOf(n);
    for (std::size_t i = i0; i < i1; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        input[j] = {j == i ? -1.0 : exactSqDist(x + i * d, x + j * d, d),
                    static_cast<std::uint32_t>(j)};
        const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
        embed[j] = {j == i ? -1.0 : dx * dx + dy * dy, static_cast<std::uint32_t>(j)};
      }
      std::sort(input.begin(), input.end());
      for (std::size_t r = 0; r < n; ++r) rankOf[input[r].second] = r;  // self has rank 0
      std::partial_sort(embed.begin(), embed.begin() + k + 1, embed.end());
      double sum = 0.0;
      for (std::size_t r = 1; r <= k; ++r) {
        const std::size_t rank = rankOf[embed[r].second];
        if (rank > k) sum += static_cast<double>(rank - k);
      }
      penalty[i] = sum;
    }
  });
  const double total = std::accumulate(penalty.begin(), penalty.end(), 0.0);
  const double nn = static_cast<double>(n), kk = static_cast<double>(k);
  return 1.0 - 2.0 / (nn * kk * (2.0 * nn - 3.0 * kk - 1.0)) * total;
}

void TsneOptions::validate(std::size_t n) const {
  MS_REQUIRE(n >= 4, core::ConfigError, "t-SNE needs at least 4 points, got {}", n);
  MS_REQUIRE(perplexity > 0 && 3.0 * perplexity < static_cast<double>(n), core::ConfigError,
             "t-SNE perplexity must be > 0 and below a third of the number of points ({}), got "
             "{}",
             n, perplexity);
  MS_REQUIRE(iterations >= 1, core::ConfigError, "t-SNE iterations must be >= 1, got {}",
             iterations);
  MS_REQUIRE(exaggerationIterations >= 0, core::ConfigError,
             "t-SNE exaggeration iterations must be >= 0, got {}", exaggerationIterations);
  MS_REQUIRE(earlyExaggeration > 0, core::ConfigError,
             "t-SNE early exaggeration must be > 0, got {}", earlyExaggeration);
  MS_REQUIRE(theta >= 0 && theta <= 1, core::ConfigError,
             "t-SNE Barnes-Hut theta must be in [0, 1], got {}", theta);
  MS_REQUIRE(minGain > 0, core::ConfigError, "t-SNE min gain must be > 0, got {}", minGain);
}

std::string toString(TsneMethod method) {
  switch (method) {
    case TsneMethod::kExact:
      return "exact";
    case TsneMethod::kBarnesHut:
      return "barnes-hut";
    case TsneMethod::kAuto:
      break;
  }
  return "auto";
}

TsneResult runTsne(const float* x, std::size_t n, std::size_t d, const TsneOptions& options) {
  options.validate(n);
  const int threads = resolveThreads(options.threads);
  TsneResult result;
  result.method = options.method;
  if (result.method == TsneMethod::kAuto) {
    result.method = n <= options.exactMaxPoints ? TsneMethod::kExact : TsneMethod::kBarnesHut;
  }
  const bool exact = result.method == TsneMethod::kExact;

  auto t0 = std::chrono::steady_clock::now();
  SparseP sparse;
  std::vector<double> dense;
  if (exact) {
    dense = denseAffinities(x, n, d, options.perplexity, threads);
  } else {
    // scikit-learn's neighbour count.
    const auto k =
        std::min<std::size_t>(n - 1, static_cast<std::size_t>(3.0 * options.perplexity + 1.0));
    sparse = sparseAffinities(x, n, d, options.perplexity, k, threads);
  }
  result.affinitySeconds = secondsSince(t0);
  t0 = std::chrono::steady_clock::now();

  std::vector<double> y;
  if (options.init == TsneInit::kPca) {
    y = pcaScores(x, n, d);
    double mean = 0.0, var = 0.0;
    for (std::size_t i = 0; i < n; ++i) mean += y[2 * i];
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) var += (y[2 * i] - mean) * (y[2 * i] - mean);
    const double sd = std::sqrt(var / static_cast<double>(n));
    const double scale = sd > 0 ? 1e-4 / sd : 1.0;
    for (auto& v : y) v *= scale;
  } else {
    core::Rng rng(core::deriveSeed(options.seed, {0x75e1}));
    y.resize(2 * n);
    for (std::size_t i = 0; i < 2 * n; i += 2) {
      // Box-Muller: two standard normals per draw.
      const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
      const double r = std::sqrt(-2.0 * std::log(u1));
      y[i] = 1e-4 * r * std::cos(2.0 * M_PI * u2);
      y[i + 1] = 1e-4 * r * std::sin(2.0 * M_PI * u2);
    }
  }

  const double lr = options.learningRate > 0
                        ? options.learningRate
                        : std::max(static_cast<double>(n) / options.earlyExaggeration / 4.0, 50.0);
  std::vector<double> grad(2 * n), update(2 * n, 0.0), gains(2 * n, 1.0);
  std::vector<double> repulse, zPerPoint;
  QuadTree tree;
  std::optional<ExactGradient> exactGradient;
  // sum p log max(e p, eps) for the two phases' exaggerations, computed when first needed.
  std::optional<double> pLogPEarly, pLogPFinal;
  auto pLogP = [&](bool early) {
    auto& cached = early ? pLogPEarly : pLogPFinal;
    if (!cached) cached = exactGradient->pLogP(early ? options.earlyExaggeration : 1.0);
    return *cached;
  };
  if (exact) exactGradient.emplace(dense, n, threads);
  double z = 1.0;
  for (int it = 0; it < options.iterations; ++it) {
    const bool early = it < options.exaggerationIterations;
    if (it == options.exaggerationIterations && it > 0) {
      // scikit-learn runs the two phases as separate descents: momentum and gains restart.
      std::fill(update.begin(), update.end(), 0.0);
      std::fill(gains.begin(), gains.end(), 1.0);
    }
    const double exaggeration = early ? options.earlyExaggeration : 1.0;
    const double momentum = early ? options.initialMomentum : options.finalMomentum;
    const int done = it + 1;
    const bool report = options.progress && options.reportEvery > 0 &&
                        (done % options.reportEvery == 0 || done == options.iterations);
    double kl = 0.0;
    if (exact) {
      z = exactGradient->gradient(y, exaggeration, grad);
      // The exact KL costs a logarithm per pair: only for the iterations that report it, at the
      // embedding the gradient was taken at.
      if (report) kl = exactGradient->kl(z, exaggeration, pLogP(early));
    } else {
      z = barnesHut(tree, sparse, y, options.theta, exaggeration, threads, grad, repulse,
                    zPerPoint);
    }
    for (std::size_t e = 0; e < 2 * n; ++e) {
      if (update[e] * grad[e] < 0.0) {
        gains[e] += 0.2;
      } else {
        gains[e] *= 0.8;
      }
      gains[e] = std::max(gains[e], options.minGain);
      update[e] = momentum * update[e] - lr * gains[e] * grad[e];
      y[e] += update[e];
    }
    if (report) options.progress(done, exact ? kl : sparseKl(sparse, y, z));
  }
  result.optimizeSeconds = secondsSince(t0);
  if (exact) {
    result.kl = exactGradient->kl(exactGradient->gradient(y, 1.0, grad), 1.0, pLogP(false));
  } else {
    result.kl = klDivergence(sparse, y, threads);
  }
  result.embedding = std::move(y);
  return result;
}

}  // namespace metasemi::post
