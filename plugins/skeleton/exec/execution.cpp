#include "plugins/skeleton/exec/execution.h"

namespace halo::skeleton {

void Execution::begin_step() { in_step_ = true; }

void Execution::end_step() {
    if (in_step_) ++steps_;
    in_step_ = false;
}

void Execution::synchronize() {}

}  // namespace halo::skeleton
