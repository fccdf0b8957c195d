// Check mode (core/check_backend.h) on every plugin: a correct plugin passes a prefill and decode of the tiny
// golden model with every op compared; a plugin that gets one op wrong is stopped at that op, with its layer named.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/check_backend.h"
#include "core/model.h"
#include "core/npy.h"
#include "tests/support/plugins.h"

namespace halo::test {

using namespace halo::ops;

namespace {

std::vector<int32_t> prompt_ids() {
    std::ifstream f(golden_dir() + "/tiny/prompt.json");
    return nlohmann::json::parse(f).at("ids").get<std::vector<int32_t>>();
}

std::unique_ptr<Model> tiny(Backend& b) {
    ModelOptions o;
    o.max_context = 128;
    o.page_size = 16;
    return std::make_unique<Model>(b, golden_dir() + "/tiny", o);
}

// Forwards everything to a plugin but adds 0.5 to one element of the MoE output of the third MoE call of a step.
class Sabotaged final : public ForwardingBackend {
public:
    explicit Sabotaged(Backend& inner) : ForwardingBackend(inner) {}
    void begin_step() override {
        moe_calls_ = 0;
        inner_.begin_step();
    }
    void moe(const MoeParams& p) override {
        inner_.moe(p);
        if (++moe_calls_ == 3) {
            float v = 0;
            inner_.read(p.out.buffer, p.out.offset, &v, 4);
            v += 0.5f;
            inner_.write(p.out.buffer, p.out.offset, &v, 4);
        }
    }

private:
    int moe_calls_ = 0;
};

class CheckMode : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(CheckMode, CorrectPluginPassesPrefillAndDecode) {
    auto plugin = load_plugin(GetParam());
    CheckBackend check(plugin->backend());
    auto m = tiny(check);
    const auto ids = prompt_ids();
    const auto want = read_npy(golden_dir() + "/tiny/logits.npy").as_floats();
    Sequence s;
    m->begin_sequence(s);
    std::vector<float> got = m->prefill(s, std::span<const int32_t>(ids).first(40), true);
    for (size_t i = 40; i < 44; ++i) {
        StepItem it{&s, std::span<const int32_t>(ids).subspan(i, 1), LogitRows::last};
        m->step(std::span<const StepItem>(&it, 1), got);
    }
    ASSERT_EQ(got.size(), want.size() / ids.size() * 44);
    float diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
    EXPECT_LE(diff, 1e-4f);
    EXPECT_GT(check.ops_checked(), 100u);
    for (const auto& [op, err] : check.worst()) std::printf("check mode on %s: worst %s error %.2g\n", GetParam().c_str(), op.c_str(), err);
}

TEST_P(CheckMode, NamesTheFirstOpThatDiverges) {
    auto plugin = load_plugin(GetParam());
    Sabotaged broken(plugin->backend());
    CheckBackend check(broken);
    auto m = tiny(check);
    const auto ids = prompt_ids();
    Sequence s;
    m->begin_sequence(s);
    try {
        m->prefill(s, std::span<const int32_t>(ids).first(8), false);
        ADD_FAILURE() << "check mode did not notice the broken op";
    } catch (const CheckError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("op 'moe'"), std::string::npos) << what;
        EXPECT_NE(what.find("layer 3"), std::string::npos) << what;  // the third MoE layer is layer 3 (layer 0 is dense)
    }
}

INSTANTIATE_TEST_SUITE_P(Plugins, CheckMode, ::testing::ValuesIn(plugins_under_test()),
                         [](const auto& info) { return info.param; });

}  // namespace halo::test
