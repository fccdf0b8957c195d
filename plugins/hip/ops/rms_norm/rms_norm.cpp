// rms_norm on HIP (rms_norm.hip).
#include "plugins/hip/ops/rms_norm/rms_norm.h"

#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void rms_norm(Context& c, const RmsNormParams& p) {
    if (p.x.dtype != DType::f32 || p.out.dtype != DType::f32) unsupported("rms_norm", "activations other than F32");
    if (p.weight.quantized()) unsupported("rms_norm", "a quantized weight " + shape_string(p.weight));
    if (p.weight.numel() != p.x.cols() || p.out.numel() != p.x.numel())
        throw Error("rms_norm: x " + shape_string(p.x) + ", weight " + shape_string(p.weight) + " and out " +
                    shape_string(p.out) + " do not fit");
    WeightView w = weight_view(p.weight, "rms_norm");
    w.rows = 1;
    w.cols = p.x.cols();
    launch_rms_norm(c.launch(), ptr<const float>(p.x), p.x.cols(), p.x.rows(), p.x.cols(), w, p.eps, ptr<float>(p.out),
                    p.out.cols());
}

}  // namespace halo::hip
