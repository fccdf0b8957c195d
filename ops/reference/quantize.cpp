#include "ops/reference/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace halo::ref {

void quantize_rows(const void* src, ops::DType src_dtype, int64_t rows, int64_t cols, ops::DType format, int32_t group,
                   ops::DType scale_dtype, uint8_t* packed, uint8_t* scales) {
    if (!ops::is_quantized(format)) throw std::invalid_argument("quantize_rows: format must be Q4 or Q8");
    if (group <= 0) throw std::invalid_argument("quantize_rows: group must be positive");
    const ops::WeightFormat f = ops::weight_format(format);
    const int32_t q_min = -f.zero, q_max = f.zero - 1;
    const float half_range = float(q_max - q_min) / 2.0f;
    const uint64_t rb = ops::row_bytes(format, cols);
    const int64_t groups = (cols + group - 1) / group;
    const size_t ss = ops::dtype_size(scale_dtype);
    std::vector<float> w(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) w[size_t(c)] = ops::load_as_f32(src, src_dtype, size_t(r * cols + c));
        uint8_t* out = packed + uint64_t(r) * rb;
        std::memset(out, 0, rb);
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * group, c1 = std::min<int64_t>(cols, c0 + group);
            float lo = 0, hi = 0;
            for (int64_t c = c0; c < c1; ++c) {
                lo = std::min(lo, w[size_t(c)]);
                hi = std::max(hi, w[size_t(c)]);
            }
            void* sdst = scales + (uint64_t(r) * uint64_t(groups) + uint64_t(g)) * ss;
            ops::store_from_f32(sdst, scale_dtype, 0, std::max(-lo, hi) / half_range);
            const float scale = ops::load_as_f32(sdst, scale_dtype, 0);  // the stored (rounded) scale
            for (int64_t c = c0; c < c1; ++c) {
                float q = 0;
                if (scale != 0 && std::isfinite(scale)) {
                    const float v = ops::bf16_to_f32(ops::f32_to_bf16(w[size_t(c)] / scale));
                    q = std::nearbyint(std::clamp(v, float(q_min), float(q_max)));  // default rounding: half to even
                }
                const uint32_t stored = uint32_t(int32_t(q) + f.zero);
                const int64_t word = c / f.block_elems, slot = c % f.block_elems;
                uint32_t v;
                std::memcpy(&v, out + word * 4, 4);
                v |= stored << (uint32_t(f.bits) * uint32_t(slot));
                std::memcpy(out + word * 4, &v, 4);
            }
        }
    }
}

}  // namespace halo::ref
