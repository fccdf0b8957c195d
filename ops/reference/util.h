// Small helpers shared by the reference ops (not part of the op interface).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "ops/backend.h"

namespace halo::ref {

// Element i (flat, row-major) of a host tensor as double; quantized weights are dequantized exactly.
inline double at(const ops::Tensor& t, int64_t i) {
    if (t.quantized()) return ops::weight_at(t, i / t.cols(), i % t.cols());
    return ops::load_as_f32(t.host(), t.dtype, size_t(i));
}

// y[n] = sum_k W[n, k] * x[k] for a weight W [N, K] of any float dtype; x holds K doubles.
inline void matvec(const ops::Tensor& w, const double* x, double* y) {
    const int64_t n_out = w.rows(), n_in = w.cols();
    for (int64_t n = 0; n < n_out; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < n_in; ++k) acc += at(w, n * n_in + k) * x[k];
        y[n] = acc;
    }
}

// Row r of an F32 activation matrix as doubles.
inline std::vector<double> row(const ops::Tensor& t, int64_t r) {
    std::vector<double> v(size_t(t.cols()));
    const float* p = t.host_as<float>() + r * t.cols();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
    return v;
}

inline void store_row(const ops::Tensor& t, int64_t r, const double* v) {
    float* p = t.host_as<float>() + r * t.cols();
    for (int64_t i = 0; i < t.cols(); ++i) p[i] = float(v[i]);
}

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }  // beta 1, threshold 20

// Throws unless the tensor is host-addressable; the reference cannot read device memory.
inline void require_host(const ops::Tensor& t, const char* what) {
    if (t.present() && (!t.host() || (t.quantized() && !t.scale_host())))
        throw ops::Error(std::string("reference op: tensor '") + what + "' is not in host-addressable memory");
}

}  // namespace halo::ref
