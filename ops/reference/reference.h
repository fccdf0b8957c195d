// The reference implementation of every op: plain, single-threaded, accumulating in double. It is the
// specification the plugins are tested against; clarity wins over speed here. All tensors must be host-addressable.
#pragma once

#include "ops/backend.h"

namespace halo::ref {

void embedding(const ops::EmbeddingParams& p);
void rms_norm(const ops::RmsNormParams& p);
void add(const ops::AddParams& p);
void linear(const ops::LinearParams& p);
void mlp(const ops::MlpParams& p);
void kda(const ops::KdaParams& p, const ops::SeqBatch& batch);
void mla(const ops::MlaParams& p, const ops::SeqBatch& batch);
void moe(const ops::MoeParams& p);

}  // namespace halo::ref
