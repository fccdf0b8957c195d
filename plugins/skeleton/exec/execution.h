// Execution: the order work runs in. The Backend contract (ops/backend.h): ops between begin_step and end_step form
// one forward step and may run later; write, zero and copy are ordered with the ops around them; read and
// synchronize wait for everything submitted before. The skeleton runs no ops, so there is nothing to queue and
// this only tracks steps. A GPU backend keeps its stream or command buffer here: ops record into it, end_step
// submits it, synchronize waits on it (one stream per backend instance, asynchronous within a step).
#pragma once

#include <cstdint>

namespace halo::skeleton {

class Execution {
public:
    void begin_step();
    void end_step();
    void synchronize();

    bool in_step() const { return in_step_; }
    uint64_t steps() const { return steps_; }  // steps ended so far

private:
    bool in_step_ = false;
    uint64_t steps_ = 0;
};

}  // namespace halo::skeleton
