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
    pc.w = w.ref;
    pc.y_off = y.view.elem;
    pc.ld_y = y.ld;
    pc.y_bs = y.batch_stride;
    pc.accumulate = accumulate ? 1 : 0;
    const std::vector<Binding> b = {in(x.view), in(w.data), in(w.scales), out(y.view)};
    // 8-element weight loads need K a whole number of 8-element runs and float rows on 16-byte boundaries
    // (weight_chunks); gemv's 16-byte x loads need every row of x (F32, 4 per vec4) on a 16-byte boundary too.
    const bool w_ok = weight_chunks(w.ref, w.k);
    if (rows <= 4) {
        const bool x_ok = x.view.elem % 4 == 0 && x.ld % 4 == 0 && x.batch_stride % 4 == 0;
        pc.wide = (x_ok && w_ok) ? 1 : 0;
        pc.rows = uint32_t(rows);
        const PipelineSpec spec{"gemv", true, {1, 2, 1}, sizeof(glsl::MatmulPush), {uint32_t(rows)}};
        const uint32_t g = groups(w.n, 4), gx = std::min<uint32_t>(g, 65535), gy = groups(g, gx);
        c.rec.dispatch(c.pipeline(spec), b, &pc, gx, gy, uint32_t(batches));
        return;
    }
    pc.rows = uint32_t(rows);
    pc.wide = w_ok ? 1 : 0;
    static const PipelineSpec spec{"gemm", false, {1, 2, 1}, sizeof(glsl::MatmulPush), {}};
    c.rec.dispatch(c.pipeline(spec), b, &pc, groups(w.n, 64), groups(rows, 64), uint32_t(batches));
}

void linear(Context& c, int64_t rows, const Operand& x, const Tensor& w, const Operand& y, const char* what, bool accumulate) {
    check_weight(w, what);
    for (const RowBlock& blk : c.row_blocks(w, what)) {
        WeightOperand wo;
        wo.data = blk.view;
        wo.scales = w.quantized() ? blk.scales : blk.view;
        wo.ref = weight_ref(w, 0, blk.view.elem, 1, blk.scales.elem);
        wo.n = blk.count;
        wo.k = w.cols();
        matmul(c, rows, 1, x, wo, shifted(y, blk.first), accumulate);
    }
}

}  // namespace halo::vk
