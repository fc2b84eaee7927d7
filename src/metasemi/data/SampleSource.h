// Where the input pipeline gets its samples from: images of one fixed size held in memory, or
// encoded (JPEG) images read one at a time. ShardSource adapts an io::ShardSet to this interface;
// tests and benchmarks build the in-memory kinds directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace metasemi::data {

/// Shape of one image in HWC order.
struct ImageShape {
  std::int64_t height = 0, width = 0, channels = 0;
  std::int64_t numel() const { return height * width * channels; }
};

/// A numbered set of labeled images. Every method may be called from several threads at once.
class SampleSource {
 public:
  virtual ~SampleSource() = default;

  /// Number of samples; valid indices are [0, size()).
  virtual std::int64_t size() const = 0;
  /// Class of sample `i`, in [0, numClasses()).
  virtual std::int64_t label(std::int64_t i) const = 0;
  /// Number of classes.
  virtual std::int64_t numClasses() const = 0;
  /// True for encoded images (encoded()), false for fixed-size pixels (pixels()).
  virtual bool isEncoded() const = 0;
  /// Fixed-size sources: the shape of every image. Encoded sources: 0×0×channels, the channels
  /// the images are decoded to (1 or 3).
  virtual ImageShape imageShape() const = 0;
  /// Fixed-size sources: the H·W·C uint8 pixels (HWC) of sample `i`, valid while the source
  /// lives. Encoded sources throw.
  virtual const std::uint8_t* pixels(std::int64_t i) const;
  /// Encoded sources: the bytes of the encoded image `i` into `out`. Fixed-size sources throw.
  virtual void encoded(std::int64_t i, std::vector<std::uint8_t>& out) const;
  /// What to name in error messages (a file or folder, or "in-memory ...").
  virtual std::string describe() const = 0;
};

/// Fixed-size uint8 images held in memory (small datasets are loaded once).
class MemoryImageSource : public SampleSource {
 public:
  /// `pixels`: N·H·W·C uint8 values, image after image in HWC order; `labels`: N values in
  /// [0, numClasses). Throws core::ConfigError when the sizes disagree or a label is out of range.
  MemoryImageSource(std::vector<std::uint8_t> pixels, ImageShape shape,
                    std::vector<std::int64_t> labels, std::int64_t numClasses,
                    std::string name = "in-memory images");

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t label(std::int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  std::int64_t numClasses() const override { return numClasses_; }
  bool isEncoded() const override { return false; }
  ImageShape imageShape() const override { return shape_; }
  const std::uint8_t* pixels(std::int64_t i) const override {
    return pixels_.data() + i * shape_.numel();
  }
  std::string describe() const override { return name_; }

 private:
  std::vector<std::uint8_t> pixels_;
  ImageShape shape_;
  std::vector<std::int64_t> labels_;
  std::int64_t numClasses_;
  std::string name_;
};

/// Encoded images (complete JPEG files) held in memory.
class MemoryEncodedSource : public SampleSource {
 public:
  /// `files[i]` is the encoded image of sample i, decoded to `channels` (1 or 3) channels.
  MemoryEncodedSource(std::vector<std::vector<std::uint8_t>> files,
                      std::vector<std::int64_t> labels, std::int64_t numClasses,
                      std::int64_t channels = 3, std::string name = "in-memory encoded images");

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t label(std::int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  std::int64_t numClasses() const override { return numClasses_; }
  bool isEncoded() const override { return true; }
  ImageShape imageShape() const override { return {0, 0, channels_}; }
  void encoded(std::int64_t i, std::vector<std::uint8_t>& out) const override {
    out = files_[static_cast<size_t>(i)];
  }
  std::string describe() const override { return name_; }

 private:
  std::vector<std::vector<std::uint8_t>> files_;
  std::vector<std::int64_t> labels_;
  std::int64_t numClasses_;
  std::int64_t channels_;
  std::string name_;
};

}  // namespace metasemi::data
