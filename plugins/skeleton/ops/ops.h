// The skeleton's op table: for each op of ops/op_list.h, one function in ops/<op>/<op>.cpp taking the context and
// what Backend::<op> takes, e.g.
//   void linear(Context& c, const ops::LinearParams& p);
//   void kda(Context& c, const ops::KdaParams& p, const ops::SeqBatch& batch);
// A real backend puts its kernel (<op>.hip, <op>.comp) beside that file.
#pragma once

#include <string>

#include "ops/backend.h"
#include "plugins/skeleton/context.h"

namespace halo::skeleton {

#define HALO_SKELETON_OP(name, Params, call, ...) void name(Context& c, HALO_OP_SIGNATURE(Params, call));
HALO_OPS(HALO_SKELETON_OP)
#undef HALO_SKELETON_OP

// Why every op of the skeleton is unsupported.
constexpr const char* kNoKernels =
    "it is the template for new backends and has no kernels (run the cpu or vulkan backend)";

// Throws ops::Unsupported: "<op> is not supported by the skeleton plugin: <why>". A real backend throws it for the
// inputs it does not handle yet (a dtype, a head size), saying which.
[[noreturn]] void unsupported(const char* op, const std::string& why);

}  // namespace halo::skeleton
