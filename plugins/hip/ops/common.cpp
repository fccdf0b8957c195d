#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void unsupported(const char* op, const std::string& why) {
    throw Unsupported(std::string(op) + " is not supported by the hip plugin: " + why);
}

WeightView weight_view(const Tensor& t, const char* op) {
    WeightView w;
    switch (t.dtype) {
    case DType::f32: w.kind = kF32; break;
    case DType::f16: w.kind = kF16; break;
    case DType::bf16: w.kind = kBF16; break;
    case DType::q4: w.kind = kQ4; break;
    case DType::q8: w.kind = kQ8; break;
    default: unsupported(op, std::string("a weight of dtype ") + dtype_name(t.dtype) + " " + shape_string(t));
    }
    w.data = ptr<const unsigned char>(t);
    w.rows = t.rows();
    w.cols = t.cols();
    w.row_bytes = t.row_stride();
    if (t.quantized()) {
        if (t.scale.group <= 0 || !t.scale.buffer)
            unsupported(op, "a quantized weight without scales " + shape_string(t));
        w.scales = device_address(t.scale.buffer, t.scale.offset);
        w.group = t.scale.group;
        w.scale_kind = t.scale.dtype == DType::bf16 ? kBF16 : t.scale.dtype == DType::f16 ? kF16 : kF32;
        w.scale_row_bytes = uint64_t(t.scale.cols(t.cols())) * dtype_size(t.scale.dtype);
    }
    return w;
}

WeightView weight_rows(const WeightView& w, int64_t first, int64_t count) {
    WeightView s = w;
    s.data += uint64_t(first) * w.row_bytes;
    if (s.scales) s.scales += uint64_t(first) * w.scale_row_bytes;
    s.rows = count;
    return s;
}

}  // namespace halo::hip
