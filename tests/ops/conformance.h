// Shared pieces of the op conformance suite: the plugin parameter, the per-plugin lists of cases a plugin is known
// not to support (each with a reason, and checked: a listed case that passes fails the suite), and the comparison.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "tests/ops/harness.h"
#include "tests/support/plugins.h"

namespace halo::test {

// plugin -> case name prefix -> reason. Empty for every plugin today.
inline const std::map<std::string, std::map<std::string, std::string>>& expected_unsupported() {
    static const std::map<std::string, std::map<std::string, std::string>> list = {};
    return list;
}

// How a case stores a Linear weight: a float dtype, or a quantized format (q4 / q8) with `group` inputs per scale of
// scale_dtype. The reference dequantizes exactly (ops::weight_at), so quantized cases keep the float tolerances.
struct WeightSpec {
    ops::DType dtype = ops::DType::bf16;
    int32_t group = 32;
    ops::DType scale_dtype = ops::DType::bf16;

    // "BF16", "Q4g32", "Q8g48s F32" (scales other than BF16 are named)
    std::string name() const {
        std::string s = ops::dtype_name(dtype);
        if (!ops::is_quantized(dtype)) return s;
        s += "g" + std::to_string(group);
        if (scale_dtype != ops::DType::bf16) s += std::string("s") + ops::dtype_name(scale_dtype);
        return s;
    }
};

// A weight of a case as `spec` says, holding `values` (before quantization).
inline DualTensor& weight(OpHarness& h, const std::string& name, const WeightSpec& spec,
                          std::initializer_list<int64_t> dims, const std::vector<float>& values) {
    if (ops::is_quantized(spec.dtype)) return h.quantized(name, spec.dtype, spec.group, dims, values, spec.scale_dtype);
    return h.input(name, spec.dtype, dims, values);
}

class Conformance : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override { backend_ = load_plugin(GetParam()); }
    ops::Backend& plugin() { return backend_->backend(); }

    // Runs the case on the plugin and the reference, then compares every output within tol (normalised error:
    // max |plugin - reference| / rms(reference)).
    void run_case(const std::string& name, OpHarness& h, const std::function<void(ops::Backend&, bool ref)>& run,
                  const std::vector<const DualTensor*>& outputs, double tol) {
        std::string reason;
        if (auto p = expected_unsupported().find(GetParam()); p != expected_unsupported().end())
            for (const auto& [prefix, why] : p->second)
                if (name.rfind(prefix, 0) == 0) reason = why;
        std::string failure;
        try {
            run(h.plugin(), false);
            run(h.plugin(), true);
            for (const DualTensor* t : outputs) {
                const Comparison c = h.compare(*t);
                if (!c.problem.empty()) failure += c.problem + "; ";
                else if (!(c.normalised <= tol))
                    failure += "tensor '" + t->name + "': normalised error " + std::to_string(c.normalised) + " > " +
                               std::to_string(tol) + " (max abs " + std::to_string(c.max_abs) + ", ref rms " +
                               std::to_string(c.ref_rms) + "); ";
            }
        } catch (const std::exception& e) {
            failure = std::string("threw: ") + e.what();
        }
        if (!reason.empty()) {
            EXPECT_FALSE(failure.empty()) << name << " is listed as unsupported on " << GetParam() << " (" << reason
                                          << ") but passes: remove it from the list";
            return;
        }
        EXPECT_TRUE(failure.empty()) << name << " on " << GetParam() << ": " << failure;
    }

    std::unique_ptr<LoadedBackend> backend_;
};

}  // namespace halo::test
