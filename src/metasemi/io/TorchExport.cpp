#include "metasemi/io/TorchExport.h"

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/io/H5File.h"

namespace metasemi::io {
namespace {

// How each element type is named by torch.save (its legacy storage class) and by safetensors.
struct TypeNames {
  torch::ScalarType type;
  const char* storage;
  const char* safetensors;
};

constexpr TypeNames kTypes[] = {
    {torch::kFloat32, "FloatStorage", "F32"}, {torch::kFloat64, "DoubleStorage", "F64"},
    {torch::kFloat16, "HalfStorage", "F16"},  {torch::kBFloat16, "BFloat16Storage", "BF16"},
    {torch::kInt64, "LongStorage", "I64"},    {torch::kInt32, "IntStorage", "I32"},
    {torch::kInt16, "ShortStorage", "I16"},   {torch::kInt8, "CharStorage", "I8"},
    {torch::kUInt8, "ByteStorage", "U8"},     {torch::kBool, "BoolStorage", "BOOL"},
};

const TypeNames& typeNames(const std::string& name, const torch::Tensor& t) {
  for (const auto& n : kTypes) {
    if (n.type == t.scalar_type()) return n;
  }
  MS_THROW(core::ConfigError, "tensor '{}' has dtype {}, which cannot be exported", name,
           c10::toString(t.scalar_type()));
}

std::string shapeText(torch::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.begin(), shape.end(), ", "));
}

bool hostIsLittleEndian() {
  const std::uint16_t one = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// The bytes to store for `t`: a dense, contiguous CPU tensor of the same dtype and shape.
torch::Tensor storable(const std::string& name, const torch::Tensor& t) {
  MS_REQUIRE(t.defined(), core::ConfigError, "tensor '{}' is undefined", name);
  MS_REQUIRE(t.layout() == torch::kStrided && !t.is_quantized(), core::ConfigError,
             "tensor '{}' is not a dense tensor", name);
  typeNames(name, t);
  return t.detach().to(torch::kCPU).contiguous();
}

// Pickle protocol 2, the opcodes torch.save's pickler emits for the values a checkpoint holds.
class PickleWriter {
 public:
  PickleWriter() {
    op('\x80');
    op('\x02');
  }

  void op(char c) { bytes_.push_back(c); }
  void mark() { op('('); }
  void none() { op('N'); }
  void boolean(bool v) { op(v ? '\x88' : '\x89'); }

  void integer(std::int64_t v) {
    if (v >= 0 && v < 0x100) {
      op('K');
      raw(v, 1);
    } else if (v >= 0 && v < 0x10000) {
      op('M');
      raw(v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      raw(v, 4);
    } else {
      op('\x8a');  // LONG1: length, then little-endian two's complement
      op('\x08');
      raw(v, 8);
    }
  }

  void real(double v) {
    op('G');  // BINFLOAT: big-endian IEEE 754
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 7; i >= 0; --i) op(static_cast<char>((bits >> (8 * i)) & 0xff));
  }

  void text(const std::string& s) {
    op('X');
    raw(static_cast<std::int64_t>(s.size()), 4);
    bytes_ += s;
  }

  void global(const std::string& module, const std::string& name) {
    op('c');
    bytes_ += module + "\n" + name + "\n";
  }

  // An empty collections.OrderedDict on the stack.
  void orderedDict() {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  }

  void intTuple(torch::IntArrayRef v) {
    if (v.empty()) {
      op(')');
      return;
    }
    mark();
    for (auto x : v) integer(x);
    op('t');
  }

  // torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()) with the
  // storage as persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel), the form
  // torch.load resolves to the archive record data/<key>.
  void tensor(const torch::Tensor& t, const std::string& key, const char* storage) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark();
    text("storage");
    global("torch", storage);
    text(key);
    text("cpu");
    integer(t.numel());
    op('t');
    op('Q');  // BINPERSID
    integer(0);
    intTuple(t.sizes());
    intTuple(t.strides());
    boolean(false);
    orderedDict();
    op('t');
    op('R');
  }

  const std::string& finish() {
    op('.');
    return bytes_;
  }

 private:
  void raw(std::int64_t v, int bytes) {
    const auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < bytes; ++i) op(static_cast<char>((u >> (8 * i)) & 0xff));
  }

  std::string bytes_;
};

// A file written with stdio that remembers the first failure (with its errno), so that writers
// which cannot take an exception in the middle (the zip writer) can be checked afterwards.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path, const std::string& shownPath)
      : shownPath_(shownPath), file_(std::fopen(path.c_str(), "wb")) {
    MS_REQUIRE(file_ != nullptr, core::IoError, "cannot write '{}': {}", shownPath_,
               std::strerror(errno));
  }
  ~OutputFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, std::size_t n) {
    if (error_ != 0 || n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) error_ = errno != 0 ? errno : EIO;
  }

  // Flushes and closes; throws core::IoError naming the file when anything failed.
  void close() {
    if (std::fflush(file_) != 0 && error_ == 0) error_ = errno;
    if (std::fclose(file_) != 0 && error_ == 0) error_ = errno;
    file_ = nullptr;
    MS_REQUIRE(error_ == 0, core::IoError, "cannot write '{}': {}", shownPath_,
               std::strerror(error_));
  }

 private:
  std::string shownPath_;
  std::FILE* file_;
  int error_ = 0;
};

void requireUniqueNames(const NamedTensors& tensors, const char* what) {
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    MS_REQUIRE(seen.insert(name).second, core::ConfigError, "{} '{}' appears twice", what, name);
  }
}

}  // namespace

void writeTorchCheckpoint(const std::string& path, const ReferenceCheckpoint& c) {
  MS_CHECK(hostIsLittleEndian(), "torch.save archives are written little-endian");
  requireUniqueNames(c.model, "state_dict key");
  requireUniqueNames(c.momentum, "momentum buffer");

  // Every tensor once, in pickle order; its archive key is its position.
  std::vector<torch::Tensor> stored;
  PickleWriter p;
  auto addTensor = [&](const std::string& name, const torch::Tensor& t) {
    const torch::Tensor s = storable(name, t);
    p.tensor(s, std::to_string(stored.size()), typeNames(name, s).storage);
    stored.push_back(s);
  };

  p.op('}');
  p.mark();
  p.text("step");
  p.integer(c.step);

  p.text("model");
  p.orderedDict();
  if (!c.model.empty()) {
    p.mark();
    for (const auto& [name, t] : c.model) {
      p.text(name);
      addTensor(name, t);
    }
    p.op('u');
  }

  p.text("best_acc");
  p.real(c.bestAcc);

  // torch.optim.Optimizer.state_dict(): {'state': {index: {...}}, 'param_groups': [...]}.
  std::vector<std::int64_t> index;
  std::vector<torch::Tensor> buffers;
  for (std::size_t i = 0; i < c.parameters.size(); ++i) {
    const std::string& name = c.parameters[i];
    const auto param = std::find_if(c.model.begin(), c.model.end(),
                                    [&](const auto& e) { return e.first == name; });
    MS_REQUIRE(param != c.model.end(), core::ConfigError,
               "parameter '{}' is not a key of the state_dict", name);
    for (std::size_t j = 0; j < i; ++j) {
      MS_REQUIRE(c.parameters[j] != name, core::ConfigError, "parameter '{}' appears twice", name);
    }
    for (const auto& [bufferName, b] : c.momentum) {
      if (bufferName != name) continue;
      MS_REQUIRE(b.defined() && b.sizes() == param->second.sizes() &&
                     b.scalar_type() == param->second.scalar_type(),
                 core::ConfigError,
                 "momentum buffer of '{}' does not match the parameter ({} {} vs {} {})", name,
                 b.defined() ? shapeText(b.sizes()) : "undefined",
                 b.defined() ? c10::toString(b.scalar_type()) : "",
                 shapeText(param->second.sizes()), c10::toString(param->second.scalar_type()));
      index.push_back(static_cast<std::int64_t>(i));
      buffers.push_back(b);
    }
  }
  for (const auto& [bufferName, b] : c.momentum) {
    MS_REQUIRE(
        std::find(c.parameters.begin(), c.parameters.end(), bufferName) != c.parameters.end(),
        core::ConfigError, "momentum buffer '{}' belongs to no parameter", bufferName);
  }

  p.text("optimizer");
  p.op('}');
  p.mark();
  p.text("state");
  p.op('}');
  if (!index.empty()) {
    p.mark();
    for (std::size_t k = 0; k < index.size(); ++k) {
      p.integer(index[k]);
      p.op('}');
      p.mark();
      p.text("momentum_buffer");
      addTensor("momentum buffer of " + c.parameters[static_cast<std::size_t>(index[k])],
                buffers[k]);
      p.op('u');
    }
    p.op('u');
  }
  // One group with torch.optim.SGD's keys (as PyTorch 1.13 lists them), 'params' last.
  p.text("param_groups");
  p.op(']');
  p.mark();
  p.op('}');
  p.mark();
  p.text("lr");
  p.real(c.sgd.lr);
  p.text("momentum");
  p.real(c.sgd.momentum);
  p.text("dampening");
  // torch.optim.SGD's default is the integer 0; keep its type.
  if (c.sgd.dampening == 0.0) {
    p.integer(0);
  } else {
    p.real(c.sgd.dampening);
  }
  p.text("weight_decay");
  p.real(c.sgd.weightDecay);
  p.text("nesterov");
  p.boolean(c.sgd.nesterov);
  p.text("maximize");
  p.boolean(false);
  p.text("foreach");
  p.none();
  p.text("differentiable");
  p.boolean(false);
  p.text("params");
  p.op(']');
  if (!c.parameters.empty()) {
    p.mark();
    for (std::size_t i = 0; i < c.parameters.size(); ++i) p.integer(static_cast<std::int64_t>(i));
    p.op('e');
  }
  p.op('u');
  p.op('e');
  p.op('u');  // the optimizer dict
  p.op('u');  // the checkpoint dict
  const std::string& pickle = p.finish();

  AtomicOutput out(path);
  OutputFile file(out.tempPath(), path);
  try {
    // The writer function never reports a failure to the zip writer (whose destructor would
    // then throw again); OutputFile keeps it and close() raises it.
    caffe2::serialize::PyTorchStreamWriter zip([&](const void* data, std::size_t n) {
      file.write(data, n);
      return n;
    });
    zip.writeRecord("data.pkl", pickle.data(), pickle.size());
    static const char kLittle[] = "little";
    zip.writeRecord("byteorder", kLittle, sizeof kLittle - 1);
    static const char kEmpty = 0;
    for (std::size_t k = 0; k < stored.size(); ++k) {
      const torch::Tensor& t = stored[k];
      const std::size_t bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
      zip.writeRecord("data/" + std::to_string(k), bytes > 0 ? t.data_ptr() : &kEmpty, bytes);
    }
    zip.writeEndOfFile();
  } catch (const c10::Error& e) {
    MS_THROW(core::IoError, "cannot write '{}': {}", path, e.what_without_backtrace());
  }
  file.close();
  out.commit();
}

void writeSafetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  MS_CHECK(hostIsLittleEndian(), "safetensors files are written little-endian");
  requireUniqueNames(tensors, "tensor");
  MS_REQUIRE(std::none_of(tensors.begin(), tensors.end(),
                          [](const auto& e) { return e.first == "__metadata__"; }),
             core::ConfigError, "a tensor cannot be named '__metadata__'");

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> stored;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const torch::Tensor s = storable(name, t);
    const auto bytes = static_cast<std::uint64_t>(s.numel()) * s.element_size();
    header[name] = {{"dtype", typeNames(name, s).safetensors},
                    {"shape", s.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    stored.push_back(s);
  }
  std::string text = header.dump();
  // The data starts 8-byte aligned, as the reference writer pads with spaces.
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicOutput out(path);
  OutputFile file(out.tempPath(), path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  file.write(length, sizeof length);
  file.write(text.data(), text.size());
  for (const auto& s : stored) {
    file.write(s.data_ptr(), static_cast<std::size_t>(s.numel()) * s.element_size());
  }
  file.close();
  out.commit();
}

}  // namespace metasemi::io
