#include "plugins/vulkan/matmul/matmul.h"

#include <algorithm>

#include "plugins/vulkan/matmul/matmul_shared.h"

namespace halo::vk {

using namespace halo::ops;

Operand activation(Context& c, const Tensor& t, const char* what) {
    if (t.dtype != DType::f32) throw Error(std::string("vulkan: activation '") + what + "' must be F32, not " + dtype_name(t.dtype));
    return {c.view(t, what), uint32_t(t.cols()), 0};
}

Operand shifted(Operand o, int64_t elems) {
    o.view.elem += uint32_t(elems);
    return o;
}

void matmul(Context& c, int64_t rows, int64_t batches, const Operand& x, const WeightOperand& w, const Operand& y,
            bool accumulate) {
    if (rows <= 0 || w.n <= 0 || batches <= 0) return;
    glsl::MatmulPush pc{};
    pc.n = uint32_t(w.n);
    pc.k = uint32_t(w.k);
    pc.x_off = x.view.elem;
    pc.ld_x = x.ld;
    pc.x_bs = x.batch_stride;
    pc.w_off = w.view.elem;
    pc.ld_w = w.ld;
    pc.w_bs = w.batch_stride;
    pc.w_dtype = uint32_t(w.dtype);
    pc.y_off = y.view.elem;
    pc.ld_y = y.ld;
    pc.y_bs = y.batch_stride;
    pc.accumulate = accumulate ? 1 : 0;
    const std::vector<Binding> b = {in(x.view), in(w.view), out(y.view)};
    if (rows <= 4) {
        // 16-byte loads need every row of x (F32, 4 per vec4) and of W (8 per uvec4 for 16-bit, 4 for F32)
        // to start on a 16-byte boundary of its window, and K to be a whole number of 8-element chunks.
        const uint32_t wq = w.dtype == DType::f32 ? 4 : 8;
        const bool x_ok = x.view.elem % 4 == 0 && x.ld % 4 == 0 && x.batch_stride % 4 == 0;
        const bool w_ok = w.view.elem % wq == 0 && w.ld % wq == 0 && w.batch_stride % wq == 0;
        pc.wide = (x_ok && w_ok && w.k % 8 == 0) ? 1 : 0;
        pc.rows = uint32_t(rows);
        const PipelineSpec spec{"gemv", true, {1, 1, 1}, sizeof(glsl::MatmulPush), {uint32_t(rows)}};
        const uint32_t g = groups(w.n, 4), gx = std::min<uint32_t>(g, 65535), gy = groups(g, gx);
        c.rec.dispatch(c.pipeline(spec), b, &pc, gx, gy, uint32_t(batches));
        return;
    }
    pc.rows = uint32_t(rows);
    pc.wide = 0;
    static const PipelineSpec spec{"gemm", false, {1, 1, 1}, sizeof(glsl::MatmulPush), {}};
    c.rec.dispatch(c.pipeline(spec), b, &pc, groups(w.n, 64), groups(rows, 64), uint32_t(batches));
}

void linear(Context& c, int64_t rows, const Operand& x, const Tensor& w, const Operand& y, const char* what, bool accumulate) {
    const int64_t K = w.cols();
    for (const RowBlock& blk : c.row_blocks(w, what)) {
        WeightOperand wo{blk.view, w.dtype, uint32_t(K), 0, blk.count, K};
        matmul(c, rows, 1, x, wo, shifted(y, blk.first), accumulate);
    }
}

}  // namespace halo::vk
