#include "plugins/skeleton/memory/memory.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace halo::skeleton {

using namespace halo::ops;

HostMemory::~HostMemory() {
    if (owned) std::free(host);
}

void Memory::check_placement(int32_t placement) const {
    if (placement < 0 || placement >= int32_t(info_.placements.size()))
        throw Error("skeleton: placement index " + std::to_string(placement) + " does not exist (0 = " +
                    info_.placements[0].name + ")");
}

void Memory::check_range(const Buffer* b, uint64_t offset, uint64_t bytes) {
    if (offset > b->bytes || bytes > b->bytes - offset)
        throw Error("skeleton: access of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                    " is outside a buffer of " + std::to_string(b->bytes) + " bytes");
}

Buffer* Memory::allocate(MemoryUse use, int32_t placement, uint64_t bytes) {
    check_placement(placement);
    const PlacementInfo& where = info_.placements[size_t(placement)];
    const auto refuse = [&](const std::string& why) {
        throw OutOfMemory("skeleton: cannot allocate " + std::to_string(bytes) + " bytes of " + where.name +
                          " memory for " + memory_use_name(use) + ": " + why);
    };
    if (where.capacity_bytes && bytes > where.capacity_bytes)
        refuse("the placement has " + std::to_string(where.capacity_bytes) + " bytes in all");
    const uint64_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded ? rounded : 64);
    if (!p) refuse("the system refused");
    std::memset(p, 0, rounded ? rounded : 64);
    auto* b = new HostMemory;
    b->host = p;
    b->bytes = bytes;
    b->use = use;
    b->placement = placement;
    return b;
}

Buffer* Memory::import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) {
    check_placement(placement);
    if (!info_.placements[size_t(placement)].imports_host) return nullptr;
    auto* b = new HostMemory;
    b->owned = false;
    b->host = data;
    b->bytes = bytes;
    b->use = use;
    b->placement = placement;
    return b;
}

void Memory::release(Buffer* buffer) { delete buffer; }

void Memory::write(Buffer* dst, uint64_t offset, const void* src, uint64_t bytes) {
    check_range(dst, offset, bytes);
    std::memcpy(static_cast<char*>(dst->host) + offset, src, bytes);
}

void Memory::read(const Buffer* src, uint64_t offset, void* dst, uint64_t bytes) {
    check_range(src, offset, bytes);
    std::memcpy(dst, static_cast<const char*>(src->host) + offset, bytes);
}

void Memory::zero(Buffer* dst, uint64_t offset, uint64_t bytes) {
    check_range(dst, offset, bytes);
    std::memset(static_cast<char*>(dst->host) + offset, 0, bytes);
}

void Memory::copy(Buffer* dst, uint64_t dst_offset, const Buffer* src, uint64_t src_offset, uint64_t bytes) {
    check_range(dst, dst_offset, bytes);
    check_range(src, src_offset, bytes);
    std::memmove(static_cast<char*>(dst->host) + dst_offset, static_cast<const char*>(src->host) + src_offset, bytes);
}

}  // namespace halo::skeleton
