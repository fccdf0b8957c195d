#include "plugins/vulkan/exec/recorder.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "plugins/vulkan/device/check.h"

namespace halo::vk {

namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

constexpr VkPipelineStageFlags kWorkStages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
constexpr VkAccessFlags kWrites = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
constexpr VkAccessFlags kAll = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                               VK_ACCESS_TRANSFER_WRITE_BIT;

}  // namespace

// ---- Arena ---------------------------------------------------------------------------------------------------

Arena::~Arena() {
    for (Block& b : blocks_) memory_.release(b.buffer);
}

Arena::Slice Arena::alloc(uint64_t bytes) {
    const uint64_t need = align_up(std::max<uint64_t>(bytes, 16), 16);
    for (Block& b : blocks_) {
        const uint64_t at = align_up(b.used, align_);
        if (at + need <= b.buffer->bytes) {
            b.used = at + need;
            return {{b.buffer->pieces[0].buffer, at, need, 0}, static_cast<char*>(b.buffer->host) + at};
        }
    }
    const uint64_t size = std::max<uint64_t>(need, kBlockBytes);
    blocks_.push_back({memory_.allocate_staging(size, false), need});
    Block& b = blocks_.back();
    return {{b.buffer->pieces[0].buffer, 0, need, 0}, static_cast<char*>(b.buffer->host)};
}

void Arena::reset() {
    // Keep one block of at most 16 MiB (the steady state of a step's uploads); larger ones served a one-off upload
    // (weights loaded outside a step) and would otherwise pin memory in every frame.
    std::sort(blocks_.begin(), blocks_.end(), [](const Block& a, const Block& b) { return a.buffer->bytes > b.buffer->bytes; });
    size_t keep = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); ++i)
        if (blocks_[i].buffer->bytes <= (uint64_t(16) << 20)) {
            keep = i;
            break;
        }
    for (size_t i = 0; i < blocks_.size(); ++i)
        if (i != keep) memory_.release(blocks_[i].buffer);
    if (keep < blocks_.size()) {
        blocks_ = {blocks_[keep]};
        blocks_[0].used = 0;
    } else {
        blocks_.clear();
    }
}

// ---- Frames ----------------------------------------------------------------------------------------------------

struct Recorder::Frame {
    VkCommandPool pool = VK_NULL_HANDLE;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    bool in_flight = false;
    uint64_t serial = 0;
    std::unique_ptr<Arena> arena;
    std::vector<VkDescriptorPool> descriptor_pools;  // without push descriptors
    size_t descriptor_pool = 0;                      // the pool sets come from now
    std::vector<std::function<void()>> on_complete;
};

Recorder::Recorder(const Device& device, Memory& memory) : device_(device), memory_(memory) {
    const char* v = std::getenv("HALO_VULKAN_BARRIER_ALL");
    barrier_all_ = v && *v && std::strcmp(v, "0") != 0;
    const char* n = std::getenv("HALO_VULKAN_NO_BARRIERS");
    no_barriers_ = n && *n && std::strcmp(n, "0") != 0;
}

Recorder::~Recorder() {
    try {
        wait();
    } catch (...) {
    }
    VkDevice dev = device_.handle();
    for (auto& f : frames_) {
        for (auto& fn : f->on_complete) fn();
        for (VkDescriptorPool p : f->descriptor_pools) vkDestroyDescriptorPool(dev, p, nullptr);
        vkDestroyFence(dev, f->fence, nullptr);
        vkDestroyCommandPool(dev, f->pool, nullptr);
    }
}

Recorder::Frame& Recorder::begin_frame() {
    VkDevice dev = device_.handle();
    Frame* f = nullptr;
    for (auto& fr : frames_)
        if (!fr->in_flight) {
            f = fr.get();
            break;
        }
    if (!f && frames_.size() < kMaxFrames) {
        auto nf = std::make_unique<Frame>();
        VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
        pi.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
        pi.queueFamilyIndex = device_.family();
        check(vkCreateCommandPool(dev, &pi, nullptr, &nf->pool), "creating a command pool");
        VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
        ai.commandPool = nf->pool;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = 1;
        check(vkAllocateCommandBuffers(dev, &ai, &nf->cmd), "allocating a command buffer");
        VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        check(vkCreateFence(dev, &fi, nullptr, &nf->fence), "creating a fence");
        nf->arena = std::make_unique<Arena>(memory_, device_.caps().storage_align);
        frames_.push_back(std::move(nf));
        f = frames_.back().get();
    }
    if (!f) {  // every frame is in flight: wait for the oldest
        for (auto& fr : frames_)
            if (!f || fr->serial < f->serial) f = fr.get();
        complete(*f);
    }
    check(vkResetCommandPool(dev, f->pool, 0), "resetting a command pool");
    for (VkDescriptorPool p : f->descriptor_pools) vkResetDescriptorPool(dev, p, 0);
    f->descriptor_pool = 0;
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(vkBeginCommandBuffer(f->cmd, &bi), "beginning a command buffer");
    open_ = f;
    pending_.clear();
    // Order this frame after everything submitted before it.
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = kWrites;
    mb.dstAccessMask = kAll;
    vkCmdPipelineBarrier(f->cmd, kWorkStages, kWorkStages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    return *f;
}

void Recorder::complete(Frame& f) {
    if (!f.in_flight) return;
    check(vkWaitForFences(device_.handle(), 1, &f.fence, VK_TRUE, UINT64_MAX), "waiting for the GPU (vkWaitForFences)");
    check(vkResetFences(device_.handle(), 1, &f.fence), "resetting a fence");
    f.in_flight = false;
    auto fns = std::move(f.on_complete);
    f.on_complete.clear();
    for (auto& fn : fns) fn();
    f.arena->reset();
}

VkCommandBuffer Recorder::cmd() { return open_ ? open_->cmd : begin_frame().cmd; }

Arena::Slice Recorder::upload(const void* data, uint64_t bytes) {
    if (!open_) begin_frame();
    Arena::Slice s = open_->arena->alloc(bytes);
    if (data && bytes) std::memcpy(s.host, data, bytes);
    return s;
}

void Recorder::barrier() {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = kWrites;
    mb.dstAccessMask = kAll;
    vkCmdPipelineBarrier(open_->cmd, kWorkStages, kWorkStages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    pending_.clear();
    ++barriers_;
}

void Recorder::access(VkBuffer buffer, uint64_t offset, uint64_t bytes, bool write) {
    incoming_.push_back({buffer, offset, offset + bytes, write});
}


void Recorder::order() {
    bool hazard = barrier_all_;
    for (const Access& a : incoming_)
        for (const Access& q : pending_)
            if (a.buffer == q.buffer && a.lo < q.hi && q.lo < a.hi && (a.write || q.write)) hazard = true;
    if (hazard && !no_barriers_) barrier();
    pending_.insert(pending_.end(), incoming_.begin(), incoming_.end());
}

void Recorder::dispatch(const Pipeline& p, const std::vector<Binding>& bindings, const void* push, uint32_t gx,
                        uint32_t gy, uint32_t gz) {
    if (bindings.size() != p.n_descriptors)
        throw ops::Error("vulkan: internal error: shader " + p.name + " takes " + std::to_string(p.n_descriptors) +
                         " buffers but " + std::to_string(bindings.size()) + " were given");
    if (gx == 0 || gy == 0 || gz == 0) return;
    const auto& lim = device_.caps().max_groups;
    if (gx > lim[0] || gy > lim[1] || gz > lim[2])
        throw ops::Error("vulkan: shader " + p.name + " needs " + std::to_string(gx) + " x " + std::to_string(gy) + " x " +
                         std::to_string(gz) + " workgroups, more than the device allows; lower the step size (--chunk)");
    VkCommandBuffer c = cmd();
    incoming_.clear();
    for (const Binding& b : bindings) access(b.view.buffer, b.view.offset, b.view.range, b.write);
    order();

    vkCmdBindPipeline(c, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
    std::vector<VkDescriptorBufferInfo> infos(bindings.size());
    for (size_t i = 0; i < bindings.size(); ++i) infos[i] = {bindings[i].view.buffer, bindings[i].view.offset, bindings[i].view.range};
    std::vector<VkWriteDescriptorSet> writes(p.bindings.size());
    size_t at = 0;
    for (size_t i = 0; i < p.bindings.size(); ++i) {
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstBinding = uint32_t(i);
        writes[i].descriptorCount = p.bindings[i];
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[at];
        at += p.bindings[i];
    }
    if (device_.caps().push_descriptors) {
        device_.push_descriptor_set(c, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, uint32_t(writes.size()), writes.data());
    } else {
        VkDevice dev = device_.handle();
        VkDescriptorSet set = VK_NULL_HANDLE;
        for (;;) {
            if (open_->descriptor_pool == open_->descriptor_pools.size()) {
                VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 4096};
                VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
                pi.maxSets = 512;
                pi.poolSizeCount = 1;
                pi.pPoolSizes = &size;
                VkDescriptorPool pool;
                check(vkCreateDescriptorPool(dev, &pi, nullptr, &pool), "creating a descriptor pool");
                open_->descriptor_pools.push_back(pool);
            }
            VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
            ai.descriptorPool = open_->descriptor_pools[open_->descriptor_pool];
            ai.descriptorSetCount = 1;
            ai.pSetLayouts = &p.set_layout;
            const VkResult r = vkAllocateDescriptorSets(dev, &ai, &set);
            if (r == VK_SUCCESS) break;
            if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) check(r, "allocating a descriptor set");
            ++open_->descriptor_pool;
        }
        for (auto& w : writes) w.dstSet = set;
        vkUpdateDescriptorSets(dev, uint32_t(writes.size()), writes.data(), 0, nullptr);
        vkCmdBindDescriptorSets(c, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
    }
    if (p.push_bytes) vkCmdPushConstants(c, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p.push_bytes, push);
    vkCmdDispatch(c, gx, gy, gz);
    ++dispatches_;
}

void Recorder::copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes) {
    if (!bytes) return;
    VkCommandBuffer c = cmd();
    incoming_.clear();
    access(src, src_offset, bytes, false);
    access(dst, dst_offset, bytes, true);
    order();
    VkBufferCopy region{src_offset, dst_offset, bytes};
    vkCmdCopyBuffer(c, src, dst, 1, &region);
}

void Recorder::fill(VkBuffer dst, uint64_t offset, uint64_t bytes) {
    if (!bytes) return;
    VkCommandBuffer c = cmd();
    incoming_.clear();
    access(dst, offset, bytes, true);
    order();
    vkCmdFillBuffer(c, dst, offset, bytes, 0);
}

void Recorder::defer(std::function<void()> fn) {
    if (open_) {
        open_->on_complete.push_back(std::move(fn));
        return;
    }
    Frame* last = nullptr;
    for (auto& f : frames_)
        if (f->in_flight && (!last || f->serial > last->serial)) last = f.get();
    if (last)
        last->on_complete.push_back(std::move(fn));
    else
        fn();
}

void Recorder::flush() {
    if (!open_) return;
    Frame& f = *open_;
    open_ = nullptr;
    pending_.clear();
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = kWrites;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(f.cmd, kWorkStages, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
    check(vkEndCommandBuffer(f.cmd), "ending a command buffer");
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &f.cmd;
    check(vkQueueSubmit(device_.queue(), 1, &si, f.fence), "submitting work to the GPU (vkQueueSubmit)");
    f.in_flight = true;
    f.serial = ++serial_;
    ++submits_;
}

void Recorder::wait() {
    flush();
    std::vector<Frame*> order;
    for (auto& f : frames_)
        if (f->in_flight) order.push_back(f.get());
    std::sort(order.begin(), order.end(), [](Frame* a, Frame* b) { return a->serial < b->serial; });
    for (Frame* f : order) complete(*f);
}

}  // namespace halo::vk
