// linear on HIP: y = x W^T through the matrix product kernel (linear.hip), for every weight format.
#include "plugins/hip/ops/linear/matmul.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void matmul(Context& c, const float* x, int64_t ldx, int64_t rows, const WeightView& w, float* y, int64_t ldy) {
    launch_matmul(c.launch(), x, ldx, rows, w, y, ldy);
}

void linear(Context& c, const LinearParams& p) {
    if (p.x.dtype != DType::f32 || p.y.dtype != DType::f32)
        unsupported("linear", "activations other than F32 (x " + shape_string(p.x) + ", y " + shape_string(p.y) + ")");
    const WeightView w = weight_view(p.weight, "linear");
    if (p.x.cols() != w.cols || p.y.cols() != w.rows)
        throw Error("linear: x " + shape_string(p.x) + " and y " + shape_string(p.y) + " do not fit the weight " +
                    shape_string(p.weight));
    matmul(c, ptr<const float>(p.x), p.x.cols(), p.x.rows(), w, ptr<float>(p.y), p.y.cols());
}

}  // namespace halo::hip
