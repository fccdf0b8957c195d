// mla on the skeleton: not supported. A backend's mla checks the inputs it handles (dtypes, shapes),
// throwing ops::Unsupported that says which for the rest, and records its kernels, kept beside this file, on
// c.exec. The op's definition is ops/reference/mla.cpp; its conformance cases are in tests/ops.
#include "plugins/skeleton/ops/ops.h"

namespace halo::skeleton {

void mla(Context& c, const ops::MlaParams& p, const ops::SeqBatch& batch) { unsupported("mla", kNoKernels); }

}  // namespace halo::skeleton
