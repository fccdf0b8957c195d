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

struct Tensor {
    Buffer* buffer = nullptr;  // owned by a plugin; null for an absent (optional) tensor
    uint64_t offset = 0;       // byte offset of element 0 in buffer
    DType dtype = DType::f32;
    int32_t ndim = 0;
    int64_t shape[kMaxDims] = {0, 0, 0, 0};  // outermost first

    bool present() const { return buffer != nullptr; }

    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim; ++i) n *= shape[i];
        return n;
    }
    uint64_t bytes() const { return uint64_t(numel()) * dtype_size(dtype); }
    int64_t rows() const { return ndim == 0 ? 1 : numel() / shape[ndim - 1]; }  // all but the last dimension
    int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }

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
        t.offset += uint64_t(first) * uint64_t(cols()) * dtype_size(dtype);
        int64_t dims[2] = {count, cols()};
        return t.reshaped(2, dims);
    }
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

// "[64, 2304] BF16", for error messages.
inline std::string shape_string(const Tensor& t) {
    std::string s = "[";
    for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "] " + dtype_name(t.dtype);
}

}  // namespace halo::ops
