// Vulkan memory: the placements a profile can choose per use, and buffers made of one or more pieces.
//
// Placements (DeviceInfo::placements, in this order; a missing one is left out):
//   device-local   memory the GPU reads fastest (VRAM; on an iGPU the BIOS carve-out); mapped only where the
//                  memory type happens to be host-visible (lavapipe, resizable BAR)
//   host-visible   host-visible, coherent memory, not device-local where the driver distinguishes (on an integrated
//                  GPU this is the GTT pool, up to most of system memory); always mapped
//   host-import    host memory imported with VK_EXT_external_memory_host: import_host() wraps mmap'd weight files
//                  without a copy, allocate() imports fresh anonymous pages
// Pieces: a buffer larger than the device's largest allocation (DeviceCaps::max_piece) is made of several
// VkBuffers, so that any tensor the core packs into it still lies inside one piece where possible:
//   weights    pieces overlap by kWeightOverlap bytes (min(max_piece / 4, 128 MiB)); the overlapping bytes exist
//              twice and host writes go to every copy (shaders only read weights), so any tensor up to the overlap
//              lies whole in some piece, wherever the core put it
//   imports    overlapping windows of max_piece bytes at max_piece/2 steps over the same host pages (no copies)
//   cache      power-of-two pieces no larger than one binding (the MLA shaders address a cache across up to 8 of
//              them element by element, so cache pages may cross piece boundaries)
//   others     pieces tile the buffer (shaders write state and scratch, so nothing may exist twice)
// A tensor must lie inside one piece to be bound to a shader (View resolution throws a sentence otherwise).
#pragma once

#include <map>
#include <mutex>
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

#include "ops/backend.h"
#include "plugins/vulkan/device/device.h"

namespace halo::vk {

enum class PlacementKind : uint32_t { device_local, host_visible, host_import };

struct Piece {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    uint64_t begin = 0;       // first byte covered, in the buffer's internal coordinates (offset + lead)
    uint64_t size = 0;        // bytes covered (the VkBuffer's size)
    char* mapped = nullptr;   // host address of byte `begin`, or null
};

struct VulkanBuffer : ops::Buffer {
    PlacementKind kind = PlacementKind::device_local;
    std::vector<Piece> pieces;  // ordered by begin
    uint64_t lead = 0;          // internal coordinate of byte 0 (imports that start inside an aligned page)
    void* own_host = nullptr;   // anonymous mapping made for a host-import allocation (unmapped on release)
    uint64_t own_host_bytes = 0;
    bool duplicated = false;    // split weights: pieces overlap in separate memory; every copy must be written
    uint32_t pow2_shift = 0;    // split cache: every piece but the last is 1 << pow2_shift bytes (0: not so split)
    const char* internal = nullptr;  // staging or op temporaries: what Memory::internal_use() counts it as

    // The piece holding bytes [offset, offset + bytes) whole, or null when they cross a piece boundary.
    const Piece* piece_for(uint64_t offset, uint64_t bytes) const;
};

struct Placement {
    PlacementKind kind;
    uint32_t type_index = 0;   // memory type of allocations (host-import: preferred type, the driver decides)
    uint32_t heap_index = 0;
    bool mapped = false;       // allocations are mapped (Buffer::host set when the buffer has one piece)
};

class Memory {
public:
    explicit Memory(const Device& device);

    // The placements, with capacity and current budget (VK_EXT_memory_budget when present) refreshed.
    const std::vector<ops::PlacementInfo>& placement_info();
    const std::vector<Placement>& placements() const { return placements_; }
    int32_t find(PlacementKind kind) const;  // index of the placement, or -1
    // Default placement per MemoryUse. Discrete GPU: device-local. Integrated GPU (the GTT strategy): weights
    // host-import (host-visible without the extension), the rest device-local only when the carve-out heap is at
    // least 16 GB, else host-visible.
    std::string default_placement(ops::MemoryUse use) const;

    VulkanBuffer* allocate(ops::MemoryUse use, int32_t placement, uint64_t bytes);
    // Null when the placement cannot import or the driver refuses these pages.
    VulkanBuffer* import_host(ops::MemoryUse use, int32_t placement, void* data, uint64_t bytes);
    // Frees at once: the caller makes sure the GPU no longer uses the buffer.
    void release(VulkanBuffer* b);

    // An internal host-visible buffer (uploads, readback) of one piece, mapped, counted as the plugin's own in the
    // host-visible placement (staging_placement()).
    VulkanBuffer* allocate_staging(uint64_t bytes, bool readback);
    int32_t staging_placement() const { return find(PlacementKind::host_visible); }
    static constexpr const char* kUploadStaging = "upload staging";
    static constexpr const char* kReadbackStaging = "readback staging";
    // Counts a buffer as the plugin's own under `what` (op temporaries): internal_use() includes it until it is
    // released. `what` must outlive the buffer (a string literal).
    void mark_internal(VulkanBuffer* b, const char* what);
    // Bytes of staging and internal buffers held now, in total and per (what, placement).
    uint64_t internal_bytes() const;
    std::vector<ops::InternalUse> internal_use() const;

private:
    void count_internal(const VulkanBuffer* b, bool add);
    mutable std::mutex internal_mutex_;
    std::map<std::pair<std::string, int32_t>, uint64_t> internal_;
    Piece make_piece(uint32_t type_index, uint64_t begin, uint64_t size, bool map, const char* what);
    bool import_piece(void* host, uint64_t begin, uint64_t size, Piece& out);
    void check_placement(int32_t placement) const;

    const Device& device_;
    std::vector<Placement> placements_;
    std::vector<ops::PlacementInfo> info_;
    int32_t readback_type_ = -1;  // host-visible, coherent, preferably cached
};

}  // namespace halo::vk
