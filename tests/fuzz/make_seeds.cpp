// Writes small valid inputs of every fuzzed format into <out>/<target>/ as seeds.
#include <matio.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "FuzzInput.h"
#include "metasemi/io/Checkpoint.h"
#include "metasemi/io/ShardWriter.h"

namespace fs = std::filesystem;
namespace io = metasemi::io;

namespace {

void put(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims) {
  std::vector<std::uint8_t> out;
  auto be = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  be(magic);
  std::size_t n = 1;
  for (auto d : dims) {
    be(d);
    n *= d;
  }
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(i * 13 % 10));
  return out;
}

void gz(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void mat(const fs::path& p, std::size_t n, bool compress) {
  std::vector<std::uint8_t> x(3072 * n, 17);
  std::vector<double> y(n, 3);
  mat_t* m = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
  std::size_t dx[4] = {32, 32, 3, n}, dy[2] = {n, 1};
  matvar_t* vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, x.data(), 0);
  Mat_VarWrite(m, vx, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
  Mat_VarFree(vx);
  matvar_t* vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y.data(), 0);
  Mat_VarWrite(m, vy, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
  Mat_VarFree(vy);
  Mat_Close(m);
}

std::vector<std::uint8_t> jpeg(int w, int h, int format, int flags) {
  const int channels = tjPixelSize[format];
  std::vector<std::uint8_t> px(static_cast<std::size_t>(w * h * channels));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 31 / 7);
  tjhandle c = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  tjCompress2(c, px.data(), w, 0, h, format, &out, &size,
              format == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_420, 80, flags);
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(c);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds OUT\n";
    return 2;
  }
  const fs::path out = argv[1];
  put(out / "idx" / "images", idx(0x803, {3, 4, 5}));
  put(out / "idx" / "labels", idx(0x801, {7}));
  gz(out / "idx" / "images.gz", idx(0x803, {2, 28, 28}));

  std::vector<std::uint8_t> record(3073 * 2, 40);
  record[0] = 3;
  record[3073] = 9;
  put(out / "cifar" / "two-records", record);
  const std::string names =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  put(out / "cifar" / "names", {names.begin(), names.end()});

  fs::create_directories(out / "svhn");
  mat(out / "svhn" / "raw.mat", 2, false);
  mat(out / "svhn" / "zlib.mat", 3, true);

  put(out / "jpeg" / "rgb.jpg", jpeg(40, 24, TJPF_RGB, 0));
  put(out / "jpeg" / "grey.jpg", jpeg(33, 17, TJPF_GRAY, 0));
  put(out / "jpeg" / "progressive.jpg", jpeg(48, 32, TJPF_RGB, TJFLAG_PROGRESSIVE));
  put(out / "jpeg" / "cmyk.jpg", jpeg(16, 16, TJPF_CMYK, 0));

  const fs::path set = out / "set";
  metasemi::fuzz::writeToySet(set, "seed");
  fs::create_directories(out / "shard_index");
  fs::create_directories(out / "shard_data");
  fs::copy_file(io::shardIndexPath(set, "train"), out / "shard_index" / "index.h5");
  fs::copy_file(io::shardPath(set, "train", 0), out / "shard_data" / "shard.h5");
  fs::remove_all(set);

  io::CheckpointState s;
  s.step = 3;
  s.model = {{"fc.weight", torch::ones({3, 4})}, {"fc.bias", torch::zeros({3})}};
  s.momentum = {{"fc.weight", torch::full({3, 4}, 0.5)}};
  s.config = "dataset = mnist\n";
  fs::create_directories(out / "checkpoint");
  io::writeCheckpoint((out / "checkpoint" / "checkpoint.h5").string(), s);
  return 0;
}
