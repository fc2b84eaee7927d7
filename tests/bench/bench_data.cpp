// Images per second the input pipeline delivers, and the fraction of a step a trainer would
// spend waiting for data: a CIFAR-shaped in-memory set (pad-crop + flip + normalise) and a set
// of JPEG files (decode + random-resized crop to 224 + flip + normalise), with 0, 1 and 2
// background threads. Prints figures; asserts nothing.
//
//   metasemi-bench-data [--jpeg-dir DIR] [--step-ms MS] [--batch B]
//
// --jpeg-dir: a folder of .jpg files to use (default: synthetic 500x375 photos-like images);
// --step-ms: simulated trainer step time while measuring the waiting fraction (default 30,
// about a full-size ConvLarge MetaSemi step at batch 128 on a data-centre GPU).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "BenchSupport.h"
#include "metasemi/core/Error.h"
#include "metasemi/data/Loader.h"

namespace md = metasemi::data;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::shared_ptr<md::SampleSource> cifarLike() {
  const std::int64_t n = 50000;
  const md::ImageShape shape{32, 32, 3};
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * shape.numel()));
  metasemi::core::Rng rng(1);
  for (auto& p : px) p = static_cast<std::uint8_t>(rng() >> 56);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % 10;
  return std::make_shared<md::MemoryImageSource>(std::move(px), shape, std::move(labels), 10,
                                                 "cifar-shaped");
}

std::shared_ptr<md::SampleSource> jpegSet(const std::string& dir, std::string& what) {
  std::vector<std::vector<std::uint8_t>> files;
  if (!dir.empty()) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".jpg") continue;
      std::ifstream in(e.path(), std::ios::binary);
      files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    MS_REQUIRE(!files.empty(), metasemi::core::ConfigError, "--jpeg-dir {}: no .jpg files", dir);
    what = fmt::format("{} JPEG files from {}", files.size(), dir);
  } else {
    // Smooth colour gradients with texture: compresses like a photo (~50-100 KB at q90).
    metasemi::core::Rng rng(2);
    for (int k = 0; k < 64; ++k) {
      md::Image img;
      img.height = 375;
      img.width = 500;
      img.channels = 3;
      img.pixels.resize(375 * 500 * 3);
      for (int y = 0; y < 375; ++y)
        for (int x = 0; x < 500; ++x)
          for (int c = 0; c < 3; ++c)
            img.pixels[(y * 500 + x) * 3 + c] = static_cast<std::uint8_t>(
                (x * (c + 1) / 3 + y * (3 - c) / 2 + k * 7 + static_cast<int>(rng.below(48))) &
                255);
      files.push_back(md::encodeJpeg(img, 90));
    }
    what = "64 synthetic 500x375 JPEG files (q90)";
  }
  std::size_t bytes = 0;
  for (const auto& f : files) bytes += f.size();
  what += fmt::format(", mean {:.0f} KB", bytes / 1024.0 / files.size());
  std::vector<std::int64_t> labels(files.size(), 0);
  return std::make_shared<md::MemoryEncodedSource>(std::move(files), std::move(labels), 1);
}

// Delivered images per second when the consumer only takes batches.
double throughput(const std::shared_ptr<md::SampleSource>& source, const md::AugmentConfig& aug,
                  std::int64_t batch, int threads, int batches) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(source->size()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
  md::TrainStream s(source, all, md::StreamId::kLabeled, 1, aug, batch, 0, 1,
                    {threads, std::max(2, 2 * threads)});
  s.next();  // start-up
  const auto t0 = Clock::now();
  for (int i = 0; i < batches; ++i) s.next();
  return static_cast<double>(batch) * batches / seconds(t0);
}

// Fraction of wall time a consumer that computes for `stepMs` per step waits for its two
// batches (labeled + unlabeled, as the MetaSemi step takes).
double waitFraction(const std::shared_ptr<md::SampleSource>& source, const md::AugmentConfig& aug,
                    std::int64_t batch, int threads, int steps, double stepMs) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(source->size()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
  const md::LoaderOptions opts{threads, std::max(2, 2 * threads)};
  md::TrainStream lab(source, all, md::StreamId::kLabeled, 1, aug, batch, 0, 1, opts);
  md::TrainStream unl(source, all, md::StreamId::kUnlabeled, 1, aug, batch, 0, 1, opts);
  lab.next();
  unl.next();
  const double wait0 = lab.totalWaitSeconds() + unl.totalWaitSeconds();
  const auto t0 = Clock::now();
  std::vector<double> waits;
  for (int i = 0; i < steps; ++i) {
    waits.push_back(lab.next().waitSeconds + unl.next().waitSeconds);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(stepMs));
  }
  std::sort(waits.begin(), waits.end());
  std::cout << fmt::format("    per-step wait: median {:.3f} ms, max {:.3f} ms\n",
                           1e3 * waits[waits.size() / 2], 1e3 * waits.back());
  return (lab.totalWaitSeconds() + unl.totalWaitSeconds() - wait0) / seconds(t0);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto a = metasemi::bench::parseFlags(
        argc, argv, "metasemi-bench-data", {{"jpeg-dir", ""}, {"step-ms", "30"}, {"batch", "128"}},
        "Images per second of the input pipeline and the data-wait fraction at a simulated "
        "step:\na CIFAR-shaped in-memory set and JPEG files (--jpeg-dir; default: synthetic "
        "photo-like images).");
    const std::string jpegDir = a["jpeg-dir"];
    const double stepMs = std::stod(a["step-ms"]);
    const std::int64_t batch = std::stoll(a["batch"]);
    std::cout << fmt::format("hardware threads: {}\n", std::thread::hardware_concurrency());

    const auto cifar = cifarLike();
    const auto cifarAug =
        md::trainAugment("cifar10", false, md::datasetNormalization("cifar10", {}, {}, 3));
    std::cout << fmt::format("CIFAR-shaped in memory (50000x32x32x3), pad-crop+flip, batch {}\n",
                             batch);
    for (int threads : {0, 1, 2})
      std::cout << fmt::format("  threads {}: {:9.0f} images/s\n", threads,
                               throughput(cifar, cifarAug, batch, threads, 200));
    for (int threads : {1, 2})
      std::cout << fmt::format(
          "  threads {}: waiting {:.3f}% of a {:.0f} ms step (2 batches of {} per step)\n", threads,
          100 * waitFraction(cifar, cifarAug, batch, threads, 50, stepMs), stepMs, batch);

    std::string what;
    const auto jpeg = jpegSet(jpegDir, what);
    const auto jpegAug =
        md::trainAugment("imagenet", true, md::datasetNormalization("imagenet", {}, {}, 3), 224);
    const std::int64_t jb = 64;
    std::cout << fmt::format("JPEG: {}; decode + random-resized crop 224 + flip, batch {}\n", what,
                             jb);
    for (int threads : {1, 2})
      std::cout << fmt::format("  threads {}: {:9.1f} images/s\n", threads,
                               throughput(jpeg, jpegAug, jb, threads, 6));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "metasemi-bench-data: " << e.what() << "\n";
    return metasemi::core::exitCodeFor(e);
  }
}
