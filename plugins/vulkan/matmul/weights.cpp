#include "plugins/vulkan/matmul/weights.h"

#include <algorithm>
#include <string>

namespace halo::vk {

using namespace halo::ops;

namespace {

bool float_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

}  // namespace

void check_weight(const Tensor& w, const char* what) {
    if (!w.present()) throw Error(std::string("vulkan: weight '") + what + "' is missing");
    if (float_dtype(w.dtype)) return;
    if (!w.quantized())
        throw Error(std::string("vulkan: weight '") + what + "' " + shape_string(w) +
                    " has a dtype the plugin cannot read as a matrix; use F32, F16, BF16, Q4 or Q8");
    if (!w.scale.buffer)
        throw Error(std::string("vulkan: quantized weight '") + what + "' " + shape_string(w) +
                    " has no scale buffer (Tensor::scale); a Q4/Q8 tensor needs its per-group scales");
    if (w.scale.group <= 0)
        throw Error(std::string("vulkan: quantized weight '") + what + "' " + shape_string(w) + " has group " +
                    std::to_string(w.scale.group) + "; the elements per scale must be positive");
    if (!float_dtype(w.scale.dtype))
        throw Error(std::string("vulkan: the scales of quantized weight '") + what + "' " + shape_string(w) + " are " +
                    dtype_name(w.scale.dtype) + "; use F32, F16 or BF16 scales");
}

glsl::WeightRef weight_ref(const Tensor& w, uint32_t data_slot, uint32_t data_elem, uint32_t scale_slot,
                           uint32_t scale_elem) {
    glsl::WeightRef r{};
    r.off = data_elem;
    r.ld = uint32_t(w.row_stride() / storage_unit(w.dtype));
    r.format = uint32_t(w.dtype) | data_slot << 8;
    r.group = 1;
    if (w.quantized()) {
        r.format |= uint32_t(w.scale.dtype) << 4 | scale_slot << 16;
        r.scale_off = scale_elem;
        r.scale_ld = uint32_t(w.scale.cols(w.cols()));
        // A group wider than the row has one scale per row, as a group of exactly cols does.
        r.group = uint32_t(std::min<int64_t>(w.scale.group, std::max<int64_t>(w.cols(), 1)));
    }
    return r;
}

bool weight_chunks(const glsl::WeightRef& r, int64_t k) {
    if (k % 8 != 0) return false;
    const uint32_t dt = HALO_WEIGHT_DTYPE(r.format);
    if (dt == HALO_DT_Q4 || dt == HALO_DT_Q8) return true;  // word loads: any word offset
    const uint32_t per16 = dt == HALO_DT_F32 ? 4 : 8;      // elements per 16-byte load
    return r.off % per16 == 0 && r.ld % per16 == 0 && r.bs % per16 == 0;
}

WeightOperand weight_operand(Context& c, const Tensor& w, const char* what) {
    check_weight(w, what);
    WeightOperand o;
    o.data = c.view(w, what);
    o.scales = w.quantized() ? c.scale_view(w, what) : o.data;
    o.ref = weight_ref(w, 0, o.data.elem, 1, o.scales.elem);
    o.n = w.rows();
    o.k = w.cols();
    return o;
}

WeightOperand weight_rows(WeightOperand w, int64_t first, int64_t count, int64_t batch_rows) {
    w.ref.off += uint32_t(first) * w.ref.ld;
    w.ref.bs = uint32_t(batch_rows) * w.ref.ld;
    w.ref.scale_off += uint32_t(first) * w.ref.scale_ld;
    w.ref.scale_bs = uint32_t(batch_rows) * w.ref.scale_ld;
    w.n = count;
    return w;
}

}  // namespace halo::vk
