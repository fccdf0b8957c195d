#include "plugins/vulkan/memory/memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>

#include "plugins/vulkan/device/check.h"

namespace halo::vk {

namespace {

constexpr VkBufferUsageFlags kUsage =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

std::string gb(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GB", double(bytes) / 1e9);
    return buf;
}

// Best memory type with all `required` flags: fewest `avoid` flags, then most `prefer` flags, then largest heap.
int32_t pick_type(const VkPhysicalDeviceMemoryProperties& m, VkMemoryPropertyFlags required, VkMemoryPropertyFlags avoid,
                  VkMemoryPropertyFlags prefer) {
    int32_t best = -1;
    int64_t best_score = 0;
    for (uint32_t i = 0; i < m.memoryTypeCount; ++i) {
        const VkMemoryPropertyFlags f = m.memoryTypes[i].propertyFlags;
        if ((f & required) != required) continue;
        const int64_t heap_gb = int64_t(m.memoryHeaps[m.memoryTypes[i].heapIndex].size >> 30);
        const int64_t score = -int64_t(__builtin_popcount(f & avoid)) * 1000000 + __builtin_popcount(f & prefer) * 10000 +
                              std::min<int64_t>(heap_gb, 9999);
        if (best < 0 || score > best_score) {
            best = int32_t(i);
            best_score = score;
        }
    }
    return best;
}

const char* kind_name(PlacementKind k) {
    switch (k) {
    case PlacementKind::device_local: return "device-local";
    case PlacementKind::host_visible: return "host-visible";
    case PlacementKind::host_import: return "host-import";
    }
    return "?";
}

// Bytes of a /proc/meminfo field ("MemTotal"), or 0.
uint64_t meminfo(const char* key) {
    std::ifstream f("/proc/meminfo");
    std::string k, unit;
    uint64_t v = 0;
    while (f >> k >> v >> unit)
        if (k == std::string(key) + ":") return v * 1024;
    return 0;
}

}  // namespace

const Piece* VulkanBuffer::piece_for(uint64_t offset, uint64_t n) const {
    const uint64_t at = offset + lead;
    for (const Piece& p : pieces)
        if (at >= p.begin && at + n <= p.begin + p.size) return &p;
    return nullptr;
}

Memory::Memory(const Device& device) : device_(device) {
    const auto& mp = device.physical().memory;
    const bool uma = device.physical().unified_memory;
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const int32_t dl = pick_type(mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, 0);
    // On an iGPU the uncached (write-combined) GTT type is the fast one for GPU reads; the CPU rarely reads it.
    const int32_t host = pick_type(mp, hv, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    readback_type_ = pick_type(mp, hv, 0, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (host < 0 || readback_type_ < 0)
        throw ops::Error("vulkan: device " + device.physical().name + " has no host-visible coherent memory type, which "
                         "the plugin needs for uploads and readback");
    auto add = [&](PlacementKind kind, int32_t type) {
        Placement p;
        p.kind = kind;
        p.type_index = uint32_t(type);
        p.heap_index = mp.memoryTypes[type].heapIndex;
        p.mapped = (mp.memoryTypes[type].propertyFlags & hv) == hv;
        placements_.push_back(p);
    };
    if (dl >= 0) add(PlacementKind::device_local, dl);
    add(PlacementKind::host_visible, host);
    if (device.caps().host_import) add(PlacementKind::host_import, host);
    (void)uma;
    placement_info();
}

int32_t Memory::find(PlacementKind kind) const {
    for (size_t i = 0; i < placements_.size(); ++i)
        if (placements_[i].kind == kind) return int32_t(i);
    return -1;
}

std::string Memory::default_placement(ops::MemoryUse use) const {
    const bool uma = device_.physical().unified_memory;
    if (use == ops::MemoryUse::weights && uma)  // weights stay in system memory: imported in place, else GTT
        return find(PlacementKind::host_import) >= 0 ? "host-import" : "host-visible";
    const int32_t dl = find(PlacementKind::device_local);
    if (dl < 0) return "host-visible";
    // On an iGPU the device-local heap is the BIOS carve-out, often 512 MB; the GTT pool is most of memory. Use
    // the carve-out by default only when it is large enough to matter.
    const uint64_t heap = device_.physical().memory.memoryHeaps[placements_[size_t(dl)].heap_index].size;
    if (uma && heap < (uint64_t(16) << 30)) return "host-visible";
    return "device-local";
}

const std::vector<ops::PlacementInfo>& Memory::placement_info() {
    const auto& mp = device_.physical().memory;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    if (device_.caps().memory_budget) {
        p2.pNext = &budget;
        vkGetPhysicalDeviceMemoryProperties2(device_.physical().handle, &p2);
    }
    info_.clear();
    for (const Placement& p : placements_) {
        ops::PlacementInfo i;
        i.name = kind_name(p.kind);
        const uint64_t heap = mp.memoryHeaps[p.heap_index].size;
        i.capacity_bytes = heap;
        if (device_.caps().memory_budget) {
            const uint64_t b = budget.heapBudget[p.heap_index], used = budget.heapUsage[p.heap_index];
            i.budget_bytes = b > used ? b - used : 1;
        }
        i.host_visible = p.mapped || p.kind == PlacementKind::host_import;
        i.imports_host = p.kind == PlacementKind::host_import;
        const std::string heap_text = "heap " + std::to_string(p.heap_index) + " (" + gb(heap) + ")";
        switch (p.kind) {
        case PlacementKind::device_local:
            i.description = "device-local memory, " + heap_text + (p.mapped ? ", also host-visible" : "");
            break;
        case PlacementKind::host_visible:
            i.description = std::string("host-visible memory") + (device_.physical().unified_memory ? " (GTT on an iGPU), " : ", ") + heap_text;
            break;
        case PlacementKind::host_import:
            i.description = "host memory imported in place (VK_EXT_external_memory_host; system memory)";
            break;
        }
        i.pool = "vulkan heap " + std::to_string(p.heap_index);
        if (p.kind == PlacementKind::host_import) {  // host pages: limited by system memory, not by a heap
            i.pool = "system memory";
            i.capacity_bytes = meminfo("MemTotal");
            i.budget_bytes = meminfo("MemAvailable");
        } else if (!device_.caps().memory_budget) {
            i.description += "; no VK_EXT_memory_budget, so no live budget";
        }
        info_.push_back(i);
    }
    return info_;
}

void Memory::check_placement(int32_t placement) const {
    if (placement < 0 || placement >= int32_t(placements_.size())) {
        std::string names;
        for (size_t i = 0; i < placements_.size(); ++i)
            names += (i ? ", " : "") + std::to_string(i) + " = " + kind_name(placements_[i].kind);
        throw ops::Error("vulkan: placement index " + std::to_string(placement) + " does not exist (" + names + ")");
    }
}

Piece Memory::make_piece(uint32_t type_index, uint64_t begin, uint64_t size, bool map, const char* what) {
    VkDevice dev = device_.handle();
    Piece p;
    p.begin = begin;
    p.size = size;
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = kUsage;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    check(vkCreateBuffer(dev, &bi, nullptr, &p.buffer), "creating a buffer (vkCreateBuffer)");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev, p.buffer, &req);
    if (!(req.memoryTypeBits & (1u << type_index))) {
        vkDestroyBuffer(dev, p.buffer, nullptr);
        throw ops::Error("vulkan: storage buffers cannot live in memory type " + std::to_string(type_index) + " on this device");
    }
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type_index;
    const VkResult r = vkAllocateMemory(dev, &ai, nullptr, &p.memory);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(dev, p.buffer, nullptr);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            throw ops::OutOfMemory("vulkan: cannot allocate " + gb(size) + " for " + what + " in memory type " +
                                   std::to_string(type_index) + " (" + result_name(r) +
                                   "); choose another placement or lower the context length");
        check(r, "allocating device memory (vkAllocateMemory)");
    }
    check(vkBindBufferMemory(dev, p.buffer, p.memory, 0), "binding buffer memory");
    if (map) {
        void* host = nullptr;
        check(vkMapMemory(dev, p.memory, 0, VK_WHOLE_SIZE, 0, &host), "mapping memory (vkMapMemory)");
        p.mapped = static_cast<char*>(host);
    }
    return p;
}

bool Memory::import_piece(void* host, uint64_t begin, uint64_t size, Piece& out) {
    VkDevice dev = device_.handle();
    const auto handle_type = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkMemoryHostPointerPropertiesEXT hp{VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    if (device_.host_pointer_properties(dev, handle_type, host, &hp) != VK_SUCCESS || !hp.memoryTypeBits) return false;
    VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
    ext.handleTypes = handle_type;
    VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.pNext = &ext;
    bi.size = size;
    bi.usage = kUsage;
    VkBuffer buffer = VK_NULL_HANDLE;
    if (vkCreateBuffer(dev, &bi, nullptr, &buffer) != VK_SUCCESS) return false;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev, buffer, &req);
    const uint32_t bits = req.memoryTypeBits & hp.memoryTypeBits;
    const uint32_t preferred = placements_[size_t(find(PlacementKind::host_visible))].type_index;
    if (!bits || req.size > size) {
        vkDestroyBuffer(dev, buffer, nullptr);
        return false;
    }
    const uint32_t type = (bits & (1u << preferred)) ? preferred : uint32_t(__builtin_ctz(bits));
    VkImportMemoryHostPointerInfoEXT imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
    imp.handleType = handle_type;
    imp.pHostPointer = host;
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.pNext = &imp;
    ai.allocationSize = size;
    ai.memoryTypeIndex = type;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    if (vkAllocateMemory(dev, &ai, nullptr, &memory) != VK_SUCCESS) {
        vkDestroyBuffer(dev, buffer, nullptr);
        return false;
    }
    if (vkBindBufferMemory(dev, buffer, memory, 0) != VK_SUCCESS) {
        vkFreeMemory(dev, memory, nullptr);
        vkDestroyBuffer(dev, buffer, nullptr);
        return false;
    }
    out.buffer = buffer;
    out.memory = memory;
    out.begin = begin;
    out.size = size;
    out.mapped = static_cast<char*>(host);
    return true;
}

VulkanBuffer* Memory::allocate(ops::MemoryUse use, int32_t placement, uint64_t bytes) {
    check_placement(placement);
    const Placement& pl = placements_[size_t(placement)];
    auto b = std::make_unique<VulkanBuffer>();
    b->use = use;
    b->placement = placement;
    b->bytes = bytes;
    b->kind = pl.kind;
    const uint64_t total = align_up(std::max<uint64_t>(bytes, 1), 256);
    if (pl.kind == PlacementKind::host_import) {
        const uint64_t rounded = align_up(total, std::max<uint64_t>(device_.caps().import_alignment, 4096));
        void* p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw ops::OutOfMemory("vulkan: cannot map " + gb(rounded) + " of host memory for " + ops::memory_use_name(use));
        b->own_host = p;
        b->own_host_bytes = rounded;
        VulkanBuffer* imported = import_host(use, placement, p, rounded);
        if (!imported) {
            ::munmap(p, rounded);
            b->own_host = nullptr;
            throw ops::OutOfMemory("vulkan: the driver refused to import " + gb(rounded) + " of host memory for " +
                                   ops::memory_use_name(use) + "; choose the host-visible placement instead");
        }
        b->pieces = std::move(imported->pieces);
        b->host = p;
        imported->pieces.clear();
        delete imported;
        return b.release();
    }
    uint64_t piece = device_.caps().max_piece;
    if (use == ops::MemoryUse::cache && total > std::min(piece, device_.caps().max_range)) {
        b->pow2_shift = 63 - uint32_t(__builtin_clzll(std::min(piece, device_.caps().max_range)));
        piece = uint64_t(1) << b->pow2_shift;
    }
    const uint64_t overlap = use == ops::MemoryUse::weights && total > piece
                                 ? std::min<uint64_t>(piece / 4, uint64_t(128) << 20) / 4096 * 4096
                                 : 0;
    b->duplicated = overlap > 0;
    try {
        for (uint64_t begin = 0;; begin += piece - overlap) {
            const uint64_t size = std::min(piece, total - begin);
            b->pieces.push_back(make_piece(pl.type_index, begin, size, pl.mapped, ops::memory_use_name(use)));
            if (begin + size >= total) break;
        }
    } catch (...) {
        release(b.release());
        throw;
    }
    if (b->pieces.size() == 1) b->host = b->pieces[0].mapped;
    return b.release();
}

VulkanBuffer* Memory::import_host(ops::MemoryUse use, int32_t placement, void* data, uint64_t bytes) {
    check_placement(placement);
    if (placements_[size_t(placement)].kind != PlacementKind::host_import || !data) return nullptr;
    const uint64_t align = std::max<uint64_t>(device_.caps().import_alignment, 1);
    const uint64_t addr = reinterpret_cast<uint64_t>(data);
    const uint64_t base = addr / align * align;
    auto b = std::make_unique<VulkanBuffer>();
    b->use = use;
    b->placement = placement;
    b->bytes = bytes;
    b->kind = PlacementKind::host_import;
    b->lead = addr - base;
    b->host = data;
    const uint64_t len = align_up(b->lead + std::max<uint64_t>(bytes, 1), align);
    const uint64_t window = std::max<uint64_t>(device_.caps().max_piece / align * align, align);
    const uint64_t step = std::max<uint64_t>(window / 2 / align * align, align);
    char* host = reinterpret_cast<char*>(base);
    for (uint64_t begin = 0;; begin += step) {
        const uint64_t size = std::min(window, len - begin);
        Piece p;
        if (!import_piece(host + begin, begin, size, p)) {
            release(b.release());
            return nullptr;
        }
        b->pieces.push_back(p);
        if (begin + size >= len) break;
    }
    return b.release();
}

void Memory::release(VulkanBuffer* b) {
    if (!b) return;
    if (b->internal) count_internal(b, false);
    VkDevice dev = device_.handle();
    for (Piece& p : b->pieces) {
        if (p.buffer) vkDestroyBuffer(dev, p.buffer, nullptr);
        if (p.memory) vkFreeMemory(dev, p.memory, nullptr);  // unmaps too
    }
    if (b->own_host) ::munmap(b->own_host, b->own_host_bytes);
    delete b;
}

VulkanBuffer* Memory::allocate_staging(uint64_t bytes, bool readback) {
    const uint32_t type = readback ? uint32_t(readback_type_) : placements_[size_t(find(PlacementKind::host_visible))].type_index;
    auto b = std::make_unique<VulkanBuffer>();
    b->bytes = bytes;
    b->kind = PlacementKind::host_visible;
    b->placement = staging_placement();
    b->pieces.push_back(make_piece(type, 0, align_up(std::max<uint64_t>(bytes, 1), 256), true, readback ? "readback" : "uploads"));
    b->host = b->pieces[0].mapped;
    mark_internal(b.get(), readback ? kReadbackStaging : kUploadStaging);
    return b.release();
}

void Memory::mark_internal(VulkanBuffer* b, const char* what) {
    if (!b || b->internal) return;
    b->internal = what;
    count_internal(b, true);
}

void Memory::count_internal(const VulkanBuffer* b, bool add) {
    std::lock_guard<std::mutex> lock(internal_mutex_);
    uint64_t& n = internal_[{b->internal, b->placement}];
    n = add ? n + b->bytes : n - b->bytes;
}

uint64_t Memory::internal_bytes() const {
    uint64_t total = 0;
    for (const ops::InternalUse& u : internal_use()) total += u.bytes;
    return total;
}

std::vector<ops::InternalUse> Memory::internal_use() const {
    std::lock_guard<std::mutex> lock(internal_mutex_);
    std::vector<ops::InternalUse> out;
    for (const auto& [key, bytes] : internal_) out.push_back({key.first, key.second, bytes});
    return out;
}

}  // namespace halo::vk
