// The reference implementation of every op: plain, single-threaded, accumulating in double. It is the
// specification the plugins are tested against; clarity wins over speed here. All tensors must be host-addressable.
#pragma once

#include "ops/backend.h"

namespace halo::ref {

// One function per op of ops/op_list.h, named after it and taking what its Backend method takes, e.g.
//   void linear(const ops::LinearParams& p);
//   void kda(const ops::KdaParams& p, const ops::SeqBatch& batch);
// Each is defined, with its formula, in the file of its op (glue.cpp, kda.cpp, mla.cpp, moe.cpp).
#define HALO_REFERENCE_OP(name, Params, call, ...) void name(HALO_OP_SIGNATURE(Params, call));
HALO_OPS(HALO_REFERENCE_OP)
#undef HALO_REFERENCE_OP

}  // namespace halo::ref
