// Parameter structs of the row-wise glue ops: embedding lookup, RMSNorm, residual add, linear, dense SwiGLU MLP.
// They need no sequence information: every row of the step is independent.
// Activations are F32 [rows, width]; weights may be F32, F16 or BF16. "out" may alias an input where noted.
// for_each_tensor(f) calls f(name, tensor, TensorRole) for each tensor of the op (what check mode copies and compares).
#pragma once

#include "ops/batch.h"
#include "ops/tensor.h"

namespace halo::ops {

// out[r, :] = table[ids[r], :]. table [V, D] any float dtype; ids [R] I32 in a plugin buffer; out [R, D] F32.
// An id outside [0, V) is a caller bug; plugins may clamp or fault but must not write outside out.
struct EmbeddingParams {
    Tensor table;
    Tensor ids;
    Tensor out;

    template <class F>
    void for_each_tensor(F&& f) {
        f("table", table, TensorRole::weight);
        f("ids", ids, TensorRole::input);
        f("out", out, TensorRole::output);
    }
};

// out[r, :] = x[r, :] * rsqrt(mean_d(x[r, d]^2) + eps) * weight. x, out [R, D] F32 (out may alias x); weight [D].
struct RmsNormParams {
    Tensor x;
    Tensor weight;
    Tensor out;
    float eps = 1e-5f;

    template <class F>
    void for_each_tensor(F&& f) {
        f("x", x, TensorRole::input);
        f("weight", weight, TensorRole::weight);
        f("out", out, TensorRole::output);
    }
};

// out = a + b, all [R, D] F32; out may alias a or b.
struct AddParams {
    Tensor a;
    Tensor b;
    Tensor out;

    template <class F>
    void for_each_tensor(F&& f) {
        f("a", a, TensorRole::input);
        f("b", b, TensorRole::input);
        f("out", out, TensorRole::output);
    }
};

// y[R, N] = x[R, K] * W[N, K]^T (PyTorch layout, no bias). x, y F32; W any float dtype.
struct LinearParams {
    Tensor x;
    Tensor weight;
    Tensor y;

    template <class F>
    void for_each_tensor(F&& f) {
        f("x", x, TensorRole::input);
        f("weight", weight, TensorRole::weight);
        f("y", y, TensorRole::output);
    }
};

// out = down( silu(gate(x)) * up(x) ). gate, up [I, D]; down [D, I]; x, out [R, D] F32 (out must not alias x).
struct MlpParams {
    Tensor x;
    Tensor gate;
    Tensor up;
    Tensor down;
    Tensor out;
    // The step's runs when the rows are a forward step's (optional): a plugin may treat the rows of one-token runs
    // (decode) and of prompt chunks differently, e.g. to give each row the same result whatever else is in the step.
    const SeqBatch* batch = nullptr;

    template <class F>
    void for_each_tensor(F&& f) {
        f("x", x, TensorRole::input);
        f("gate", gate, TensorRole::weight);
        f("up", up, TensorRole::weight);
        f("down", down, TensorRole::weight);
        f("out", out, TensorRole::output);
    }
};

}  // namespace halo::ops
