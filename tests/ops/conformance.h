// Shared pieces of the op conformance suite: the plugin parameter, the per-plugin lists of cases a plugin is known
// not to support (each with a reason, and checked: a listed case that passes fails the suite), and the comparison.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/ops/harness.h"
#include "tests/support/plugins.h"

namespace halo::test {

// plugin -> case name prefix -> reason: the cases a plugin is known not to run ("" matches every case). A listed
// case is reported as not run (GTEST_SKIP, with the plugin's ops::Unsupported sentence or the failure and this
// reason), never as passed; a listed case that passes fails the suite, and so does an unlisted case the plugin
// answers ops::Unsupported.
inline const std::map<std::string, std::map<std::string, std::string>>& expected_unsupported() {
    static const std::map<std::string, std::map<std::string, std::string>> list = {
        {"skeleton", {{"", "the template for new backends implements no op"}}},
    };
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

// A step's runs of the given lengths (tokens per sequence, adding up to the step's rows), in row order, sequence i in
// slot i at position 0, and the SeqBatch over them. A case sets other fields of `runs` (slots, positions, page
// tables) itself; the batch sees them.
struct StepRuns {
    std::vector<ops::SeqRun> runs;
    ops::SeqBatch batch;
    template <class N>
    explicit StepRuns(const std::vector<N>& lengths) {
        int32_t row = 0;
        for (size_t i = 0; i < lengths.size(); ++i) {
            ops::SeqRun r;
            r.first_row = row;
            r.n_tokens = int32_t(lengths[i]);
            r.slot = int32_t(i);
            runs.push_back(r);
            row += int32_t(lengths[i]);
        }
        batch = {runs.data(), int32_t(runs.size()), row};
    }
    StepRuns(const StepRuns&) = delete;  // batch points into runs
    StepRuns& operator=(const StepRuns&) = delete;
};

class Conformance : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        // A plugin that cannot start here (no device) has its cases reported as not run, never as passed.
        if (const std::string why = unusable_reason(GetParam()); !why.empty())
            GTEST_SKIP() << "NOT RUN on " << GetParam() << ": the plugin cannot start here: " << why;
        backend_ = load_plugin(GetParam());
    }
    ops::Backend& plugin() { return backend_->backend(); }

    // Runs the case on the plugin and the reference, then compares every output within tol (normalised error:
    // max |plugin - reference| / rms(reference)).
    void run_case(const std::string& name, OpHarness& h, const std::function<void(ops::Backend&, bool ref)>& run,
                  const std::vector<const DualTensor*>& outputs, double tol) {
        std::string reason;
        if (auto p = expected_unsupported().find(GetParam()); p != expected_unsupported().end())
            for (const auto& [prefix, why] : p->second)
                if (name.rfind(prefix, 0) == 0) reason = why;
        std::string failure, unsupported;
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
        } catch (const ops::Unsupported& e) {  // from the plugin: the reference runs every op
            unsupported = e.what();
        } catch (const std::exception& e) {
            failure = std::string("threw: ") + e.what();
        }
        if (!unsupported.empty()) {
            if (reason.empty()) {
                ADD_FAILURE() << name << " on " << GetParam() << " is unsupported (" << unsupported
                              << ") but not listed in expected_unsupported(); list it with the reason, or implement it";
            } else if (not_run_.insert(unsupported).second) {  // one line per distinct sentence
                GTEST_SKIP() << "NOT RUN on " << GetParam() << ": " << name << " (and any later case with the same "
                             << "sentence): " << unsupported;
            }
            return;
        }
        if (!reason.empty()) {
            EXPECT_FALSE(failure.empty()) << name << " is listed as unsupported on " << GetParam() << " (" << reason
                                          << ") but passes: remove it from the list";
            if (!failure.empty())
                GTEST_SKIP() << "NOT RUN on " << GetParam() << ": " << name << " is expected to fail (" << reason
                             << "): " << failure;
            return;
        }
        EXPECT_TRUE(failure.empty()) << name << " on " << GetParam() << ": " << failure;
    }

    std::unique_ptr<LoadedBackend> backend_;
    std::set<std::string> not_run_;  // the sentences of the cases reported as not run so far
};

}  // namespace halo::test
