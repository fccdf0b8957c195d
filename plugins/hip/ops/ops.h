// The HIP plugin's op table: for each op of ops/op_list.h, one function in ops/<op>/<op>.cpp taking the context and
// what Backend::<op> takes; its kernels are in <op>.hip beside it. Helpers every op uses are below.
#pragma once

#include <string>

#include "ops/backend.h"
#include "plugins/hip/context.h"
#include "plugins/hip/runtime/kernel_util.h"

namespace halo::hip {

#define HALO_HIP_OP(name, Params, call, ...) void name(Context& c, HALO_OP_SIGNATURE(Params, call));
HALO_OPS(HALO_HIP_OP)
#undef HALO_HIP_OP

// Throws ops::Unsupported: "<op> is not supported by the hip plugin: <why>".
[[noreturn]] void unsupported(const char* op, const std::string& why);

// The device address of a tensor's element 0.
template <class T>
T* ptr(const ops::Tensor& t) {
    return reinterpret_cast<T*>(device_address(t.buffer, t.offset));
}

// A weight tensor [rows, cols] of any dtype as kernels read it. Throws ops::Unsupported (naming `op`) for a dtype
// that is not a weight format.
WeightView weight_view(const ops::Tensor& t, const char* op);

// The rows-th slice: rows [first, first + count) of a weight view.
WeightView weight_rows(const WeightView& w, int64_t first, int64_t count);

}  // namespace halo::hip
