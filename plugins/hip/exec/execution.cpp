#include "plugins/hip/exec/execution.h"

#include <algorithm>
#include <string>

#include "plugins/hip/device/device.h"

namespace halo::hip {

namespace {
template <class V>
uint64_t bytes_held_total(const V& blocks) {
    uint64_t n = 0;
    for (const auto& b : blocks) n += b.size;
    return n;
}
}  // namespace

Execution::Execution() { check(hipStreamCreate(&stream_), "hipStreamCreate"); }

Execution::~Execution() {
    if (stream_) {
        (void)hipStreamSynchronize(stream_);
        (void)hipStreamDestroy(stream_);
    }
}

void Execution::end_step() {
    if (in_step_) ++steps_;
    in_step_ = false;
    // Launch errors surface here at the latest; kernel faults surface at the next synchronize.
    check(hipGetLastError(), "a kernel of this step");
}

void Execution::synchronize() { check(hipStreamSynchronize(stream_), "hipStreamSynchronize"); }

void Execution::check_launch(const char* kernel) {
    const hipError_t e = hipGetLastError();
    if (e != hipSuccess)
        throw ops::Error(std::string("hip: kernel ") + kernel + " did not launch: " + hipGetErrorName(e) + " (" +
                         hipGetErrorString(e) + ")");
}

Workspace::~Workspace() {
    if (blocks_.empty()) return;
    (void)hipStreamSynchronize(exec_.stream());
    for (Block& b : blocks_) (void)hipFree(b.base);
}

void Workspace::begin_op() {
    compact();
    block_ = 0;
    used_ = 0;
    op_bytes_ = 0;
}

void* Workspace::take(uint64_t bytes) {
    const uint64_t n = (std::max<uint64_t>(bytes, 1) + 255) / 256 * 256;
    op_bytes_ += n;
    peak_ = std::max(peak_, op_bytes_);
    while (block_ < blocks_.size()) {
        if (used_ + n <= blocks_[block_].size) {
            void* p = blocks_[block_].base + used_;
            used_ += n;
            return p;
        }
        ++block_;
        used_ = 0;
    }
    // The op outgrew what is held: a block beside the others for now (earlier takes of this op and the kernels of
    // earlier ops still use those); compact() replaces them all with one block of the peak once they are done.
    const uint64_t size = std::max(n, bytes_held_total(blocks_));
    blocks_.push_back({allocate(size), size});
    block_ = blocks_.size() - 1;
    used_ = n;
    return blocks_.back().base;
}

void Workspace::compact() {
    if (blocks_.size() <= 1 && (blocks_.empty() || blocks_[0].size >= peak_)) return;
    exec_.synchronize();
    for (Block& b : blocks_) (void)hipFree(b.base);
    blocks_.clear();
    blocks_.push_back({allocate(peak_), peak_});
}

void Workspace::reserve(uint64_t bytes) {
    peak_ = std::max(peak_, (bytes + 255) / 256 * 256);
    compact();
}

unsigned char* Workspace::allocate(uint64_t bytes) {
    void* p = nullptr;
    const hipError_t e = hipMalloc(&p, bytes);
    if (e != hipSuccess) {
        (void)hipGetLastError();
        throw ops::OutOfMemory("hip: cannot allocate " + std::to_string(bytes) +
                               " bytes of device memory for the op workspace: " + hipGetErrorName(e));
    }
    return static_cast<unsigned char*>(p);
}

uint64_t Workspace::bytes() const { return bytes_held_total(blocks_); }

void Workspace::copy_in(void* dst, const void* src, uint64_t bytes) {
    if (!bytes) return;
    check(hipMemcpyAsync(dst, src, bytes, hipMemcpyHostToDevice, exec_.stream()), "hipMemcpyAsync (upload)");
}

}  // namespace halo::hip
