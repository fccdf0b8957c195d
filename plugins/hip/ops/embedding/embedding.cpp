// embedding on HIP: one row of the table per id (embedding.hip). Ids are read on the device, so an id outside the
// table cannot be reported here: its row comes out as NaN (the core checks ids against the vocabulary first).
#include "plugins/hip/ops/embedding/embedding.h"

#include "plugins/hip/ops/ops.h"

namespace halo::hip {

using namespace halo::ops;

void embedding(Context& c, const EmbeddingParams& p) {
    if (p.table.quantized()) unsupported("embedding", "a quantized table " + shape_string(p.table) + " (keep it BF16/F16/F32)");
    if (p.ids.dtype != DType::i32 || p.out.dtype != DType::f32)
        unsupported("embedding", "ids other than I32 or output other than F32");
    if (p.out.cols() != p.table.cols() || p.out.rows() != p.ids.numel())
        throw Error("embedding: out " + shape_string(p.out) + " does not fit " + std::to_string(p.ids.numel()) +
                    " ids of table " + shape_string(p.table));
    launch_embedding(c.launch(), weight_view(p.table, "embedding"), ptr<const int32_t>(p.ids), p.ids.numel(),
                     ptr<float>(p.out));
}

}  // namespace halo::hip
