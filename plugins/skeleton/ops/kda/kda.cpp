// kda on the skeleton: not supported. A backend's kda checks the inputs it handles (dtypes, shapes),
// throwing ops::Unsupported that says which for the rest, and records its kernels, kept beside this file, on
// c.exec. The op's definition is ops/reference/kda.cpp; its conformance cases are in tests/ops.
#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

void kda(Context& c, const ops::KdaParams& p, const ops::SeqBatch& batch) { unsupported("kda", kNoKernels); }

}  // namespace halo::skeleton
