#include "plugins/hip/memory/memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "plugins/hip/runtime/hip.h"

namespace halo::hip {

using namespace halo::ops;

HipBuffer::~HipBuffer() {
    // Errors are ignored here: a destructor cannot report them, and the memory is gone either way.
    switch (kind) {
    case Kind::device:
    case Kind::managed: (void)hipFree(device); break;
    case Kind::pinned: (void)hipHostFree(host); break;
    case Kind::registered: (void)hipHostUnregister(host); break;
    }
}

void Memory::check_placement(int32_t placement) const {
    if (placement < 0 || placement >= int32_t(device_.info.placements.size()))
        throw Error("hip: placement index " + std::to_string(placement) + " does not exist (0 = device, 1 = pinned, "
                    "2 = managed)");
}

void Memory::check_range(const Buffer* b, uint64_t offset, uint64_t bytes) {
    if (offset > b->bytes || bytes > b->bytes - offset)
        throw Error("hip: access of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                    " is outside a buffer of " + std::to_string(b->bytes) + " bytes");
}

Buffer* Memory::allocate(MemoryUse use, int32_t placement, uint64_t bytes) {
    check_placement(placement);
    const PlacementInfo& where = device_.info.placements[size_t(placement)];
    const uint64_t n = bytes ? bytes : 1;
    auto* b = new HipBuffer;
    b->bytes = bytes;
    b->use = use;
    b->placement = placement;
    hipError_t e = hipSuccess;
    switch (placement) {
    case kDevice:
        b->kind = HipBuffer::Kind::device;
        e = hipMalloc(&b->device, n);
        break;
    case kPinned:
        b->kind = HipBuffer::Kind::pinned;
        e = hipHostMalloc(&b->host, n, hipHostMallocMapped);
        if (e == hipSuccess) e = hipHostGetDevicePointer(&b->device, b->host, 0);
        break;
    default:
        b->kind = HipBuffer::Kind::managed;
        if (!warned_xnack_ && device_.arch.rfind("gfx1151", 0) == 0) {
            const char* x = std::getenv("HSA_XNACK");
            if (!(x && std::string(x) == "1"))
                std::fprintf(stderr, "warning: hip: managed memory on %s needs HSA_XNACK=1 in the environment; "
                                     "without it a kernel touching a page not yet on the GPU faults\n",
                             device_.arch.c_str());
            warned_xnack_ = true;
        }
        e = hipMallocManaged(&b->device, n, hipMemAttachGlobal);
        b->host = b->device;
        break;
    }
    if (e != hipSuccess) {
        b->device = nullptr;
        b->host = nullptr;
        b->kind = HipBuffer::Kind::device;
        delete b;
        (void)hipGetLastError();
        throw OutOfMemory("hip: cannot allocate " + std::to_string(bytes) + " bytes of " + where.name + " memory for " +
                          memory_use_name(use) + ": " + hipGetErrorName(e) + " (" + hipGetErrorString(e) + ")");
    }
    // Fresh buffers read as zero, as on the other backends (the core relies on it for new state slots).
    if (b->kind == HipBuffer::Kind::device)
        check(hipMemsetAsync(b->device, 0, n, exec_.stream()), "hipMemsetAsync");
    else
        std::memset(b->host, 0, n);
    return b;
}

Buffer* Memory::import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) {
    check_placement(placement);
    if (placement != kPinned || !data || !bytes) return nullptr;
    if (hipHostRegister(data, bytes, hipHostRegisterMapped) != hipSuccess) {
        (void)hipGetLastError();
        return nullptr;  // e.g. a file mapping the driver will not pin: the core copies instead
    }
    void* dev = nullptr;
    if (hipHostGetDevicePointer(&dev, data, 0) != hipSuccess) {
        (void)hipHostUnregister(data);
        (void)hipGetLastError();
        return nullptr;
    }
    auto* b = new HipBuffer;
    b->kind = HipBuffer::Kind::registered;
    b->host = data;
    b->device = dev;
    b->bytes = bytes;
    b->use = use;
    b->placement = placement;
    return b;
}

void Memory::release(Buffer* buffer) {
    if (!buffer) return;
    exec_.synchronize();  // kernels in flight may still read it
    delete buffer;
}

void Memory::write(Buffer* dst, uint64_t offset, const void* src, uint64_t bytes) {
    check_range(dst, offset, bytes);
    if (!bytes) return;
    check(hipMemcpyAsync(device_address(dst, offset), src, bytes, hipMemcpyHostToDevice, exec_.stream()),
          "hipMemcpyAsync (write)");
    // A pageable source may be reused once the call returns; wait so that this holds for pinned sources too.
    exec_.synchronize();
}

void Memory::read(const Buffer* src, uint64_t offset, void* dst, uint64_t bytes) {
    check_range(src, offset, bytes);
    if (!bytes) return;
    check(hipMemcpyAsync(dst, device_address(src, offset), bytes, hipMemcpyDeviceToHost, exec_.stream()),
          "hipMemcpyAsync (read)");
    exec_.synchronize();
}

void Memory::zero(Buffer* dst, uint64_t offset, uint64_t bytes) {
    check_range(dst, offset, bytes);
    if (bytes) check(hipMemsetAsync(device_address(dst, offset), 0, bytes, exec_.stream()), "hipMemsetAsync");
}

void Memory::copy(Buffer* dst, uint64_t dst_offset, const Buffer* src, uint64_t src_offset, uint64_t bytes) {
    check_range(dst, dst_offset, bytes);
    check_range(src, src_offset, bytes);
    if (bytes)
        check(hipMemcpyAsync(device_address(dst, dst_offset), device_address(src, src_offset), bytes,
                             hipMemcpyDeviceToDevice, exec_.stream()),
              "hipMemcpyAsync (copy)");
}

}  // namespace halo::hip
