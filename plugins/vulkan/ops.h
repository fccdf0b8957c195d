// The Vulkan op table: one function per op, each in its own folder with its shaders.
#pragma once

#include "ops/backend.h"
#include "plugins/vulkan/context.h"
#include "plugins/vulkan/matmul/matmul.h"

namespace halo::vk {

void embedding(Context& c, const ops::EmbeddingParams& p);
void rms_norm(Context& c, const ops::RmsNormParams& p);
void add(Context& c, const ops::AddParams& p);
void linear(Context& c, const ops::LinearParams& p);
void mlp(Context& c, const ops::MlpParams& p);
void kda(Context& c, const ops::KdaParams& p, const ops::SeqBatch& batch);
void mla(Context& c, const ops::MlaParams& p, const ops::SeqBatch& batch);
void moe(Context& c, const ops::MoeParams& p);

// out[r, i] = silu(g[r, i]) * u[r, i] (out may alias g); shared by mlp and the shared expert.
void swiglu(Context& c, int64_t rows, int64_t width, const Operand& g, const Operand& u, const Operand& o);

}  // namespace halo::vk
