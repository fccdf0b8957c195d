// add on HIP (add.hip).
#include "plugins/hip/ops/add/add.h"

#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void add(Context& c, const AddParams& p) {
    if (p.a.dtype != DType::f32 || p.b.dtype != DType::f32 || p.out.dtype != DType::f32)
        unsupported("add", "tensors other than F32");
    if (p.a.numel() != p.out.numel() || p.b.numel() != p.out.numel())
        throw Error("add: a " + shape_string(p.a) + ", b " + shape_string(p.b) + " and out " + shape_string(p.out) +
                    " differ in size");
    launch_add(c.launch(), ptr<const float>(p.a), ptr<const float>(p.b), ptr<float>(p.out), p.out.numel());
}

}  // namespace halo::hip
