#include "tests/ops/harness.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "ops/reference/quantize.h"

namespace halo::test {

using namespace halo::ops;

namespace {
constexpr uint64_t kGuard = 256;         // guard bytes before and after every plugin tensor
constexpr uint8_t kGuardByte = 0xA5;
}  // namespace

std::vector<float> Values::normal(int64_t n, float scale, float mean) {
    std::normal_distribution<float> d(mean, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng_);
    return v;
}

std::vector<float> Values::uniform(int64_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng_);
    return v;
}

std::vector<int32_t> Values::ints(int64_t n, int32_t lo, int32_t hi) {
    std::uniform_int_distribution<int32_t> d(lo, hi - 1);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) x = d(rng_);
    return v;
}

std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
    std::vector<uint8_t> out(v.size() * dtype_size(dtype));
    for (size_t i = 0; i < v.size(); ++i) store_from_f32(out.data(), dtype, i, v[i]);
    return out;
}

OpHarness::OpHarness(Backend& plugin) : plugin_(plugin) {}

OpHarness::~OpHarness() {
    for (Buffer* b : dev_) plugin_.release(b);
}

std::pair<Buffer*, Buffer*> OpHarness::place(const std::vector<uint8_t>& bytes, MemoryUse use, uint64_t shift) {
    const DeviceInfo& d = plugin_.device();
    int32_t placement = 0;
    for (size_t i = 0; i < d.placements.size(); ++i)
        if (d.placements[i].name == d.default_placement[int(use)]) placement = int32_t(i);
    host_.push_back(std::make_unique<HostBuffer>(use, 0, bytes.size()));
    std::memcpy(host_.back()->host, bytes.data(), bytes.size());
    Buffer* dev = plugin_.allocate(use, placement, bytes.size() + 2 * kGuard + shift);
    dev_.push_back(dev);
    std::vector<uint8_t> image(bytes.size() + 2 * kGuard + shift, kGuardByte);
    std::memcpy(image.data() + kGuard + shift, bytes.data(), bytes.size());
    plugin_.write(dev, 0, image.data(), image.size());
    return {host_.back().get(), dev};
}

DualTensor& OpHarness::make(const std::string& name, DType dtype, std::initializer_list<int64_t> dims,
                            const std::vector<uint8_t>& bytes, MemoryUse use, bool output) {
    const uint64_t shift = use == MemoryUse::weights ? weight_shift_ : 0;
    const auto [host, dev] = place(bytes, use, shift);
    DualTensor t;
    t.name = name;
    t.output = output;
    t.ref = make_tensor(host, 0, dtype, dims);
    t.dev = make_tensor(dev, kGuard + shift, dtype, dims);
    tensors_.push_back(t);
    return tensors_.back();
}

DualTensor& OpHarness::quantized(const std::string& name, DType format, int32_t group,
                                 std::initializer_list<int64_t> dims, const std::vector<float>& values,
                                 DType scale_dtype) {
    const Tensor shape = make_tensor(nullptr, 0, format, dims);
    const int64_t rows = shape.rows(), cols = shape.cols();
    if (int64_t(values.size()) != rows * cols)
        throw std::invalid_argument("quantized weight '" + name + "': " + std::to_string(values.size()) +
                                    " values for " + std::to_string(rows) + " x " + std::to_string(cols));
    std::vector<uint8_t> packed(size_t(rows) * row_bytes(format, cols));
    const int64_t scale_cols = (cols + group - 1) / group;
    std::vector<uint8_t> scales(size_t(rows * scale_cols) * dtype_size(scale_dtype));
    ref::quantize_rows(values.data(), DType::f32, rows, cols, format, group, scale_dtype, packed.data(),
                       scales.data());
    DualTensor& t = make(name, format, dims, packed, MemoryUse::weights, false);
    const auto [host, dev] = place(scales, MemoryUse::weights);
    t.ref.scale = QuantScale{host, 0, scale_dtype, group};
    t.dev.scale = QuantScale{dev, kGuard, scale_dtype, group};
    return t;
}

DualTensor& OpHarness::input(const std::string& name, DType dtype, std::initializer_list<int64_t> dims,
                             const std::vector<float>& values, MemoryUse use) {
    return make(name, dtype, dims, encode(values, dtype), use, false);
}

DualTensor& OpHarness::input_ids(const std::string& name, const std::vector<int32_t>& ids) {
    std::vector<uint8_t> b(ids.size() * 4);
    std::memcpy(b.data(), ids.data(), b.size());
    return make(name, DType::i32, {int64_t(ids.size())}, b, MemoryUse::scratch, false);
}

DualTensor& OpHarness::output(const std::string& name, std::initializer_list<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> garbage(static_cast<size_t>(n), 1234.5f);  // a plugin that skips a row leaves this behind
    return make(name, DType::f32, dims, encode(garbage, DType::f32), MemoryUse::scratch, true);
}

DualTensor& OpHarness::inout(const std::string& name, DType dtype, std::initializer_list<int64_t> dims,
                             const std::vector<float>& values, MemoryUse use) {
    return make(name, dtype, dims, encode(values, dtype), use, true);
}

Comparison OpHarness::compare(const DualTensor& t) {
    Comparison c;
    const uint64_t bytes = t.ref.bytes();
    std::vector<uint8_t> image(bytes + 2 * kGuard);
    plugin_.read(t.dev.buffer, 0, image.data(), image.size());
    for (uint64_t i = 0; i < kGuard; ++i)
        if (image[i] != kGuardByte || image[kGuard + bytes + i] != kGuardByte) {
            c.problem = "the plugin wrote outside tensor '" + t.name + "' (guard bytes changed)";
            return c;
        }
    const int64_t n = t.ref.numel();
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double want = load_as_f32(t.ref.host(), t.ref.dtype, size_t(i));
        const double got = load_as_f32(image.data() + kGuard, t.ref.dtype, size_t(i));
        if (std::isnan(want) != std::isnan(got) || (std::isinf(want) && want != got) || (std::isinf(got) && want != got)) {
            c.problem = "tensor '" + t.name + "' element " + std::to_string(i) + ": plugin " + std::to_string(got) +
                        ", reference " + std::to_string(want) + " (NaN/Inf must match exactly)";
            return c;
        }
        if (!std::isfinite(want)) continue;
        ss += want * want;
        c.max_abs = std::max(c.max_abs, std::fabs(got - want));
    }
    c.ref_rms = n ? std::sqrt(ss / double(n)) : 0.0;
    c.normalised = c.max_abs / std::max(c.ref_rms, 1e-30);
    return c;
}

}  // namespace halo::test
