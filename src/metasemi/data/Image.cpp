#include "metasemi/data/Image.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "metasemi/core/Error.h"

namespace metasemi::data {
namespace {

cv::Mat matView(const Image& image) {
  return cv::Mat(static_cast<int>(image.height), static_cast<int>(image.width),
                 CV_8UC(static_cast<int>(image.channels)),
                 const_cast<std::uint8_t*>(image.pixels.data()));
}

Image allocate(std::int64_t height, std::int64_t width, std::int64_t channels) {
  Image image;
  image.height = height;
  image.width = width;
  image.channels = channels;
  image.pixels.resize(static_cast<std::size_t>(height * width * channels));
  return image;
}

}  // namespace

Image decodeImage(const std::uint8_t* data, std::size_t size, std::int64_t channels,
                  const std::string& what) {
  MS_CHECK(channels == 1 || channels == 3, "channels {}", channels);
  MS_REQUIRE(size > 0, core::IoError, "{}: empty image data (0 bytes)", what);
  const cv::Mat encoded(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
  const int flags =
      (channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR) | cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(encoded, flags);
  } catch (const cv::Exception& e) {
    MS_THROW(core::IoError, "{}: cannot decode the image ({} bytes): {}", what, size, e.msg);
  }
  MS_REQUIRE(!decoded.empty(), core::IoError,
             "{}: cannot decode the image ({} bytes; not a JPEG/PNG file or truncated)", what,
             size);
  Image out = allocate(decoded.rows, decoded.cols, channels);
  cv::Mat dst = matView(out);
  if (channels == 3) {
    cv::cvtColor(decoded, dst, cv::COLOR_BGR2RGB);
  } else {
    decoded.copyTo(dst);
  }
  MS_CHECK(dst.data == out.pixels.data(), "OpenCV reallocated the output");
  return out;
}

std::vector<std::uint8_t> encodeJpeg(const Image& image, int quality) {
  cv::Mat src = matView(image);
  cv::Mat bgr;
  if (image.channels == 3) {
    cv::cvtColor(src, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = src;
  }
  std::vector<std::uint8_t> out;
  MS_CHECK(cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, quality}),
           "JPEG encoding failed");
  return out;
}

}  // namespace metasemi::data
