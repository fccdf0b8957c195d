// What every op of the HIP plugin receives: the device, its stream, its memory and the op workspace.
#pragma once

#include "plugins/hip/device/device.h"
#include "plugins/hip/exec/execution.h"
#include "plugins/hip/memory/memory.h"

namespace halo::hip {

struct Context {
    explicit Context(Device d) : device(std::move(d)), memory(device, exec), ws(exec) {}
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    hipStream_t stream() const { return exec.stream(); }
    Launch launch() const { return {exec.stream(), device.warp_size}; }

    Device device;
    Execution exec;
    Memory memory;  // refers to device and exec
    Workspace ws;
};

}  // namespace halo::hip
