// A Buffer in ordinary host memory (64-byte aligned), for the reference backend, tests and the CPU plugin.
#pragma once

#include <cstdlib>
#include <cstring>
#include <new>

#include "ops/tensor.h"

namespace halo::ops {

struct HostBuffer : Buffer {
    bool owned = true;  // false for imported memory

    // Weights are written right after allocation, so only the other uses start zeroed.
    HostBuffer(MemoryUse use_, int32_t placement_, uint64_t bytes_) {
        use = use_;
        placement = placement_;
        bytes = bytes_;
        const size_t rounded = (size_t(bytes_) + 63) / 64 * 64;
        host = std::aligned_alloc(64, rounded ? rounded : 64);
        if (!host) throw std::bad_alloc();
        if (use_ != MemoryUse::weights) std::memset(host, 0, rounded ? rounded : 64);
    }
    HostBuffer(MemoryUse use_, int32_t placement_, void* data, uint64_t bytes_) : owned(false) {
        use = use_;
        placement = placement_;
        bytes = bytes_;
        host = data;
    }
    ~HostBuffer() override {
        if (owned) std::free(host);
    }
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
};

}  // namespace halo::ops
