// Calls f(op, params) once for every op of ops/op_list.h, with default (empty) params: for tests of what a plugin
// answers before it looks at any tensor (an op it does not support).
#pragma once

#include "ops/backend.h"

namespace halo::test {

template <class F>
void for_each_op_with_empty_params(F&& f) {
#define HALO_EMPTY_OP(name, Params, ...) \
    {                                    \
        const ops::Params params{};      \
        f(ops::Op::name, params);        \
    }
    HALO_OPS(HALO_EMPTY_OP)
#undef HALO_EMPTY_OP
}

}  // namespace halo::test
