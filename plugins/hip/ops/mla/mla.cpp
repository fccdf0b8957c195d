// mla on HIP: not written yet.
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

void mla(Context& c, const ops::MlaParams& p, const ops::SeqBatch& batch) { unsupported("mla", "its kernels are not written yet"); }

}  // namespace halo::hip
