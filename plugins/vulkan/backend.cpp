#include "plugins/vulkan/backend.h"

#include <algorithm>
#include <cstring>

#include "plugins/vulkan/ops.h"

namespace halo::vk {

using namespace halo::ops;

VulkanBackend::VulkanBackend(const BackendOptions& options) {
    instance_ = std::make_unique<Instance>(options.validation);
    const PhysicalDevice& pd = instance_->choose(options.device_index, options.device_name);
    device_ = std::make_unique<Device>(*instance_, pd);
    memory_ = std::make_unique<Memory>(*device_);
    recorder_ = std::make_unique<Recorder>(*device_, *memory_);
    pipelines_ = std::make_unique<Pipelines>(*device_);
    int32_t ws_placement = memory_->find(PlacementKind::host_visible);  // op temporaries follow the scratch default
    for (size_t i = 0; i < memory_->placements().size(); ++i)
        if (memory_->placement_info()[i].name == memory_->default_placement(MemoryUse::scratch)) ws_placement = int32_t(i);
    workspace_ = std::make_unique<Workspace>(*memory_, *recorder_, device_->caps(), ws_placement);
    ctx_ = std::make_unique<Context>(*device_, *memory_, *recorder_, *pipelines_, *workspace_);

    const DeviceCaps& caps = device_->caps();
    info_.name = pd.name + " (Vulkan)";
    info_.kind = pd.kind;
    info_.unified_memory = pd.unified_memory;
    for (int u = 0; u < kMemoryUseCount; ++u) info_.default_placement[u] = memory_->default_placement(MemoryUse(u));
    info_.notes = device_->notes();
    info_.notes.push_back("device " + pd.describe());
    info_.notes.push_back("subgroup size " + std::to_string(caps.subgroup_size) + ", shader binding range " +
                          std::to_string(caps.max_range >> 20) + " MiB, largest allocation " +
                          std::to_string(caps.max_piece >> 20) + " MiB (larger buffers are split)");
    if (pd.kind == "cpu")
        info_.notes.push_back("this is a CPU implementation of Vulkan (lavapipe): correct but slow, for testing");
    if (options.validation) info_.notes.push_back("validation layer on (with synchronisation validation)");
    // Done before the first step records, so that steps find this frame free and one frame's staging serves them
    // all (the memory plan counts one frame where the host can write every buffer).
    recorder_->wait();
}

VulkanBackend::~VulkanBackend() {
    try {
        recorder_->wait();
    } catch (...) {
    }
    if (readback_) memory_->release(readback_);
    ctx_.reset();
    workspace_.reset();
    recorder_.reset();
    pipelines_.reset();
    memory_.reset();
    device_.reset();
    instance_.reset();
}

const DeviceInfo& VulkanBackend::device() const {
    info_.placements = memory_->placement_info();
    return info_;
}

uint64_t VulkanBackend::internal_bytes() const { return memory_->internal_bytes(); }

std::vector<InternalUse> VulkanBackend::internal_use() const { return memory_->internal_use(); }

std::vector<InternalUse> VulkanBackend::plan_internal(const StepShape& shape) const {
    return vk::plan_internal(*ctx_, shape);
}

void VulkanBackend::reserve_internal(const StepShape& shape) { workspace_->reserve(planned_workspace(*ctx_, shape)); }

// ---- memory --------------------------------------------------------------------------------------------------

Buffer* VulkanBackend::allocate(MemoryUse use, int32_t placement, uint64_t bytes) {
    return memory_->allocate(use, placement, bytes);
}

Buffer* VulkanBackend::import_host(MemoryUse use, int32_t placement, void* data, uint64_t bytes) {
    return memory_->import_host(use, placement, data, bytes);
}

void VulkanBackend::release(Buffer* buffer) {
    if (!buffer) return;
    recorder_->wait();
    memory_->release(static_cast<VulkanBuffer*>(buffer));
}

void VulkanBackend::check_range(const Buffer* b, uint64_t off, uint64_t n, const char* what) const {
    if (!b) throw Error(std::string("vulkan: ") + what + " of a null buffer");
    if (off > b->bytes || n > b->bytes - off)
        throw Error(std::string("vulkan: ") + what + " of " + std::to_string(n) + " bytes at offset " + std::to_string(off) +
                    " is outside a buffer of " + std::to_string(b->bytes) + " bytes");
}

std::vector<VulkanBackend::Segment> VulkanBackend::segments(const Buffer* buffer, uint64_t offset, uint64_t bytes,
                                                            bool every_copy) const {
    const auto* b = static_cast<const VulkanBuffer*>(buffer);
    std::vector<Segment> out;
    if (every_copy && b->duplicated) {
        for (const Piece& p : b->pieces) {
            const uint64_t lo = std::max(offset + b->lead, p.begin), hi = std::min(offset + b->lead + bytes, p.begin + p.size);
            if (lo < hi) out.push_back({&p, lo - p.begin, lo - b->lead, hi - lo});
        }
        return out;
    }
    uint64_t at = offset;
    const uint64_t end = offset + bytes;
    while (at < end) {
        const uint64_t i = at + b->lead;
        const Piece* pick = nullptr;
        for (const Piece& p : b->pieces)  // the piece reaching furthest from here
            if (i >= p.begin && i < p.begin + p.size && (!pick || p.begin + p.size > pick->begin + pick->size)) pick = &p;
        if (!pick) throw Error("vulkan: internal error: byte " + std::to_string(at) + " of a buffer lies in no piece");
        const uint64_t n = std::min(end - at, pick->begin + pick->size - i);
        out.push_back({pick, i - pick->begin, at, n});
        at += n;
    }
    return out;
}

void VulkanBackend::write(Buffer* dst, uint64_t off, const void* src, uint64_t n) {
    check_range(dst, off, n, "write");
    if (!n) return;
    if (!in_step_ && dst->host) {  // nothing recorded may still read the old contents once the queue is idle
        recorder_->wait();
        std::memcpy(static_cast<char*>(dst->host) + off, src, n);
        return;
    }
    const char* s = static_cast<const char*>(src);
    for (const Segment& seg : segments(dst, off, n, true))
        for (uint64_t done = 0; done < seg.bytes; done += kTransferChunk) {
            const uint64_t len = std::min(kTransferChunk, seg.bytes - done);
            const Arena::Slice up = recorder_->upload(s + (seg.at - off) + done, len);
            recorder_->copy(up.view.buffer, up.view.offset, seg.piece->buffer, seg.local + done, len);
            if (!in_step_) recorder_->flush();  // bounded staging for large loads
        }
}

void VulkanBackend::read(const Buffer* src, uint64_t off, void* dst, uint64_t n) {
    check_range(src, off, n, "read");
    recorder_->wait();
    check_validation();
    if (!n) return;
    if (src->host) {
        std::memcpy(dst, static_cast<const char*>(src->host) + off, n);
        return;
    }
    char* d = static_cast<char*>(dst);
    for (const Segment& seg : segments(src, off, n)) {
        if (seg.piece->mapped) {
            std::memcpy(d + (seg.at - off), seg.piece->mapped + seg.local, seg.bytes);
            continue;
        }
        for (uint64_t done = 0; done < seg.bytes; done += kTransferChunk) {
            const uint64_t len = std::min(kTransferChunk, seg.bytes - done);
            if (!readback_ || readback_->bytes < len) {
                if (readback_) memory_->release(readback_);
                readback_ = nullptr;
                readback_ = memory_->allocate_staging(std::max<uint64_t>(len, uint64_t(1) << 20), true);
            }
            recorder_->copy(seg.piece->buffer, seg.local + done, readback_->pieces[0].buffer, 0, len);
            recorder_->wait();
            std::memcpy(d + (seg.at - off) + done, readback_->host, len);
        }
    }
}

void VulkanBackend::zero(Buffer* dst, uint64_t off, uint64_t n) {
    check_range(dst, off, n, "zero");
    static const uint8_t zeros[4] = {0, 0, 0, 0};
    for (const Segment& seg : segments(dst, off, n, true)) {
        // vkCmdFillBuffer needs 4-byte alignment: fill the aligned middle, copy zeros to the ragged ends.
        const uint64_t lo = (seg.local + 3) / 4 * 4, hi = (seg.local + seg.bytes) / 4 * 4;
        if (hi > lo) {
            recorder_->fill(seg.piece->buffer, lo, hi - lo);
            for (uint64_t a = seg.local; a < lo && a < seg.local + seg.bytes; ++a) {
                const Arena::Slice up = recorder_->upload(zeros, 1);
                recorder_->copy(up.view.buffer, up.view.offset, seg.piece->buffer, a, 1);
            }
            for (uint64_t a = std::max(hi, lo); a < seg.local + seg.bytes; ++a) {
                const Arena::Slice up = recorder_->upload(zeros, 1);
                recorder_->copy(up.view.buffer, up.view.offset, seg.piece->buffer, a, 1);
            }
        } else {
            std::vector<uint8_t> z(seg.bytes, 0);
            const Arena::Slice up = recorder_->upload(z.data(), seg.bytes);
            recorder_->copy(up.view.buffer, up.view.offset, seg.piece->buffer, seg.local, seg.bytes);
        }
    }
}

void VulkanBackend::copy(Buffer* dst, uint64_t doff, const Buffer* src, uint64_t soff, uint64_t n) {
    check_range(dst, doff, n, "copy destination");
    check_range(src, soff, n, "copy source");
    if (!n) return;
    VulkanBuffer* tmp = nullptr;
    const Buffer* from = src;
    uint64_t from_off = soff;
    if (dst == src && doff < soff + n && soff < doff + n) {  // overlapping: go through a temporary
        tmp = memory_->allocate(MemoryUse::scratch, memory_->find(PlacementKind::host_visible), n);
        copy(tmp, 0, src, soff, n);
        from = tmp;
        from_off = 0;
    }
    for (const Segment& s : segments(from, from_off, n))
        for (const Segment& d : segments(dst, doff + (s.at - from_off), s.bytes, true))
            recorder_->copy(s.piece->buffer, s.local + (d.at - doff - (s.at - from_off)), d.piece->buffer, d.local, d.bytes);
    if (tmp) {
        Memory* m = memory_.get();
        recorder_->defer([m, tmp] { m->release(tmp); });
    }
}

// ---- steps -----------------------------------------------------------------------------------------------------

void VulkanBackend::begin_step() { in_step_ = true; }

void VulkanBackend::end_step() {
    in_step_ = false;
    recorder_->flush();
}

void VulkanBackend::synchronize() {
    recorder_->wait();
    check_validation();
}

void VulkanBackend::after_op() {
    if (!in_step_) recorder_->flush();
}

void VulkanBackend::check_validation() {
    const uint64_t n = instance_->validation_errors();
    if (n > reported_errors_) {
        reported_errors_ = n;
        throw Error("vulkan validation reported " + std::to_string(n) + " error(s); the first: " +
                    instance_->first_validation_error());
    }
}

}  // namespace halo::vk
