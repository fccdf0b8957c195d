// moe on HIP: not written yet.
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

void moe(Context& c, const ops::MoeParams& p) { unsupported("moe", "its kernels are not written yet"); }

}  // namespace halo::hip
