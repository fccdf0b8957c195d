// moe on the skeleton: not supported. A backend's moe checks the inputs it handles (dtypes, shapes),
// throwing ops::Unsupported that says which for the rest, and records its kernels, kept beside this file, on
// c.exec. The op's definition is ops/reference/moe.cpp; its conformance cases are in tests/ops.
#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

void moe(Context& c, const ops::MoeParams& p) { unsupported("moe", kNoKernels); }

}  // namespace halo::skeleton
