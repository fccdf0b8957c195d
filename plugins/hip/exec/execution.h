// Execution: one HIP stream per backend instance. Ops enqueue their kernels on it and return; write, zero and copy
// go on the same stream, so they are ordered with the ops around them; read and synchronize wait for it. A step
// (begin_step .. end_step) is therefore asynchronous: nothing waits until the core reads the logits.
#pragma once

#include <cstdint>
#include <vector>

#include "plugins/hip/runtime/hip.h"

namespace halo::hip {

// Where and how kernels are launched: the stream, and the device's wave size (lanes per warp), which sizes grids
// whose work is split per warp.
struct Launch {
    hipStream_t stream = nullptr;
    int warp = 32;
};

class Execution {
public:
    Execution();
    ~Execution();
    Execution(const Execution&) = delete;
    Execution& operator=(const Execution&) = delete;

    hipStream_t stream() const { return stream_; }
    void begin_step() { in_step_ = true; }
    void end_step();
    void synchronize();
    // Throws ops::Error naming the kernel when its launch failed (bad configuration, no code for this GPU).
    static void check_launch(const char* kernel);

    uint64_t steps() const { return steps_; }

private:
    hipStream_t stream_ = nullptr;
    bool in_step_ = false;
    uint64_t steps_ = 0;
};

// Device memory for op temporaries (projections, gates, partial sums) and the small tables an op uploads (a
// step's runs, page tables, expert lists). Each op starts with begin_op() and takes what it needs; since every op
// runs on the one stream, the next op may reuse the same bytes. It is one block of the largest op's need: the model
// reserves the plan's size before its first step (reserve), and an op that takes more gets a block beside it, until
// the next op or the end of the step waits for the stream and replaces them with one block of the new peak.
class Workspace {
public:
    explicit Workspace(Execution& exec) : exec_(exec) {}
    ~Workspace();
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;

    void begin_op();
    void* take(uint64_t bytes);  // 256-byte aligned
    template <class T>
    T* take(int64_t count) {
        return static_cast<T*>(take(uint64_t(count) * sizeof(T)));
    }
    // Copies host data to the workspace (ordered on the stream) and returns its device address.
    template <class T>
    const T* upload(const T* data, int64_t count) {
        T* d = take<T>(count);
        copy_in(d, data, uint64_t(count) * sizeof(T));
        return d;
    }
    uint64_t bytes() const;  // held now
    // Holds at least `bytes` in one block from now on (the plan's size, so that no step allocates).
    void reserve(uint64_t bytes);
    // Replaces the blocks by one of the peak need when an op outgrew them (waits for the stream then).
    void compact();
    static constexpr const char* kWhat = "op workspace (device memory)";

private:
    void copy_in(void* dst, const void* src, uint64_t bytes);
    static unsigned char* allocate(uint64_t bytes);

    struct Block {
        unsigned char* base = nullptr;
        uint64_t size = 0;
    };
    Execution& exec_;
    std::vector<Block> blocks_;
    size_t block_ = 0;
    uint64_t used_ = 0;      // in blocks_[block_]
    uint64_t op_bytes_ = 0;  // taken by the current op
    uint64_t peak_ = 0;      // the most one op has taken, or the reserve
};

}  // namespace halo::hip
