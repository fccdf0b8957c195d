// Vulkan glue ops: embedding (table split into row windows when larger than one binding), RMSNorm, residual add,
// linear (matmul/), dense SwiGLU MLP (two products into the workspace, the gate, the down product).
#include "plugins/vulkan/glue/glue_shared.h"
#include "plugins/vulkan/matmul/matmul.h"
#include "plugins/vulkan/ops.h"

namespace halo::vk {

using namespace halo::ops;

void embedding(Context& c, const EmbeddingParams& p) {
    const int64_t rows = p.ids.numel(), width = p.table.cols(), vocab = p.table.rows();
    if (rows == 0) return;
    if (p.ids.dtype != DType::i32) throw Error("vulkan embedding: ids must be I32, not " + std::string(dtype_name(p.ids.dtype)));
    if (p.table.quantized())
        throw Error("vulkan embedding: the table " + shape_string(p.table) +
                    " is quantized; embeddings are read as F32, F16 or BF16 (keep the table unquantized)");
    static const PipelineSpec spec{"embedding", false, {1, 1, 1}, sizeof(glsl::EmbeddingPush), {}};
    const View ids = c.view(p.ids, "embedding ids"), dst = c.view(p.out, "embedding out");
    bool first = true;
    for (const RowBlock& blk : c.row_blocks(p.table, "embedding table")) {
        glsl::EmbeddingPush pc{};
        pc.rows = uint32_t(rows);
        pc.width = uint32_t(width);
        pc.table_off = blk.view.elem;
        pc.table_dtype = uint32_t(p.table.dtype);
        pc.ids_off = ids.elem;
        pc.out_off = dst.elem;
        pc.v0 = int32_t(blk.first);
        pc.v1 = int32_t(blk.first + blk.count);
        pc.vocab = int32_t(vocab);
        pc.zero_invalid = first ? 1 : 0;
        first = false;
        c.rec.dispatch(c.pipeline(spec), {in(blk.view), in(ids), out(dst)}, &pc, groups(width, 256), uint32_t(rows));
    }
}

void rms_norm(Context& c, const RmsNormParams& p) {
    const int64_t rows = p.x.rows(), width = p.x.cols();
    if (rows == 0) return;
    const View x = c.view(p.x, "rms_norm x"), w = c.view(p.weight, "rms_norm weight"), o = c.view(p.out, "rms_norm out");
    glsl::RmsNormPush pc{};
    pc.rows = uint32_t(rows);
    pc.width = uint32_t(width);
    pc.x_off = x.elem;
    pc.ld_x = uint32_t(width);
    pc.w_off = w.elem;
    pc.w_dtype = uint32_t(p.weight.dtype);
    pc.out_off = o.elem;
    pc.ld_out = uint32_t(p.out.cols());
    pc.eps = p.eps;
    static const PipelineSpec spec{"rms_norm", false, {1, 1, 1}, sizeof(glsl::RmsNormPush), {}};
    c.rec.dispatch(c.pipeline(spec), {in(x), in(w), out(o)}, &pc, uint32_t(rows));
}

void add(Context& c, const AddParams& p) {
    const int64_t n = p.out.numel();
    if (n == 0) return;
    const View a = c.view(p.a, "add a"), b = c.view(p.b, "add b"), o = c.view(p.out, "add out");
    glsl::AddPush pc{uint32_t(n), a.elem, b.elem, o.elem};
    static const PipelineSpec spec{"add", false, {1, 1, 1}, sizeof(glsl::AddPush), {}};
    const uint32_t g = groups(n, 256), gx = std::min<uint32_t>(g, 65535);
    c.rec.dispatch(c.pipeline(spec), {in(a), in(b), out(o)}, &pc, gx, groups(g, gx));
}

void linear(Context& c, const LinearParams& p) {
    linear(c, p.x.rows(), activation(c, p.x, "linear x"), p.weight, activation(c, p.y, "linear y"), "linear weight");
}

void swiglu(Context& c, int64_t rows, int64_t width, const Operand& g, const Operand& u, const Operand& o) {
    glsl::SwigluPush pc{uint32_t(rows), uint32_t(width), g.view.elem, g.ld, u.view.elem, u.ld, o.view.elem, o.ld};
    static const PipelineSpec spec{"swiglu", false, {1, 1, 1}, sizeof(glsl::SwigluPush), {}};
    c.rec.dispatch(c.pipeline(spec), {in(g.view), in(u.view), out(o.view)}, &pc, groups(width, 256), uint32_t(rows));
}

uint64_t mlp_workspace(const DeviceCaps& caps, int64_t rows, int64_t inter) {
    return 2 * workspace_cost(uint64_t(rows * inter) * 4, caps.storage_align);
}

void mlp(Context& c, const MlpParams& p) {
    const int64_t rows = p.x.rows(), inter = p.gate.rows();
    if (rows == 0) return;
    c.ws.begin(mlp_workspace(c.caps(), rows, inter), "mlp");
    const Operand g{c.ws.take(uint64_t(rows * inter) * 4), uint32_t(inter), 0};
    const Operand u{c.ws.take(uint64_t(rows * inter) * 4), uint32_t(inter), 0};
    const Operand x = activation(c, p.x, "mlp x");
    linear(c, rows, x, p.gate, g, "mlp gate");
    linear(c, rows, x, p.up, u, "mlp up");
    swiglu(c, rows, inter, g, u, g);
    linear(c, rows, g, p.down, activation(c, p.out, "mlp out"), "mlp down");
}

}  // namespace halo::vk
