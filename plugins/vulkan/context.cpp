#include "plugins/vulkan/context.h"

#include <climits>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "plugins/vulkan/shaders/interop.h"

namespace halo::vk {

using namespace halo::ops;

namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

Context::Context(const Device& device_, Memory& memory_, Recorder& recorder_, Pipelines& pipelines_, Workspace& workspace_)
    : device(device_), memory(memory_), rec(recorder_), pipelines(pipelines_), ws(workspace_) {
    const int32_t placement = memory.find(PlacementKind::device_local) >= 0 ? memory.find(PlacementKind::device_local)
                                                                             : memory.find(PlacementKind::host_visible);
    dummy_buffer_ = memory.allocate(MemoryUse::scratch, placement, 256);
    dummy_ = {dummy_buffer_->pieces[0].buffer, 0, 256, 0};
    rec.fill(dummy_.buffer, 0, 256);
    if (const char* v = std::getenv("HALO_VULKAN_MLA_KERNEL"); v && *v) {
        if (std::strcmp(v, "per_head") == 0) mla_kernel = MlaKernel::per_head;
        else if (std::strcmp(v, "heads") == 0) mla_kernel = MlaKernel::heads;
        else throw Error(std::string("vulkan: HALO_VULKAN_MLA_KERNEL is '") + v + "'; use per_head or heads");
    }
}

Context::~Context() { memory.release(dummy_buffer_); }

View Context::view(const Buffer* buffer, uint64_t offset, uint64_t bytes, uint32_t elem_size, const char* what) const {
    const auto* b = static_cast<const VulkanBuffer*>(buffer);
    if (!b) throw Error(std::string("vulkan: tensor '") + what + "' has no buffer");
    if (offset > b->bytes || bytes > b->bytes - offset)
        throw Error(std::string("vulkan: tensor '") + what + "' (" + std::to_string(bytes) + " bytes at offset " +
                    std::to_string(offset) + ") does not fit in its buffer of " + std::to_string(b->bytes) + " bytes");
    const Piece* p = b->piece_for(offset, std::max<uint64_t>(bytes, 1));
    if (!p)
        throw Error(std::string("vulkan: tensor '") + what + "' (" + std::to_string(bytes) + " bytes at offset " +
                    std::to_string(offset) + ") crosses the boundary between two pieces of a buffer that is larger than "
                    "the device's largest allocation (" + std::to_string(caps().max_piece) +
                    " bytes); keep such tensors in buffers of their own");
    const uint64_t local = offset + b->lead - p->begin;
    const uint64_t base = local / caps().storage_align * caps().storage_align;
    if ((local - base) % elem_size)
        throw Error(std::string("vulkan: tensor '") + what + "' starts at byte offset " + std::to_string(offset) +
                    ", which is not a multiple of its element size " + std::to_string(elem_size));
    const uint64_t range = std::min<uint64_t>(align_up(bytes + (local - base), 16), p->size - base);
    if (range > caps().max_range)
        throw Error(std::string("vulkan: tensor '") + what + "' spans " + std::to_string(bytes) +
                    " bytes, more than one shader binding may address on this device (maxStorageBufferRange " +
                    std::to_string(caps().max_range) + " bytes); use a smaller step, context or sequence count");
    return {p->buffer, base, range, uint32_t((local - base) / elem_size)};
}

View Context::view(const Tensor& t, const char* what) const {
    return view(t.buffer, t.offset, t.bytes(), storage_unit(t.dtype), what);
}

View Context::scale_view(const Tensor& t, const char* what) const {
    const std::string name = std::string(what) + " scales";
    return view(t.scale.buffer, t.scale.offset, t.scale_bytes(), uint32_t(dtype_size(t.scale.dtype)), name.c_str());
}

namespace {

// Rows of `row_bytes` from byte `at` of `buffer` that stay inside one piece and one binding range (less the
// alignment slack); 0 when the first row crosses a piece boundary.
int64_t rows_in_one_binding(const VulkanBuffer* b, uint64_t at, uint64_t row_bytes, const DeviceCaps& caps) {
    const Piece* p = b ? b->piece_for(at, row_bytes) : nullptr;
    if (!p) return 0;
    const uint64_t piece_end = p->begin + p->size - b->lead;
    const int64_t in_piece = int64_t((piece_end - at) / row_bytes);
    const int64_t in_range = int64_t((caps.max_range - caps.storage_align - 16) / row_bytes);
    return std::min(in_piece, in_range);
}

}  // namespace

std::vector<RowBlock> Context::row_blocks(const Tensor& t, const char* what) const {
    const auto* b = static_cast<const VulkanBuffer*>(t.buffer);
    const int64_t rows = t.rows();
    const uint64_t row_bytes = t.row_stride(), unit = storage_unit(t.dtype);
    const bool quantized = t.quantized();
    const auto* sb = static_cast<const VulkanBuffer*>(t.scale.buffer);
    const uint64_t scale_row_bytes = quantized ? uint64_t(t.scale.cols(t.cols())) * dtype_size(t.scale.dtype) : 0;
    const std::string scale_what = std::string(what) + " scales";
    std::vector<RowBlock> blocks;
    if (rows == 0 || row_bytes == 0) return blocks;
    for (int64_t r0 = 0; r0 < rows;) {
        const uint64_t at = t.offset + uint64_t(r0) * row_bytes;
        const uint64_t scale_at = t.scale.offset + uint64_t(r0) * scale_row_bytes;
        int64_t n = rows_in_one_binding(b, at, row_bytes, caps());
        if (n <= 0) {
            view(t.buffer, at, row_bytes, uint32_t(unit), what);  // throws the sentence
            throw Error(std::string("vulkan: one row of tensor '") + what + "' (" + std::to_string(row_bytes) +
                        " bytes) is larger than a shader binding may address on this device");
        }
        if (quantized) {
            const int64_t ns = rows_in_one_binding(sb, scale_at, scale_row_bytes, caps());
            if (ns <= 0) {
                view(t.scale.buffer, scale_at, scale_row_bytes, uint32_t(dtype_size(t.scale.dtype)), scale_what.c_str());
                throw Error(std::string("vulkan: one row of the scales of tensor '") + what + "' (" +
                            std::to_string(scale_row_bytes) + " bytes) is larger than a shader binding may address");
            }
            n = std::min(n, ns);
        }
        n = std::min(n, rows - r0);
        RowBlock blk;
        blk.first = r0;
        blk.count = n;
        blk.view = view(t.buffer, at, uint64_t(n) * row_bytes, uint32_t(unit), what);
        if (quantized)
            blk.scales = view(t.scale.buffer, scale_at, uint64_t(n) * scale_row_bytes, uint32_t(dtype_size(t.scale.dtype)),
                              scale_what.c_str());
        blocks.push_back(blk);
        r0 += n;
    }
    return blocks;
}

BatchViews Context::upload_batch(const SeqBatch& batch) {
    std::vector<glsl::RunDesc> runs(size_t(std::max(batch.n_runs, 1)));
    std::vector<int32_t> pages, row_run(size_t(std::max(batch.n_rows, 1)), 0);
    BatchViews v;
    v.n_runs = batch.n_runs;
    v.n_rows = batch.n_rows;
    for (int32_t i = 0; i < batch.n_runs; ++i) {
        const SeqRun& r = batch.runs[i];
        if (r.first_row < 0 || r.n_tokens < 1 || r.first_row + r.n_tokens > batch.n_rows)
            throw Error("vulkan: run " + std::to_string(i) + " of the batch (rows " + std::to_string(r.first_row) + "+" +
                        std::to_string(r.n_tokens) + ") lies outside the step's " + std::to_string(batch.n_rows) + " rows");
        if (r.pos < 0 || r.pos + r.n_tokens > INT32_MAX)
            throw Error("vulkan: run " + std::to_string(i) + " reaches position " + std::to_string(r.pos + r.n_tokens) +
                        "; the shaders index positions with 32 bits");
        glsl::RunDesc& d = runs[size_t(i)];
        d = {r.first_row, r.n_tokens, r.slot, int32_t(r.pos), int32_t(pages.size()), r.n_pages, 0, 0};
        if (r.pages) pages.insert(pages.end(), r.pages, r.pages + r.n_pages);
        for (int32_t t = 0; t < r.n_tokens; ++t) row_run[size_t(r.first_row + t)] = i;
        v.max_tokens = std::max(v.max_tokens, r.n_tokens);
        v.max_context = std::max(v.max_context, int32_t(r.pos + r.n_tokens));
    }
    if (pages.empty()) pages.push_back(0);
    // Reuse the previous upload when nothing changed and its frame is still the one being recorded.
    std::vector<uint8_t> key(sizeof(glsl::RunDesc) * runs.size() + 4 * (pages.size() + row_run.size()) + 8);
    uint8_t* k = key.data();
    std::memcpy(k, &batch.n_runs, 4);
    std::memcpy(k + 4, &batch.n_rows, 4);
    std::memcpy(k + 8, runs.data(), sizeof(glsl::RunDesc) * runs.size());
    std::memcpy(k + 8 + sizeof(glsl::RunDesc) * runs.size(), pages.data(), 4 * pages.size());
    std::memcpy(k + 8 + sizeof(glsl::RunDesc) * runs.size() + 4 * pages.size(), row_run.data(), 4 * row_run.size());
    if (rec.open() && rec.submits() == last_submits_ && key == last_batch_) return last_views_;
    v.runs = rec.upload(runs.data(), sizeof(glsl::RunDesc) * runs.size()).view;
    v.pages = rec.upload(pages.data(), 4 * pages.size()).view;
    v.row_run = rec.upload(row_run.data(), 4 * row_run.size()).view;
    last_batch_ = std::move(key);
    last_views_ = v;
    last_submits_ = rec.submits();
    return v;
}

}  // namespace halo::vk
