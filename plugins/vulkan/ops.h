// The Vulkan op table: one function per op, each in its own folder with its shaders.
#pragma once

#include "ops/backend.h"
#include "plugins/vulkan/context.h"
#include "plugins/vulkan/matmul/matmul.h"

namespace halo::vk {

// For each op of ops/op_list.h: void <op>(Context& c, <what Backend::<op> takes>), e.g.
//   void kda(Context& c, const ops::KdaParams& p, const ops::SeqBatch& batch);
#define HALO_VK_OP(name, Params, call, ...) void name(Context& c, HALO_OP_SIGNATURE(Params, call));
HALO_OPS(HALO_VK_OP)
#undef HALO_VK_OP

// The workspace bytes each op asks for (Workspace::begin) in a step of `rows` rows: the ops size their
// temporaries with these, and so does the memory plan (plan.cpp).
uint64_t mlp_workspace(const DeviceCaps& caps, int64_t rows, int64_t inter);
// Whether KDA runs a run of n tokens in the chunked form (else token by token).
bool kda_chunked(const DeviceCaps& caps, ops::KdaForm form, int64_t head_dim, int64_t n);
// rf, rg: rows of f_a and g_a; chunked: some run takes the chunked form.
uint64_t kda_workspace(const DeviceCaps& caps, int64_t rows, int64_t heads, int64_t head_dim, int64_t rf, int64_t rg,
                       int32_t chunk, bool chunked);
// The context splits of MLA attention for `rows` rows whose longest context is max_context.
uint32_t mla_splits(Context::MlaKernel kernel, int64_t rows, int64_t heads, int64_t rank, int64_t max_context);
uint64_t mla_workspace(const DeviceCaps& caps, int64_t rows, int64_t heads, int64_t nope_dim, int64_t rope_dim,
                       int64_t v_dim, int64_t rank, uint32_t splits);
// inter: the widest expert (shared included); shared: a shared expert is present.
uint64_t moe_workspace(const DeviceCaps& caps, int64_t rows, int64_t experts, int64_t hidden, int32_t top_k,
                       bool shared, int64_t inter);
// The plugin's own memory once steps up to `s` have run (workspace, staging), from the functions above.
std::vector<ops::InternalUse> plan_internal(const Context& c, const ops::StepShape& s);
// The workspace bytes plan_internal counts.
uint64_t planned_workspace(const Context& c, const ops::StepShape& s);

// out[r, i] = silu(g[r, i]) * u[r, i] (out may alias g); shared by mlp and the shared expert.
void swiglu(Context& c, int64_t rows, int64_t width, const Operand& g, const Operand& u, const Operand& o);

}  // namespace halo::vk
