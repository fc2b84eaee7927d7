#include "metasemi/data/JpegDecoder.h"

// clang-format off
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "metasemi/core/Error.h"

namespace metasemi::data {
namespace {

// TurboJPEG's TJFLAG_LIMITSCANS bound: a crafted progressive file cannot make decoding take
// unbounded time.
constexpr int kMaxScans = 500;

// libjpeg reports errors through callbacks; these jump back to the call that started the
// libjpeg work, which then throws (no C++ frame lies between the two).
struct Errors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jumpWithLibjpegMessage(j_common_ptr c) {
  auto* e = reinterpret_cast<Errors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

void onError(j_common_ptr c) { jumpWithLibjpegMessage(c); }

void onMessage(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  // Only these two warnings say nothing about the image data (as metasemi-prep decides).
  if (c->err->msg_code == JWRN_JFIF_MAJOR || c->err->msg_code == JWRN_ADOBE_XFORM) return;
  jumpWithLibjpegMessage(c);
}

void onProgress(j_common_ptr c) {
  if (!c->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number <= kMaxScans) return;
  auto* e = reinterpret_cast<Errors*>(c->err);
  std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxScans);
  std::longjmp(e->jump, 1);
}

}  // namespace

struct JpegDecoderState {
  jpeg_decompress_struct cinfo{};
  Errors errors{};
  jpeg_progress_mgr progress{};
  std::int64_t maxPixels = kMaxDecodePixels;
  std::vector<std::uint8_t> cmykRow;
  std::vector<JSAMPROW> rows;
};

namespace {

using State = JpegDecoderState;

// Each returns false with the message in s.errors.message when libjpeg fails.

bool readHeader(State& s, const std::uint8_t* data, std::size_t size) {
  if (setjmp(s.errors.jump)) return false;
  jpeg_mem_src(&s.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s.cinfo, TRUE);
  return true;
}

void cmykToOutput(const std::uint8_t* cmyk, std::int64_t width, std::int64_t channels,
                  std::uint8_t* out) {
  // Adobe's inverted CMYK: R = C'·K'/255 with the stored C', K' (as metasemi-prep and OpenCV).
  for (std::int64_t x = 0; x < width; ++x) {
    const unsigned k = cmyk[4 * x + 3];
    const unsigned r = (cmyk[4 * x] * k + 127) / 255, g = (cmyk[4 * x + 1] * k + 127) / 255,
                   b = (cmyk[4 * x + 2] * k + 127) / 255;
    if (channels == 3) {
      out[3 * x] = static_cast<std::uint8_t>(r);
      out[3 * x + 1] = static_cast<std::uint8_t>(g);
      out[3 * x + 2] = static_cast<std::uint8_t>(b);
    } else {  // libjpeg's RGB → grey weights, fixed point
      out[x] = static_cast<std::uint8_t>((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
    }
  }
}

bool decodeRows(State& s, const RegionRequest& req, bool cmyk, DecodedRegion& out) {
  if (setjmp(s.errors.jump)) return false;
  jpeg_decompress_struct& c = s.cinfo;
  jpeg_start_decompress(&c);
  // One column more on each side: fancy upsampling has no neighbour for the outermost columns
  // of a cropped row, which therefore differ from a whole decode; these stay outside [x0, x1).
  const std::int64_t left = std::max<std::int64_t>(0, req.x0 - 1);
  auto xoff = static_cast<JDIMENSION>(left);
  auto width = static_cast<JDIMENSION>(std::min<std::int64_t>(c.output_width, req.x1 + 1) - left);
  if (width < c.output_width) jpeg_crop_scanline(&c, &xoff, &width);
  if (req.y0 > 0) jpeg_skip_scanlines(&c, static_cast<JDIMENSION>(req.y0));
  out.x0 = xoff;
  out.y0 = req.y0;
  out.width = width;
  out.height = req.y1 - req.y0;
  const std::int64_t stride = out.width * out.channels;
  out.pixels.resize(static_cast<std::size_t>(out.height * stride));
  if (cmyk) {
    s.cmykRow.resize(static_cast<std::size_t>(width) * 4);
    JSAMPROW row = s.cmykRow.data();
    for (std::int64_t y = 0; y < out.height; ++y) {
      if (jpeg_read_scanlines(&c, &row, 1) != 1) {
        std::snprintf(s.errors.message, sizeof s.errors.message, "no row after row %ld",
                      static_cast<long>(req.y0 + y));
        return false;
      }
      cmykToOutput(row, out.width, out.channels, out.pixels.data() + y * stride);
    }
  } else {
    s.rows.resize(static_cast<std::size_t>(out.height));
    for (std::int64_t y = 0; y < out.height; ++y) s.rows[y] = out.pixels.data() + y * stride;
    std::int64_t done = 0;
    while (done < out.height) {
      const JDIMENSION got =
          jpeg_read_scanlines(&c, s.rows.data() + done, static_cast<JDIMENSION>(out.height - done));
      if (got == 0) {
        std::snprintf(s.errors.message, sizeof s.errors.message, "no row after row %ld",
                      static_cast<long>(req.y0 + done));
        return false;
      }
      done += got;
    }
  }
  if (c.output_scanline == c.output_height) {
    // The region reaches the last row: read on to the end of the image, so that corruption
    // libjpeg only notices there (misaligned entropy data, extraneous bytes) is reported.
    jpeg_finish_decompress(&c);
  } else {
    jpeg_abort_decompress(&c);  // the rows below the region are never read
  }
  return true;
}

}  // namespace

JpegDecoder::JpegDecoder() : s_(std::make_unique<JpegDecoderState>()) {
  s_->cinfo.err = jpeg_std_error(&s_->errors.pub);
  s_->errors.pub.error_exit = onError;
  s_->errors.pub.emit_message = onMessage;
  jpeg_create_decompress(&s_->cinfo);
  s_->progress.progress_monitor = onProgress;
  s_->cinfo.progress = &s_->progress;
}

JpegDecoder::~JpegDecoder() { jpeg_destroy_decompress(&s_->cinfo); }

bool JpegDecoder::isJpeg(const std::uint8_t* data, std::size_t size) {
  return size >= 4 && data[0] == 0xFF && data[1] == 0xD8;
}

void JpegDecoder::setMaxPixels(std::int64_t maxPixels) {
  MS_CHECK(maxPixels > 0, "pixel limit {}", maxPixels);
  s_->maxPixels = maxPixels;
}

void JpegDecoder::decode(const std::uint8_t* data, std::size_t size, const std::string& what,
                         int channels, const std::function<RegionRequest(const JpegInfo&)>& choose,
                         DecodedRegion& out) {
  MS_CHECK(channels == 1 || channels == 3, "channels {}", channels);
  MS_REQUIRE(isJpeg(data, size), core::IoError,
             "{}: not a JPEG file ({} bytes, no start-of-image marker 0xFFD8)", what, size);
  JpegDecoderState& s = *s_;
  jpeg_decompress_struct& c = s.cinfo;
  jpeg_abort_decompress(&c);  // whatever an earlier failure left
  if (!readHeader(s, data, size)) {
    jpeg_abort_decompress(&c);
    MS_THROW(core::IoError, "{}: corrupt JPEG header: {}", what, s.errors.message);
  }
  JpegInfo info;
  info.width = c.image_width;
  info.height = c.image_height;
  info.components = c.num_components;
  const std::int64_t pixels = info.width * info.height;
  if (pixels <= 0 || pixels > s.maxPixels) {
    jpeg_abort_decompress(&c);
    MS_THROW(core::IoError, "{}: {}x{} pixels ({:.2f} Mpixel) is over the limit of {} Mpixel", what,
             info.width, info.height, static_cast<double>(pixels) / 1e6,
             static_cast<double>(s.maxPixels) / 1e6);
  }
  const RegionRequest req = choose(info);
  const bool cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
  c.out_color_space = cmyk ? JCS_CMYK : (channels == 1 ? JCS_GRAYSCALE : JCS_RGB);
  c.scale_num = 1;
  c.scale_denom = static_cast<unsigned>(req.scaleDenom);
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  jpeg_calc_output_dimensions(&c);
  out.fullWidth = c.output_width;
  out.fullHeight = c.output_height;
  out.channels = channels;
  MS_CHECK(
      (req.scaleDenom == 1 || req.scaleDenom == 2 || req.scaleDenom == 4 || req.scaleDenom == 8) &&
          req.x0 >= 0 && req.x0 < req.x1 && req.x1 <= out.fullWidth && req.y0 >= 0 &&
          req.y0 < req.y1 && req.y1 <= out.fullHeight,
      "{}: region [{}, {}) x [{}, {}) at 1/{} of a {}x{} image", what, req.x0, req.x1, req.y0,
      req.y1, req.scaleDenom, out.fullWidth, out.fullHeight);
  if (!decodeRows(s, req, cmyk, out)) {
    jpeg_abort_decompress(&c);
    MS_THROW(core::IoError, "{}: corrupt or truncated JPEG: {}", what, s.errors.message);
  }
}

}  // namespace metasemi::data
