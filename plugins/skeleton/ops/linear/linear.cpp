// linear on the skeleton: not supported. A backend's linear checks the inputs it handles (dtypes, shapes),
// throwing ops::Unsupported that says which for the rest, and records its kernels, kept beside this file, on
// c.exec. The op's definition is ops/reference/glue.cpp; its conformance cases are in tests/ops.
#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

void linear(Context& c, const ops::LinearParams& p) { unsupported("linear", kNoKernels); }

}  // namespace halo::skeleton
