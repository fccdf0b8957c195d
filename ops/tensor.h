// Non-owning tensor views over plugin-owned buffers.
// A Buffer is allocated and freed by the plugin that owns it (Backend::allocate / release); a Tensor only names a
// region of one buffer. Tensors are dense and row-major: the last dimension is contiguous.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "ops/dtype.h"

namespace halo::ops {

// What a buffer is for. The profile chooses a placement per use; plugins may treat uses differently
// (a GPU plugin may map weights read-only, or keep scratch in device-local memory).
enum class MemoryUse : uint32_t {
    weights = 0,
    state = 1,    // KDA recurrent states and conv histories, one slot per sequence
    cache = 2,    // MLA latent cache pages
    scratch = 3,  // activations of one forward step
};
constexpr int kMemoryUseCount = 4;

inline const char* memory_use_name(MemoryUse u) {
    switch (u) {
    case MemoryUse::weights: return "weights";
    case MemoryUse::state: return "state";
    case MemoryUse::cache: return "cache";
    case MemoryUse::scratch: return "scratch";
    }
    return "?";
}

// Base of every plugin buffer. Plugins derive from it and keep their own handles beside these fields.
struct Buffer {
    void* host = nullptr;   // CPU-addressable start of the buffer, or null when the CPU cannot address it
    uint64_t bytes = 0;     // size in bytes
    MemoryUse use = MemoryUse::scratch;
    int32_t placement = 0;  // index into the owning plugin's DeviceInfo::placements
    virtual ~Buffer() = default;
};

constexpr int kMaxDims = 4;

// The per-group scales of a quantized weight (dtype q4 / q8): a matrix [rows, ceil(cols / group)] of `dtype`
// (BF16, F16 or F32), row-major and dense, in a buffer of the same plugin. Element (r, c) of the weight is
// q(r, c) * scale(r, c / group) (symmetric: no zero point).
struct QuantScale {
    Buffer* buffer = nullptr;
    uint64_t offset = 0;
    DType dtype = DType::bf16;
    int32_t group = 0;  // elements per scale along the last dimension

    int64_t cols(int64_t weight_cols) const { return group > 0 ? (weight_cols + group - 1) / group : 0; }
};

struct Tensor {
    Buffer* buffer = nullptr;  // owned by a plugin; null for an absent (optional) tensor
    uint64_t offset = 0;       // byte offset of element 0 in buffer
    DType dtype = DType::f32;
    int32_t ndim = 0;
    int64_t shape[kMaxDims] = {0, 0, 0, 0};  // outermost first
    QuantScale scale;                         // quantized dtypes only

    bool present() const { return buffer != nullptr; }

    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim; ++i) n *= shape[i];
        return n;
    }
    int64_t rows() const { return ndim == 0 || shape[ndim - 1] == 0 ? 1 : numel() / shape[ndim - 1]; }  // all but the last dimension
    int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
    // Storage bytes of the elements (for a quantized tensor, the packed words without the scales).
    uint64_t bytes() const { return uint64_t(rows()) * row_bytes(dtype, cols()); }
    uint64_t row_stride() const { return row_bytes(dtype, cols()); }
    bool quantized() const { return is_quantized(dtype); }
    // Bytes of the scales of a quantized tensor (0 otherwise).
    uint64_t scale_bytes() const {
        return quantized() ? uint64_t(rows()) * uint64_t(scale.cols(cols())) * dtype_size(scale.dtype) : 0;
    }
    void* scale_host() const {
        return scale.buffer && scale.buffer->host ? static_cast<char*>(scale.buffer->host) + scale.offset : nullptr;
    }

    // Host address of element 0; valid only for buffers the CPU can address.
    void* host() const { return buffer && buffer->host ? static_cast<char*>(buffer->host) + offset : nullptr; }
    template <class T>
    T* host_as() const { return static_cast<T*>(host()); }

    // The same storage seen with another shape (same element count is the caller's contract).
    Tensor reshaped(int32_t n, const int64_t* dims) const {
        Tensor t = *this;
        t.ndim = n;
        for (int i = 0; i < kMaxDims; ++i) t.shape[i] = i < n ? dims[i] : 0;
        return t;
    }
    // Rows [first, first + count) of a tensor seen as a matrix [rows(), cols()].
    Tensor row_slice(int64_t first, int64_t count) const {
        Tensor t = *this;
        t.offset += uint64_t(first) * row_stride();
        if (quantized()) t.scale.offset += uint64_t(first) * uint64_t(scale.cols(cols())) * dtype_size(scale.dtype);
        int64_t dims[2] = {count, cols()};
        return t.reshaped(2, dims);
    }
};

// The part a tensor plays in an op, as an op's params struct names it in for_each_tensor (check mode reads it).
enum class TensorRole : uint32_t {
    input,   // read: activations, ids
    weight,  // read, and unchanged from one call to the next while its buffer is not written
    output,  // written over entirely
    inout,   // read and updated in place (a recurrent state)
};

inline Tensor make_tensor(Buffer* buffer, uint64_t offset, DType dtype, std::initializer_list<int64_t> dims) {
    Tensor t;
    t.buffer = buffer;
    t.offset = offset;
    t.dtype = dtype;
    t.ndim = 0;
    for (int64_t d : dims) t.shape[t.ndim++] = d;
    return t;
}

// "[64, 2304] BF16" or "[64, 2304] Q4 g32", for error messages.
inline std::string shape_string(const Tensor& t) {
    std::string s = "[";
    for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    s += std::string("] ") + dtype_name(t.dtype);
    if (t.quantized()) s += " g" + std::to_string(t.scale.group);
    return s;
}

// Element (r, c) of a host-addressable weight matrix [rows, cols] of any dtype as f32 (exact for every format:
// q * scale is exact in f32). For reference code and tests, not hot loops.
inline float weight_at(const Tensor& t, int64_t r, int64_t c) {
    const char* row = static_cast<const char*>(t.host()) + uint64_t(r) * t.row_stride();
    if (!t.quantized()) return load_as_f32(row, t.dtype, size_t(c));
    const char* srow = static_cast<const char*>(t.scale_host()) +
                       uint64_t(r) * uint64_t(t.scale.cols(t.cols())) * dtype_size(t.scale.dtype);
    return float(quant_value(row, t.dtype, c)) * load_as_f32(srow, t.scale.dtype, size_t(c / t.scale.group));
}

// Row r of a host-addressable weight matrix as f32, all formats (exact).
inline void dequantize_row(const Tensor& t, int64_t r, float* out) {
    for (int64_t c = 0; c < t.cols(); ++c) out[c] = weight_at(t, r, c);
}

}  // namespace halo::ops
