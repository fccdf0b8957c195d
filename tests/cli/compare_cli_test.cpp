// engine compare: two backends on the same tokens. On the tiny golden model the CPU plugin and every other plugin
// that runs here (Vulkan on lavapipe in CI) agree to float32 rounding, A's greedy continuation is the golden one, and
// the prompt figures equal what the logits `engine logits` writes for each backend give; the CPU plugin against
// itself is bit-identical; an error injected on purpose (--perturb) is flagged with exit status 2 and the layer it
// was injected in, with the size the golden layer outputs predict; bad input gets one clear sentence.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "core/tokenizer/tokenizer.h"
#include "tests/cli/run_tool.h"
#include "tests/support/plugins.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Float32 tolerances, from the golden README: a float32 evaluation of the tiny model is within 7e-6 of float64 on
// logits of std 1 and max 4.9, so two float32 backends are within twice that of each other. 1e-4 (absolute on the
// logits, relative on the residual stream, whose rms is about 1) keeps a 7x margin for a different summation order;
// it is the golden test's own logit tolerance.
constexpr double kFloat32Error = 1e-4;

fs::path tiny_dir() { return fs::path(golden_dir()) / "tiny"; }

std::vector<int32_t> golden_ids(const char* file) {
    const json doc = json::parse(read_whole_file(tiny_dir() / file));
    return doc.at("ids").get<std::vector<int32_t>>();
}

std::string joined(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

// engine compare with `args` after the model and --prompt-ids (the golden prompt unless `prompt` is given; none
// when it is "-").
ToolRun compare(std::vector<std::string> args, const std::string& prompt = "") {
    std::vector<std::string> all = {"compare", "--model", tiny_dir().string(), "--threads", "2", "--quiet"};
    if (prompt != "-") {
        all.push_back("--prompt-ids");
        all.push_back(prompt.empty() ? joined(golden_ids("prompt.json")) : prompt);
    }
    all.insert(all.end(), args.begin(), args.end());
    return run_tool(HALO_ENGINE_EXE, all);
}

json parsed(const ToolRun& r) {
    try {
        return json::parse(r.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n" << r.out << "\nstderr:\n" << r.err;
        return json::object();
    }
}

double kl(const float* a, const float* b, int64_t n) {  // KL(softmax(a) || softmax(b)), in double
    auto lse = [n](const float* x) {
        double m = -INFINITY, s = 0;
        for (int64_t i = 0; i < n; ++i) m = std::max(m, double(x[i]));
        for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - m);
        return m + std::log(s);
    };
    const double la = lse(a), lb = lse(b);
    double k = 0;
    for (int64_t i = 0; i < n; ++i) k += std::exp(a[i] - la) * ((a[i] - la) - (b[i] - lb));
    return k;
}

// Hoeffding's lemma: KL(p || q) for q proportional to p * exp(d) is at most (max d - min d)^2 / 8 <= max|d|^2 / 2,
// so no row's KL can exceed half the square of the largest logit difference.
void expect_kl_bounded(const json& f, const std::string& what) {
    const double d = f.at("max_abs_diff").get<double>();
    EXPECT_LE(f.at("max_kl").get<double>(), d * d / 2 * (1 + 1e-6) + 1e-15) << what;
    EXPECT_LE(f.at("mean_kl").get<double>(), f.at("max_kl").get<double>()) << what;
}

TEST(CompareCli, CpuAgreesWithEveryOtherPluginOnTheTinyGolden) {
    std::vector<std::string> others;
    for (const std::string& p : plugins_under_test())
        if (p != "cpu") others.push_back(p);
    if (others.empty()) GTEST_SKIP() << "only the cpu plugin runs here (PluginInventory lists why the others do not)";
    const std::vector<int32_t> prompt = golden_ids("prompt.json"), greedy = golden_ids("greedy.json");
    const fs::path tmp = fs::temp_directory_path() / ("halo_compare_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    for (const std::string& other : others) {
        SCOPED_TRACE("cpu vs " + other);
        // The prompt's logits on each backend, written by another command.
        std::vector<NpyArray> logits;
        for (const std::string& b : {std::string("cpu"), other}) {
            const fs::path out = tmp / (b + ".npy");
            const ToolRun r = run_tool(HALO_ENGINE_EXE, {"logits", "--backend", b, "--model", tiny_dir().string(),
                                                         "--threads", "2", "--quiet", "--prompt-ids", joined(prompt),
                                                         "--out", out.string()});
            ASSERT_EQ(r.code, 0) << r.err;
            logits.push_back(read_npy(out));
        }
        const int64_t T = int64_t(prompt.size()), V = logits[0].shape.at(1);
        const std::vector<float> la = logits[0].as_floats(), lb = logits[1].as_floats();

        const ToolRun r = compare({"--backends", "cpu," + other, "--max-tokens", std::to_string(greedy.size()), "--json"});
        ASSERT_EQ(r.code, 0) << r.err << r.out;
        const json doc = parsed(r);
        EXPECT_TRUE(doc.at("agree").get<bool>());
        EXPECT_EQ(doc.at("prompt_tokens").get<int64_t>(), T);
        // A's greedy continuation is the float64 reference's, and B picks the same token at every one of them.
        EXPECT_EQ(doc.at("greedy").at("tokens_a").get<std::vector<int32_t>>(), greedy);
        EXPECT_EQ(doc.at("greedy").at("tokens_b").get<std::vector<int32_t>>(), greedy);
        EXPECT_TRUE(doc.at("greedy").at("first_difference").is_null());

        ASSERT_EQ(doc.at("layers").size(), 4u);
        for (const json& l : doc.at("layers")) {
            EXPECT_LE(l.at("normalised_error").get<double>(), kFloat32Error) << l.dump();
            EXPECT_GT(l.at("rms_a").get<double>(), 0.1) << l.dump();  // a residual stream, not zeros
        }
        EXPECT_EQ(doc.at("layers")[3].at("mixer"), "mla");
        EXPECT_EQ(doc.at("layers")[0].at("ffn"), "mlp");

        // The prompt figures are those of the two backends' logits as `engine logits` writes them.
        const json& pre = doc.at("logits").at("prefill");
        double max_diff = 0, kl_sum = 0;
        int64_t agree = 0;
        for (int64_t t = 0; t < T; ++t) {
            const float *a = la.data() + t * V, *b = lb.data() + t * V;
            for (int64_t i = 0; i < V; ++i) max_diff = std::max(max_diff, std::fabs(double(a[i]) - double(b[i])));
            kl_sum += kl(a, b, V);
            agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
        }
        EXPECT_EQ(pre.at("positions").get<int64_t>(), T);
        EXPECT_NEAR(pre.at("max_abs_diff").get<double>(), max_diff, 1e-12);
        EXPECT_NEAR(pre.at("mean_kl").get<double>(), kl_sum / double(T), 1e-6 * kl_sum / double(T) + 1e-15);
        EXPECT_EQ(pre.at("top1_agree").get<int64_t>(), agree);
        EXPECT_EQ(agree, T);
        const json& all = doc.at("logits").at("all");
        EXPECT_EQ(doc.at("logits").at("decode").at("positions").get<int64_t>(), int64_t(greedy.size()) - 1);
        EXPECT_EQ(all.at("positions").get<int64_t>(), T + int64_t(greedy.size()) - 1);
        EXPECT_LE(all.at("max_abs_diff").get<double>(), 2 * kFloat32Error);
        EXPECT_EQ(all.at("top1_agreement").get<double>(), 1.0);
        for (const char* part : {"prefill", "decode", "all"}) expect_kl_bounded(doc.at("logits").at(part), part);

        ASSERT_EQ(doc.at("speed").size(), 2u);
        for (const json& s : doc.at("speed")) {
            EXPECT_GT(s.at("prefill_tok_s").get<double>(), 0) << s.dump();
            EXPECT_EQ(s.at("decode_tokens").get<int64_t>(), int64_t(greedy.size()) - 1) << s.dump();
            EXPECT_GT(s.at("decode_tok_s").get<double>(), 0) << s.dump();
        }
        EXPECT_FALSE(doc.at("speed")[0].at("software_gpu").get<bool>());

        // Both backends get the same options: a placement only the CPU has is refused, naming the other backend.
        const ToolRun mmap = compare({"--backends", "cpu," + other, "--weights-placement", "mmap"});
        expect_clear_error(mmap, {"backend " + other + " (B)", "'mmap'", "--weights-placement"}, "a CPU placement");
    }
    fs::remove_all(tmp);
}

TEST(CompareCli, CpuAgainstItselfIsBitIdenticalAndPrintsTables) {
    const std::vector<int32_t> greedy = golden_ids("greedy.json");
    const ToolRun r = compare({"--backends", "cpu,cpu", "--max-tokens", "8", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json doc = parsed(r);
    for (const json& l : doc.at("layers")) EXPECT_EQ(l.at("normalised_error").get<double>(), 0.0) << l.dump();
    for (const char* part : {"prefill", "decode", "all"}) {
        const json& f = doc.at("logits").at(part);
        EXPECT_EQ(f.at("max_abs_diff").get<double>(), 0.0) << part;
        EXPECT_EQ(f.at("mean_kl").get<double>(), 0.0) << part;
        EXPECT_EQ(f.at("top1_agreement").get<double>(), 1.0) << part;
    }
    EXPECT_EQ(doc.at("greedy").at("tokens_a").get<std::vector<int32_t>>(),
              std::vector<int32_t>(greedy.begin(), greedy.begin() + 8));
    EXPECT_TRUE(doc.at("failures").empty());

    // The same for people: tables and a verdict.
    const ToolRun t = compare({"--backends", "cpu,cpu", "--max-tokens", "2"});
    ASSERT_EQ(t.code, 0) << t.err;
    for (const char* s : {"| layer | mixer | ffn | normalised error", "| 3 | mla | moe | 0 |", "| continuation (decode) | 1 |",
                          "| backend | device | prefill tok/s | decode tok/s |", "the backends agree"})
        EXPECT_NE(t.out.find(s), std::string::npos) << "no '" << s << "' in:\n" << t.out;
}

TEST(CompareCli, AnInjectedErrorIsFlaggedAtItsLayer) {
    // A 5% error in one op: far beyond the default --max-error (1e-2), far below what changes a token here.
    const ToolRun r = compare({"--backends", "cpu,cpu", "--max-tokens", "4", "--json", "--perturb", "B:kda:2:5e-2"});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("layer 2 (kda, moe) is the first to diverge"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--max-error"), std::string::npos) << r.err;
    const json doc = parsed(r);
    EXPECT_FALSE(doc.at("agree").get<bool>());
    EXPECT_EQ(doc.at("perturbed")[1], "B:kda:2:5e-2");
    EXPECT_TRUE(doc.at("perturbed")[0].is_null());
    const json& layers = doc.at("layers");
    EXPECT_EQ(layers[0].at("normalised_error").get<double>(), 0.0);  // before the error: bit-identical
    EXPECT_EQ(layers[1].at("normalised_error").get<double>(), 0.0);
    EXPECT_GT(layers[2].at("normalised_error").get<double>(), 1e-2);
    EXPECT_GT(layers[3].at("normalised_error").get<double>(), 0.0);
    EXPECT_GT(doc.at("logits").at("all").at("max_abs_diff").get<double>(), 0.0);

    // On backend A, in the MLA layer, in the table form.
    const ToolRun a = compare({"--backends", "cpu,cpu", "--max-tokens", "2", "--perturb", "A:mla:3:0.05"});
    EXPECT_EQ(a.code, 2) << a.err;
    EXPECT_NE(a.err.find("layer 3 (mla, moe) is the first to diverge"), std::string::npos) << a.err;
    EXPECT_NE(a.out.find("the backends DISAGREE"), std::string::npos) << a.out;
    EXPECT_NE(a.out.find("A:mla:3:0.05"), std::string::npos) << a.out;

    // Check mode, wrapped around the perturbed plugin, stops at the op itself.
    const ToolRun c = compare({"--backends", "cpu,cpu", "--max-tokens", "1", "--check", "--perturb", "B:kda:1:1e-2"},
                              "1,2,3,4,5");
    expect_clear_error(c, {"check mode", "op 'kda'", "layer 1", "diverges from the reference"}, "--check --perturb");
}

// Text goes through the model's tokenizer; without a prompt, a tokenizer's model gets "Once upon a time".
TEST(CompareCli, TextPromptsUseTheModelsTokenizer) {
    const tok::Tokenizer tokenizer = tok::Tokenizer::load(HALO_DEMO_DIR);
    for (const std::string text : {"", "The quick brown fox"}) {
        std::vector<std::string> args = {"compare", "--model", HALO_DEMO_DIR, "--backends", "cpu,cpu", "--threads", "2",
                                         "--quiet", "--max-tokens", "2", "--json"};
        if (!text.empty()) args.insert(args.end(), {"--prompt", text});
        const ToolRun r = run_tool(HALO_ENGINE_EXE, args);
        ASSERT_EQ(r.code, 0) << r.err;
        const std::vector<int32_t> want = tokenizer.encode(text.empty() ? "Once upon a time" : text);
        EXPECT_EQ(parsed(r).at("prompt_ids").get<std::vector<int32_t>>(), want) << text;
    }
}

// Scaling layer 0's MLP output by 1 + e moves that layer's output by exactly e * mlp_out, where mlp_out is the
// difference of the golden resid_L0 and attn_resid_L0: the figure must be e * max|mlp_out| / rms(resid_L0).
TEST(CompareCli, TheLayerFigureIsTheSizeTheGoldenPredicts) {
    const fs::path npz = tiny_dir() / "layer_outputs.npz";
    const std::vector<float> out = read_npz_member(npz, "resid_L0").as_floats();
    const std::vector<float> mid = read_npz_member(npz, "attn_resid_L0").as_floats();
    double mx = 0, ss = 0;
    for (size_t i = 0; i < out.size(); ++i) {
        mx = std::max(mx, std::fabs(double(out[i]) - double(mid[i])));
        ss += double(out[i]) * double(out[i]);
    }
    const double expected = 1e-2 * mx / std::sqrt(ss / double(out.size()));

    const ToolRun r = compare({"--backends", "cpu,cpu", "--max-tokens", "0", "--json", "--perturb", "B:mlp:0:1e-2",
                               "--max-error", "1", "--max-kl", "1", "--min-top1", "0"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json doc = parsed(r);
    // Float32 rounding: 1 + 1e-2 in float32 is off by up to 6e-8, 6e-6 of the perturbation; the engine's layer
    // outputs are within about 1e-5 of the float64 reference's on values of about 2 (5e-6 relative).
    EXPECT_NEAR(doc.at("layers")[0].at("normalised_error").get<double>(), expected, 1e-4 * expected);
    EXPECT_TRUE(doc.at("greedy").at("tokens_a").empty());
    EXPECT_EQ(doc.at("logits").at("decode").at("positions").get<int64_t>(), 0);
}

TEST(CompareCli, BadInputGetsOneSentence) {
    struct Case {
        std::vector<std::string> args;
        std::vector<std::string> words;
    };
    const std::vector<Case> cases = {
        {{}, {"--backends"}},
        {{"--backends", "cpu"}, {"--backends", "two backends"}},
        {{"--backends", "cpu,"}, {"--backends", "two backends"}},
        {{"--backends", "cpu,nosuch"}, {"nosuch", "not available"}},
        {{"--backends", "cpu,cpu", "--backend", "cpu"}, {"--backends A,B", "not --backend"}},
        {{"--backends", "cpu,cpu", "--perturb", "C:kda:0:1"}, {"--perturb", "A: or B:"}},
        {{"--backends", "cpu,cpu", "--perturb", "B:mla:0:1e-2"}, {"--perturb", "layer 0 has no mla op"}},
        {{"--backends", "cpu,cpu", "--perturb", "B:kda:7:1e-2"}, {"--perturb", "4 layers"}},
        {{"--backends", "cpu,cpu", "--perturb", "B:kda:0:zero"}, {"--perturb", "'zero'", "amount"}},
        {{"--backends", "cpu,cpu", "--perturb", "B:attn:0:1"}, {"--perturb", "'attn'", "OP:LAYER:AMOUNT"}},
        {{"--backends", "cpu,cpu", "--perturb", "B:kda:0:1", "--perturb", "B:moe:1:1"}, {"perturbed already"}},
        {{"--backends", "cpu,cpu", "--min-top1", "2"}, {"--min-top1", "between 0 and 1"}},
        {{"--backends", "cpu,cpu", "--max-tokens", "-1"}, {"--max-tokens"}},
        // The memory plan is checked as for every command that loads a model.
        {{"--backends", "cpu,cpu", "--memory-budget", "heap=1KB"}, {"memory plan does not fit", "'heap'", "--memory-budget"}},
    };
    for (const Case& c : cases) {
        const ToolRun r = compare(c.args);
        std::string what = "compare";
        for (const auto& a : c.args) what += " " + a;
        expect_clear_error(r, c.words, what);
        EXPECT_EQ(r.code, 1) << what;  // 2 means "ran and disagreed"
        EXPECT_LT(r.seconds, 10) << what;
    }
    const ToolRun text = compare({"--backends", "cpu,cpu", "--prompt", "hello"}, "-");
    expect_clear_error(text, {"--prompt", "tiktoken.model", "--prompt-ids"}, "--prompt on a model without a tokenizer");
    const ToolRun both = compare({"--backends", "cpu,cpu", "--prompt", "hello"});
    expect_clear_error(both, {"only one of --prompt and --prompt-ids"}, "--prompt and --prompt-ids");
    const ToolRun ids = compare({"--backends", "cpu,cpu"}, "1,999");
    expect_clear_error(ids, {"--prompt-ids", "999", "vocabulary"}, "a prompt id outside the vocabulary");
}

}  // namespace
}  // namespace halo::test
