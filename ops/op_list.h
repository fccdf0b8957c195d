// The op list: every op of the plugin interface, declared once. The Backend interface (ops/backend.h), the
// decorators in core/ (forwarding, timing, check mode, perturbation, layer capture), the reference backend and the
// plugins' op tables are all derived from HALO_OPS, so none of them names the ops one by one.
//
// To add an op (8 sites in 8 files. Before this list it was 19 sites in 18 files for two plugins, and up to 24 in 20
// for an op that belongs to a layer, because each of the places derived below restated the list):
//   1. its line in HALO_OPS below;
//   2. its params struct in ops/ (glue_ops.h, or a header of its own included here) with for_each_tensor() naming
//      each tensor's part (input, weight, output, inout), which is all check mode needs (kda, mla and moe have
//      specialised checks in core/check_backend.cpp instead, copying only the state slots, pages and experts used);
//   3. its reference, ref::<name>, in ops/reference/ (declared and put in the reference backend's table from here);
//   4. its conformance cases in tests/ops/;
//   5-8. one file per plugin: plugins/cpu/<name>.cpp (cpu::<name>), plugins/vulkan/<name>/ (vk::<name>, shaders
//      beside it), plugins/hip/ops/<name>/<name>.cpp (hip::<name>, its kernels in <name>.hip beside it),
//      plugins/skeleton/ops/<name>/<name>.cpp (skeleton::<name>, answering "not supported").
// Not counted: a new source file is also named in its folder's CMakeLists.txt (ops/, tests/, plugins/cpu/) or, for
// a shader, in plugins/vulkan/shaders.cmake; the Vulkan, HIP and skeleton plugins pick up their files themselves.
// Changing the list changes the Backend vtable: bump kAbiVersion in ops/backend.h.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "ops/batch.h"
#include "ops/glue_ops.h"
#include "ops/kda.h"
#include "ops/mla.h"
#include "ops/moe.h"
#include "ops/tensor.h"

// X(name, Params, call, output, role, check_tolerance), in Backend vtable order:
//   name             the Backend method, the reference function ref::<name> and each plugin's <plugin>::<name>
//   Params           its parameter struct in halo::ops
//   call             params: the method takes `const Params& p`; params_batch: also the step's `const SeqBatch& batch`
//   output           the member of Params holding the op's main output (timed by its rows, perturbed by PerturbBackend)
//   role             glue, mixer (starts a decoder layer: the core issues [norm, mixer, add, norm, ffn, add] per
//                    layer) or ffn (the layer's feed-forward block)
//   check_tolerance  check mode's default normalised error bound, max |plugin - reference| / rms(reference):
//     embedding 1e-6: a copy; add 1e-6: one F32 addition; rms_norm 1e-5: an F32 sum of squares over the row;
//     linear 1e-3: F32 dot products of up to 9216 terms (the conformance suite's 1e-4 covers <= 2304);
//     mlp 1e-3: two such products in a row; kda 1e-3: F32 state over a 512-token prefill chunk (conformance: 1e-4
//     over 200 tokens); mla 1e-3: F32 softmax over the context (BF16/F16 caches: 2e-2 / 5e-3, one rounding step,
//     in core/check_backend.cpp); moe 1e-3: rows whose routing is a near-tie (< 1e-5 apart) are compared only
//     where both agree.
#define HALO_OPS(X)                                              \
    X(embedding, EmbeddingParams, params, out, glue, 1e-6)       \
    X(rms_norm, RmsNormParams, params, out, glue, 1e-5)          \
    X(add, AddParams, params, out, glue, 1e-6)                   \
    X(linear, LinearParams, params, y, glue, 1e-3)               \
    X(mlp, MlpParams, params, out, ffn, 1e-3)                    \
    X(kda, KdaParams, params_batch, out, mixer, 1e-3)            \
    X(mla, MlaParams, params_batch, out, mixer, 1e-3)            \
    X(moe, MoeParams, params, out, ffn, 1e-3)

// The parameter list of an op's method, and the argument list that passes it on unchanged:
//   void kda(HALO_OP_SIGNATURE(KdaParams, params_batch))  ->  void kda(const KdaParams& p, const SeqBatch& batch)
//   inner.kda(HALO_OP_ARGS(params_batch))                 ->  inner.kda(p, batch)
#define HALO_OP_SIGNATURE(Params, call) HALO_OP_SIGNATURE_##call(Params)
#define HALO_OP_SIGNATURE_params(Params) const ::halo::ops::Params& p
#define HALO_OP_SIGNATURE_params_batch(Params) const ::halo::ops::Params& p, const ::halo::ops::SeqBatch& batch
#define HALO_OP_ARGS(call) HALO_OP_ARGS_##call
#define HALO_OP_ARGS_params p
#define HALO_OP_ARGS_params_batch p, batch
#define HALO_OP_TAKES_BATCH_params false
#define HALO_OP_TAKES_BATCH_params_batch true

namespace halo::ops {

enum class Op : uint32_t {
#define HALO_OP_ENUM(name, ...) name,
    HALO_OPS(HALO_OP_ENUM)
#undef HALO_OP_ENUM
};

#define HALO_OP_COUNT(...) +1
constexpr int kOpCount = 0 HALO_OPS(HALO_OP_COUNT);
#undef HALO_OP_COUNT

enum class OpRole : uint32_t { glue, mixer, ffn };

struct OpTraits {
    const char* name;  // "kda"
    OpRole role;
    bool takes_batch;  // the method takes the step's SeqBatch
};

inline constexpr OpTraits kOpTraits[kOpCount] = {
#define HALO_OP_TRAITS(name, Params, call, output, role, ...) {#name, OpRole::role, HALO_OP_TAKES_BATCH_##call},
    HALO_OPS(HALO_OP_TRAITS)
#undef HALO_OP_TRAITS
};

constexpr const OpTraits& op_traits(Op op) { return kOpTraits[uint32_t(op)]; }
constexpr const char* op_name(Op op) { return op_traits(op).name; }

// The op a params struct belongs to (op_of<KdaParams> == Op::kda), and the tensor holding its main output.
template <class Params>
inline constexpr Op op_of = Op(kOpCount);
#define HALO_OP_OF(name, Params, call, output, ...)                         \
    template <>                                                             \
    inline constexpr Op op_of<Params> = Op::name;                           \
    inline const Tensor& op_output(const Params& p) { return p.output; }
HALO_OPS(HALO_OP_OF)
#undef HALO_OP_OF

// One op call with its arguments, whichever op it is: what a decorator that treats every op alike receives
// (core/forwarding_backend.h). The params and batch are the caller's and live only during the call.
struct OpCall {
#define HALO_OP_PTR(name, Params, ...) const Params*,
    std::variant<HALO_OPS(HALO_OP_PTR) std::monostate> params = std::monostate{};  // monostate: no op
#undef HALO_OP_PTR
    const SeqBatch* batch = nullptr;  // set exactly for the ops that take the step's batch

    OpCall() = default;
    // From what an op's Backend method takes: OpCall(p) or, for the ops that take the step's batch, OpCall(p, batch).
    template <class Params>
    explicit OpCall(const Params& p) : params(&p) {
        static_assert(op_of<Params> != Op(kOpCount), "not the params struct of an op in HALO_OPS");
        static_assert(!op_traits(op_of<Params>).takes_batch, "this op also takes the step's SeqBatch");
    }
    template <class Params>
    OpCall(const Params& p, const SeqBatch& b) : params(&p), batch(&b) {
        static_assert(op_of<Params> != Op(kOpCount), "not the params struct of an op in HALO_OPS");
        static_assert(op_traits(op_of<Params>).takes_batch, "this op takes no SeqBatch");
    }

    Op op() const { return Op(params.index()); }
    const OpTraits& traits() const { return op_traits(op()); }
    const Tensor& output() const;
};

// Calls f(params) with the call's params struct, typed (f is usually a generic lambda or an overload set).
template <class F>
decltype(auto) visit_params(const OpCall& call, F&& f) {
    using First = std::remove_pointer_t<std::variant_alternative_t<0, decltype(call.params)>>;
    using Result = decltype(f(std::declval<First&>()));  // the same for every op
    return std::visit(
        [&](auto alternative) -> Result {
            if constexpr (std::is_same_v<decltype(alternative), std::monostate>)
                throw std::logic_error("an empty OpCall was run");
            else
                return f(*alternative);
        },
        call.params);
}

inline const Tensor& OpCall::output() const {
    return visit_params(*this, [](const auto& p) -> const Tensor& { return op_output(p); });
}

}  // namespace halo::ops
