// Images per second the input pipeline delivers, and the fraction of a step a trainer would
// spend waiting for data: a CIFAR-shaped in-memory set (pad-crop + flip + normalise) and a set
// of JPEG files (decode + random-resized crop to 224 + flip + normalise) with 1 and 2 workers,
// DCT-downscaled decoding on and off, the files as they are and pre-resized as
// `metasemi-prep jpeg-shards --shorter-side S` stores them. Prints figures; asserts nothing.
//
//   metasemi-bench-data [--jpeg-dir DIR] [--shorter-side S] [--step-ms MS] [--batch B] ...
//
// --jpeg-dir: a folder of .jpg files (default: synthetic 500x375 photo-like images);
// --step-ms: simulated trainer step while measuring the waiting fraction (default 30, about a
// full-size ConvLarge MetaSemi step at batch 128 on a data-centre GPU).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "BenchSupport.h"
#include "metasemi/core/Error.h"
#include "metasemi/data/Image.h"
#include "metasemi/data/Loader.h"
#include "prep/Jpeg.h"

namespace md = metasemi::data;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<int> intList(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
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

std::vector<std::vector<std::uint8_t>> jpegFiles(const std::string& dir) {
  std::vector<std::vector<std::uint8_t>> files;
  if (!dir.empty()) {
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".jpg" || e.path().extension() == ".JPEG")
        paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    MS_REQUIRE(!files.empty(), metasemi::core::ConfigError, "--jpeg-dir {}: no .jpg files", dir);
    return files;
  }
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
              (x * (c + 1) / 3 + y * (3 - c) / 2 + k * 7 + static_cast<int>(rng.below(48))) & 255);
    files.push_back(md::encodeJpeg(img, 90));
  }
  return files;
}

// The files as jpeg-shards --shorter-side S stores them (resized and re-encoded at quality 90
// when the shorter side is larger, the original bytes otherwise).
std::vector<std::vector<std::uint8_t>> preResized(const std::vector<std::vector<std::uint8_t>>& in,
                                                  int shorterSide) {
  metasemi::prep::JpegCodec codec;
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& f : in) {
    std::vector<std::uint8_t> re;
    codec.check(f.data(), f.size(), "bench", shorterSide, 90, re);
    out.push_back(re.empty() ? f : re);
  }
  return out;
}

std::string describe(const std::vector<std::vector<std::uint8_t>>& files) {
  double bytes = 0, pixels = 0;
  for (const auto& f : files) {
    int w = 0, h = 0;
    std::vector<std::uint8_t> rgb;
    metasemi::prep::decodeJpeg(f.data(), f.size(), "bench", rgb, w, h);
    bytes += static_cast<double>(f.size());
    pixels += static_cast<double>(w) * h;
  }
  const double n = static_cast<double>(files.size());
  return fmt::format("{} files, mean {:.0f} KB, mean {:.2f} Mpixel", files.size(), bytes / n / 1024,
                     pixels / n / 1e6);
}

std::shared_ptr<md::SampleSource> encodedSource(std::vector<std::vector<std::uint8_t>> files) {
  std::vector<std::int64_t> labels(files.size(), 0);
  return std::make_shared<md::MemoryEncodedSource>(std::move(files), std::move(labels), 1);
}

std::vector<std::int64_t> allIndices(const md::SampleSource& s) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(s.size()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
  return all;
}

// The pipeline as it was before region decoding (for the before/after table): every image
// decoded whole by OpenCV, the window resized with OpenCV's area filter (bilinear when it grows),
// then flipped and normalised, into a new batch tensor per batch, `workers` threads each
// preparing whole batches. Images per second over at least `minSeconds`.
double throughputBefore(const std::vector<std::vector<std::uint8_t>>& files,
                        const md::AugmentConfig& aug, std::int64_t batch, int workers,
                        double minSeconds) {
  std::atomic<std::int64_t> images{0};
  std::atomic<bool> stop{false};
  auto worker = [&](int id) {
    metasemi::core::Rng order(static_cast<std::uint64_t>(id) + 7);
    while (!stop) {
      torch::Tensor out = torch::empty({batch, 3, aug.crop, aug.crop});
      for (std::int64_t k = 0; k < batch; ++k) {
        const auto& f = files[order.below(files.size())];
        const md::Image img = md::decodeImage(f.data(), f.size(), 3, "bench");
        metasemi::core::Rng rng(order());
        const md::CropWindow win = md::drawResizedCrop(rng, img.height, img.width, aug);
        const bool flip = rng.uniform() < 0.5;
        md::Image resized;
        resized.height = resized.width = aug.crop;
        resized.channels = 3;
        resized.pixels.resize(static_cast<std::size_t>(3 * aug.crop * aug.crop));
        const cv::Mat src(static_cast<int>(img.height), static_cast<int>(img.width), CV_8UC3,
                          const_cast<std::uint8_t*>(img.pixels.data()));
        cv::Mat dst(static_cast<int>(aug.crop), static_cast<int>(aug.crop), CV_8UC3,
                    resized.pixels.data());
        const bool shrink = win.w > aug.crop && win.h > aug.crop;
        cv::resize(src(cv::Rect(static_cast<int>(win.x), static_cast<int>(win.y),
                                static_cast<int>(win.w), static_cast<int>(win.h))),
                   dst, dst.size(), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
        md::normalizeToChw(resized.pixels.data(), {aug.crop, aug.crop, 3}, flip, aug.norm,
                           out.data_ptr<float>() + k * 3 * aug.crop * aug.crop);
      }
      if (!stop) images += batch;
    }
  };
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int w = 0; w < workers; ++w) threads.emplace_back(worker, w);
  std::this_thread::sleep_for(std::chrono::duration<double>(minSeconds));
  const std::int64_t done = images;
  const double elapsed = seconds(t0);
  stop = true;
  for (auto& t : threads) t.join();
  return static_cast<double>(done) / elapsed;
}

// Delivered images per second when the consumer only takes batches, over at least `minSeconds`.
double throughput(const std::shared_ptr<md::SampleSource>& source, const md::AugmentConfig& aug,
                  std::int64_t batch, int workers, double minSeconds) {
  md::TrainStream s(source, allIndices(*source), md::StreamId::kLabeled, 1, aug, batch, 0, 1,
                    {workers, 2});
  s.next();  // start-up
  const auto t0 = Clock::now();
  std::int64_t images = 0;
  while (seconds(t0) < minSeconds) {
    s.next();
    images += batch;
  }
  return static_cast<double>(images) / seconds(t0);
}

// Fraction of wall time a consumer that computes for `stepMs` per step waits for its two
// batches (labeled + unlabeled, as the MetaSemi step takes), both prepared by one pool of
// `workers` threads as the trainer's --num-workers.
double waitFraction(const std::shared_ptr<md::SampleSource>& source, const md::AugmentConfig& aug,
                    std::int64_t batch, int workers, int steps, double stepMs) {
  const auto pool = md::WorkerPool::make(workers);
  const md::LoaderOptions opts{0, 4, pool};
  md::TrainStream lab(source, allIndices(*source), md::StreamId::kLabeled, 1, aug, batch, 0, 1,
                      opts);
  md::TrainStream unl(source, allIndices(*source), md::StreamId::kUnlabeled, 1, aug, batch, 0, 1,
                      opts);
  lab.next();
  unl.next();
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(4 * stepMs));
  const double wait0 = lab.totalWaitSeconds() + unl.totalWaitSeconds();
  const auto t0 = Clock::now();
  std::vector<double> waits;
  for (int i = 0; i < steps; ++i) {
    waits.push_back(lab.next().waitSeconds + unl.next().waitSeconds);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(stepMs));
  }
  std::sort(waits.begin(), waits.end());
  std::cout << fmt::format("      per-step wait: median {:.3f} ms, max {:.3f} ms\n",
                           1e3 * waits[waits.size() / 2], 1e3 * waits.back());
  return (lab.totalWaitSeconds() + unl.totalWaitSeconds() - wait0) / seconds(t0);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto a = metasemi::bench::parseFlags(
        argc, argv, "metasemi-bench-data",
        {{"jpeg-dir", ""},
         {"shorter-side", "0"},
         {"step-ms", "30"},
         {"batch", "128"},
         {"jpeg-batch", "64"},
         {"workers", "1,2"},
         {"wait-batches", "8,16,32"},
         {"seconds", "3"},
         {"skip-cifar", "0"},
         {"before", "1"}},
        "Images per second of the input pipeline and the data-wait fraction at a simulated "
        "step:\na CIFAR-shaped in-memory set and JPEG files (--jpeg-dir; default: synthetic "
        "photo-like images),\nthe JPEGs also pre-resized to --shorter-side S as jpeg-shards "
        "stores them (0: not).\n--before 1 also times the pipeline as it was before region "
        "decoding "
        "(OpenCV whole-image\ndecode and resize, a new batch tensor per batch).");
    const double stepMs = std::stod(a["step-ms"]);
    const double minSeconds = std::stod(a["seconds"]);
    const std::int64_t batch = std::stoll(a["batch"]);
    const std::int64_t jb = std::stoll(a["jpeg-batch"]);
    const int shorterSide = std::stoi(a["shorter-side"]);
    const auto workerCounts = intList(a["workers"]);
    const unsigned cores = std::thread::hardware_concurrency();
    std::cout << fmt::format("hardware threads: {}\n", cores);

    if (a["skip-cifar"] == "0") {
      const auto cifar = cifarLike();
      const auto cifarAug =
          md::trainAugment("cifar10", false, md::datasetNormalization("cifar10", {}, {}, 3));
      std::cout << fmt::format("CIFAR-shaped in memory (50000x32x32x3), pad-crop+flip, batch {}\n",
                               batch);
      for (int workers : {0, 1, 2})
        std::cout << fmt::format("  workers {}: {:9.0f} images/s\n", workers,
                                 throughput(cifar, cifarAug, batch, workers, minSeconds));
    }

    const auto original = jpegFiles(a["jpeg-dir"]);
    std::vector<std::pair<std::string, std::shared_ptr<md::SampleSource>>> sets;
    sets.emplace_back("as stored: " + describe(original), encodedSource(original));
    if (shorterSide > 0) {
      const auto small = preResized(original, shorterSide);
      sets.emplace_back(
          fmt::format("pre-resized to shorter side {}: {}", shorterSide, describe(small)),
          encodedSource(small));
    }
    md::AugmentConfig aug =
        md::trainAugment("imagenet", true, md::datasetNormalization("imagenet", {}, {}, 3), 224);
    std::cout << fmt::format(
        "JPEG: decode + random-resized crop 224 + flip + normalise, batch {}\n", jb);
    for (std::size_t k = 0; k < sets.size(); ++k) {
      const auto& [what, source] = sets[k];
      std::cout << "  " << what << "\n";
      if (a["before"] != "0") {
        for (int workers : workerCounts) {
          const double rate = throughputBefore(
              k == 0 ? original : preResized(original, shorterSide), aug, jb, workers, minSeconds);
          std::cout << fmt::format("    {:<19} workers {}: {:7.1f} images/s, {:6.1f} per core\n",
                                   "before (OpenCV),", workers, rate,
                                   rate / std::min<double>(workers, cores));
        }
      }
      for (bool scaled : {true, false}) {
        aug.scaledDecode = scaled;
        for (int workers : workerCounts) {
          const double rate = throughput(source, aug, jb, workers, minSeconds);
          const double used = std::min<double>(workers, cores);
          std::cout << fmt::format("    {:<19} workers {}: {:7.1f} images/s, {:6.1f} per core\n",
                                   scaled ? "downscaled decode," : "full-size decode,", workers,
                                   rate, rate / used);
        }
      }
    }
    aug.scaledDecode = true;
    const int waitWorkers = workerCounts.back();
    for (const auto& [what, source] : sets) {
      std::cout << fmt::format("  waiting for data at a {:.0f} ms step, {} workers: {}\n", stepMs,
                               waitWorkers, what.substr(0, what.find(':')));
      for (int b : intList(a["wait-batches"])) {
        const double f = waitFraction(source, aug, b, waitWorkers, 60, stepMs);
        std::cout << fmt::format("    {} + {} images per step: waiting {:.3f}% of the time\n", b, b,
                                 100 * f);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "metasemi-bench-data: " << e.what() << "\n";
    return metasemi::core::exitCodeFor(e);
  }
}
