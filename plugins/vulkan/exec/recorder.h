// Recording and submission. Work is recorded into the command buffer of the open frame; a frame is submitted by
// flush() (end_step, read, synchronize) and its resources are recycled when its fence signals. Up to kMaxFrames
// frames are in flight. Barriers: every recorded access (dispatch binding, copy, fill) is checked against the
// accesses since the last barrier; a read-after-write, write-after-write or write-after-read overlap on the same
// VkBuffer inserts one global memory barrier, so independent dispatches (q, k, v projections) may overlap.
// Each frame starts with a barrier (ordering it after earlier submissions) and ends with one that makes its
// writes visible to the host.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <vulkan/vulkan.h>

#include "plugins/vulkan/exec/pipelines.h"
#include "plugins/vulkan/exec/view.h"
#include "plugins/vulkan/memory/memory.h"

namespace halo::vk {

// Per-frame bump allocator over host-visible, coherent buffers: small uploads (token ids, batch descriptors,
// expert tables) written by the host at record time and read by shaders or copies of that frame.
class Arena {
public:
    // Blocks are at least this large; a step's uploads beyond one block take more blocks until the frame completes.
    static constexpr uint64_t kBlockBytes = uint64_t(4) << 20;
    // Bytes of blocks a frame holds while its uploads total `uploads` (each rounded by cost()).
    static uint64_t held_for(uint64_t uploads) {
        return std::max<uint64_t>(1, (uploads + kBlockBytes - 1) / kBlockBytes) * kBlockBytes;
    }
    // Bytes one upload of `bytes` takes in a block whose uploads start at multiples of `align`.
    static uint64_t cost(uint64_t bytes, uint64_t align) {
        const uint64_t need = (std::max<uint64_t>(bytes, 16) + 15) / 16 * 16;
        return (need + align - 1) / align * align;
    }

    Arena(Memory& memory, uint64_t align) : memory_(memory), align_(align) {}
    ~Arena();
    struct Slice {
        View view;
        char* host = nullptr;
    };
    Slice alloc(uint64_t bytes);
    void reset();

private:
    struct Block {
        VulkanBuffer* buffer;
        uint64_t used;
    };
    Memory& memory_;
    uint64_t align_;
    std::vector<Block> blocks_;
};

class Recorder {
public:
    static constexpr size_t kMaxFrames = 4;

    Recorder(const Device& device, Memory& memory);
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    bool open() const { return open_ != nullptr; }
    // The open frame's command buffer, opening a frame when none is open.
    VkCommandBuffer cmd();
    // Arena space of the open frame (opening one), filled with data when data is not null.
    Arena::Slice upload(const void* data, uint64_t bytes);

    void dispatch(const Pipeline& p, const std::vector<Binding>& bindings, const void* push, uint32_t gx,
                  uint32_t gy = 1, uint32_t gz = 1);
    void copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes);
    // Zeroes bytes (offset and size multiples of 4).
    void fill(VkBuffer dst, uint64_t offset, uint64_t bytes);
    // Runs fn once the work recorded so far has completed (at once when nothing is pending).
    void defer(std::function<void()> fn);

    void flush();  // submits the open frame without waiting
    void wait();   // flush() and wait for every submitted frame

    uint64_t dispatches() const { return dispatches_; }
    uint64_t submits() const { return submits_; }
    uint64_t barriers() const { return barriers_; }

private:
    struct Frame;
    Frame& begin_frame();
    void complete(Frame& f);
    void access(VkBuffer buffer, uint64_t offset, uint64_t bytes, bool write);
    void barrier();
    void order();  // a barrier when incoming_ conflicts with pending_, then incoming_ joins pending_

    const Device& device_;
    Memory& memory_;
    std::vector<std::unique_ptr<Frame>> frames_;
    Frame* open_ = nullptr;
    uint64_t serial_ = 0;
    bool barrier_all_ = false;  // HALO_VULKAN_BARRIER_ALL=1: a barrier before every command (debugging)
    bool no_barriers_ = false;  // HALO_VULKAN_NO_BARRIERS=1: none between commands (shows validation catching it)

    struct Access {
        VkBuffer buffer;
        uint64_t lo, hi;
        bool write;
    };
    std::vector<Access> pending_;        // accesses since the last barrier
    std::vector<Access> incoming_;       // accesses of the command being recorded
    uint64_t dispatches_ = 0, submits_ = 0, barriers_ = 0;
};

}  // namespace halo::vk
