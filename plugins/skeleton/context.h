// What every op of the skeleton receives: the device, its memory and its execution. A real backend adds what its
// kernels need here (loaded modules or pipelines, a workspace for temporaries).
#pragma once

#include "plugins/skeleton/device/device.h"
#include "plugins/skeleton/exec/execution.h"
#include "plugins/skeleton/memory/memory.h"

namespace halo::skeleton {

struct Context {
    explicit Context(Device d) : device(std::move(d)), memory(device.info) {}
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    Device device;
    Memory memory;  // refers to device.info
    Execution exec;
};

}  // namespace halo::skeleton
