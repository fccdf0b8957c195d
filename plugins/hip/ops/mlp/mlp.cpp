// mlp on HIP: gate and up products, SwiGLU (mlp.hip), down product, with the intermediates in the op workspace.
#include "plugins/hip/ops/mlp/mlp.h"

#include "plugins/hip/ops/linear/matmul.h"
#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void mlp(Context& c, const MlpParams& p) {
    if (p.x.dtype != DType::f32 || p.out.dtype != DType::f32) unsupported("mlp", "activations other than F32");
    const WeightView gate = weight_view(p.gate, "mlp"), up = weight_view(p.up, "mlp"), down = weight_view(p.down, "mlp");
    const int64_t rows = p.x.rows(), D = p.x.cols(), I = gate.rows;
    if (gate.cols != D || up.rows != I || up.cols != D || down.rows != D || down.cols != I || p.out.numel() != rows * D)
        throw Error("mlp: x " + shape_string(p.x) + ", gate " + shape_string(p.gate) + ", up " + shape_string(p.up) +
                    ", down " + shape_string(p.down) + " and out " + shape_string(p.out) + " do not fit");
    c.ws.begin_op();
    float* g = c.ws.take<float>(rows * I);
    float* u = c.ws.take<float>(rows * I);
    const float* x = ptr<const float>(p.x);
    matmul(c, x, D, rows, gate, g, I);
    matmul(c, x, D, rows, up, u, I);
    launch_silu_mul(c.launch(), g, I, u, I, rows, I, g, I);
    matmul(c, g, I, rows, down, ptr<float>(p.out), D);
}

}  // namespace halo::hip
