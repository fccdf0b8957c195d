// kda on HIP: not written yet.
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

void kda(Context& c, const ops::KdaParams& p, const ops::SeqBatch& batch) { unsupported("kda", "its kernels are not written yet"); }

}  // namespace halo::hip
