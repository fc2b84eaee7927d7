// Throughput of metasemi-prep (images/s, wall time of the whole command including reading the
// input and writing every shard):
//   idx         the Fashion-MNIST files of the Debian package (70k images)
//   cifar10     a synthetic full-size CIFAR-10 binary set (50k + 10k records), folder and .tar.gz
//   jpeg-shards a class tree of real JPEGs (opencv-doc examples, copied to `--copies` images),
//               on 1 and 2 MPI ranks
// Usage: metasemi-bench-prep <work folder> <opencv-doc examples/data folder> [copies]
// (get the JPEGs with `apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb x`).
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "BenchSupport.h"
#include "metasemi/core/Random.h"

namespace fs = std::filesystem;

namespace {

fs::path binDir() {
  const char* env = std::getenv("METASEMI_BIN_DIR");
  return env ? fs::path(env) : fs::read_symlink("/proc/self/exe").parent_path();
}

double timed(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  const int rc = std::system((command + " > /dev/null 2>&1").c_str());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (rc != 0) {
    std::cerr << "failed (" << rc << "): " << command << "\n";
    std::exit(1);
  }
  return s;
}

void report(const std::string& what, std::int64_t images, double seconds) {
  fmt::print("{:<40} {:>8} images {:>8.2f} s {:>10.0f} images/s\n", what, images, seconds,
             images / seconds);
}

void writeCifar(const fs::path& folder) {
  fs::create_directories(folder);
  metasemi::core::Rng rng(1);
  std::vector<std::uint8_t> buf(10000 * 3073);
  for (int b = 0; b < 6; ++b) {
    for (std::size_t r = 0; r < 10000; ++r) {
      buf[r * 3073] = static_cast<std::uint8_t>(rng.below(10));
      for (std::size_t j = 1; j < 3073; j += 8) {
        const auto v = rng();
        for (std::size_t k = 0; k < 8 && j + k < 3073; ++k) {
          buf[r * 3073 + j + k] = static_cast<std::uint8_t>(v >> (8 * k));
        }
      }
    }
    const std::string name = b < 5 ? fmt::format("data_batch_{}.bin", b + 1) : "test_batch.bin";
    std::ofstream(folder / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "Usage: metasemi-bench-prep <work folder> <opencv-doc examples/data> [copies (40)]\n"
      "Throughput of metasemi-prep: idx (Fashion-MNIST), cifar10 (synthetic, folder and "
      ".tar.gz),\njpeg-shards (the JPEGs copied to `copies` images) on 1 and 2 ranks.\n";
  metasemi::bench::answerHelp(argc, argv, usage);
  if (argc < 3) {
    std::cerr << usage;
    return 2;
  }
  const fs::path work = argv[1];
  const fs::path jpegs = argv[2];
  const int copies = argc > 3 ? std::atoi(argv[3]) : 40;
  const std::string prep = (binDir() / "metasemi-prep").string();
  fs::remove_all(work);
  fs::create_directories(work);

  report("idx fashion-mnist (gzip)", 70000,
         timed(prep + " idx --input /usr/share/datasets/fashion-mnist --out " +
               (work / "fm").string()));

  writeCifar(work / "cifar-10-batches-bin");
  report("cifar10 synthetic, folder", 60000,
         timed(prep + " cifar10 --input " + (work / "cifar-10-batches-bin").string() + " --out " +
               (work / "c10").string()));
  timed("cd " + work.string() + " && tar czf cifar-10-binary.tar.gz cifar-10-batches-bin");
  report("cifar10 synthetic, tar.gz", 60000,
         timed(prep + " cifar10 --input " + (work / "cifar-10-binary.tar.gz").string() + " --out " +
               (work / "c10tgz").string()));

  // A class tree: every example JPEG `copies` times, spread over 10 classes.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(jpegs)) {
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::int64_t n = 0;
  std::uintmax_t bytes = 0;
  for (int c = 0; c < copies; ++c) {
    for (const auto& f : files) {
      const fs::path cls = work / "tree" / fmt::format("n{:03d}", n % 10);
      fs::create_directories(cls);
      fs::copy_file(f, cls / fmt::format("img_{:06d}.JPEG", n));
      bytes += fs::file_size(f);
      ++n;
    }
  }
  fmt::print("jpeg tree: {} images, {:.1f} MB\n", n, bytes / 1e6);
  const std::string tree = (work / "tree").string();
  report("jpeg-shards, 1 rank", n,
         timed(prep + " jpeg-shards --input " + tree + " --split train --out " +
               (work / "j1").string()));
  report("jpeg-shards, 2 ranks", n,
         timed("mpirun --oversubscribe -np 2 " + prep + " jpeg-shards --input " + tree +
               " --split train --images-per-shard 256 --out " + (work / "j2").string()));
  report("jpeg-shards, 1 rank, 256/shard", n,
         timed(prep + " jpeg-shards --input " + tree +
               " --split train --images-per-shard 256 --out " + (work / "j1b").string()));
  report("jpeg-shards rerun (all shards reused)", n,
         timed(prep + " jpeg-shards --input " + tree +
               " --split train --images-per-shard 256 --out " + (work / "j1b").string()));
  report("jpeg-shards, 1 rank, --shorter-side 256", n,
         timed(prep + " jpeg-shards --input " + tree + " --split train --shorter-side 256 --out " +
               (work / "j1r").string()));
  fs::remove_all(work);
  return 0;
}
