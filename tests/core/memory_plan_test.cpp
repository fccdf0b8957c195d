// The memory plan: the real 48B-A3B config against the model card's arithmetic, the plan against what loading and
// running actually allocate on every plugin, context = "auto", and the refusal of a plan that does not fit.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/cli/common.h"
#include "core/model.h"
#include "core/weights.h"
#include "tests/cli/run_tool.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"
#include "tools/gen/checkpoint_writer.h"

namespace halo::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// moonshotai/Kimi-Linear-48B-A3B-Instruct config.json, as released.
const char* kKimi48BConfig = R"({
  "architectures": ["KimiLinearForCausalLM"],
  "bos_token_id": 163584, "dtype": "bfloat16", "eos_token_id": 163586, "first_k_dense_replace": 1, "head_dim": 72,
  "hidden_act": "silu", "hidden_size": 2304, "initializer_range": 0.02, "intermediate_size": 9216,
  "kv_lora_rank": 512,
  "linear_attn_config": {
    "full_attn_layers": [4, 8, 12, 16, 20, 24, 27], "head_dim": 128,
    "kda_layers": [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26],
    "num_heads": 32, "short_conv_kernel_size": 4
  },
  "mla_use_nope": true, "model_max_length": 1048576, "model_type": "kimi_linear", "moe_intermediate_size": 1024,
  "moe_layer_freq": 1, "moe_renormalize": true, "moe_router_activation_func": "sigmoid", "num_attention_heads": 32,
  "num_expert_group": 1, "num_experts": 256, "num_experts_per_token": 8, "num_hidden_layers": 27,
  "num_key_value_heads": 32, "num_nextn_predict_layers": 0, "num_shared_experts": 1, "pad_token_id": 163839,
  "q_lora_rank": null, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 10000.0, "routed_scaling_factor": 2.446, "tie_word_embeddings": false, "topk_group": 1,
  "transformers_version": "4.57.1", "use_cache": true, "use_grouped_topk": true, "v_head_dim": 128,
  "vocab_size": 163840
})";

// The model card's arithmetic (KIMI_LINEAR.md sections 2, 3.5 and 4): 49,122,681,728 parameters, of which
// 20 x (32 + 4096) (A_log and dt_bias of the 20 KDA layers) are F32 and the rest BF16.
constexpr uint64_t kParams = 49'122'681'728ull;
constexpr uint64_t kF32Params = 20ull * (32 + 4096);
constexpr uint64_t kWeightBytes = 98'245'528'576ull;                         // 98.25 GB = 91.50 GiB
constexpr uint64_t kKdaStatePerSequence = 20ull * 32 * 128 * 128 * 4;        // 40 MiB
constexpr uint64_t kConvPerSequence = 20ull * 3 * 4096 * 3 * 4;              // W - 1 = 3 rows of q, k, v in F32
constexpr uint64_t kCachePerTokenF16 = 7ull * (512 + 64) * 2;                // 8,064 B

std::vector<std::string> plugins() { return plugins_under_test(); }

fs::path write_48b_config(const std::string& prefix) {
    const fs::path dir = scratch_dir(prefix);
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << kKimi48BConfig;
    return dir;
}

}  // namespace

TEST(MemoryPlan, Real48BConfigMatchesTheModelCardArithmetic) {
    const ModelConfig config = parse_model_config(json::parse(kKimi48BConfig), "config.json");
    ASSERT_EQ(uint64_t(count_parameters(config)), kParams);
    const std::vector<WeightTensor> weights = weights_from_config(config, QuantChoice{});
    ModelOptions o;
    o.max_sequences = 4;
    o.max_context = 131072;
    o.page_size = 256;
    o.cache_dtype = ops::DType::f16;
    PlanInputs in;
    in.config = &config;
    in.weights = &weights;
    const MemoryPlan p = plan_memory(in, o);

    // 98.2 GB of weights: the card's GB are powers of 1000 (98,245,528,576 B = 98.25 GB = 91.50 GiB).
    EXPECT_EQ(p.weights_by_dtype.at("BF16"), (kParams - kF32Params) * 2);
    EXPECT_EQ(p.weights_by_dtype.at("F32"), kF32Params * 4);
    EXPECT_EQ(p.weights_by_dtype.size(), 2u);
    EXPECT_EQ(p.weights_by_dtype.at("BF16") + p.weights_by_dtype.at("F32"), kWeightBytes);
    EXPECT_EQ(size_text(kWeightBytes), "98.2 GB");
    // Held with every tensor at a 256-byte boundary: only the 20 A_log tensors (128 B) are padded.
    EXPECT_EQ(p.bytes[int(ops::MemoryUse::weights)], kWeightBytes + 20 * 128);

    // 40 MiB of F32 recurrent state per sequence; the conv history beside it.
    EXPECT_EQ(p.kda_state_per_sequence, kKdaStatePerSequence);
    EXPECT_EQ(p.kda_state_per_sequence, uint64_t(40) << 20);
    EXPECT_EQ(p.kda_conv_per_sequence, kConvPerSequence);
    EXPECT_EQ(p.bytes[int(ops::MemoryUse::state)], 4 * (kKdaStatePerSequence + kConvPerSequence));

    // 8,064 B per token of F16 cache; 131072 tokens x 4 sequences fill whole pages.
    EXPECT_EQ(p.cache_per_token, kCachePerTokenF16);
    EXPECT_EQ(p.bytes[int(ops::MemoryUse::cache)], kCachePerTokenF16 * 131072 * 4);
    o.cache_dtype = ops::DType::f32;
    EXPECT_EQ(plan_memory(in, o).cache_per_token, 2 * kCachePerTokenF16);
}

TEST(MemoryPlan, PlanCommandPrintsThe48BFiguresAsJson) {
    const fs::path dir = write_48b_config("halo_plan48");
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"plan", "--config", (dir / "config.json").string(), "--json",
                                                 "--cache-dtype", "f16", "--context", "131072", "--parallel", "4"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["weights"]["by_dtype"]["BF16"].get<uint64_t>() + j["weights"]["by_dtype"]["F32"].get<uint64_t>(),
              kWeightBytes);
    EXPECT_EQ(j["kda_state"]["bytes_per_sequence"].get<uint64_t>(), kKdaStatePerSequence);
    EXPECT_EQ(j["kda_state"]["conv_bytes_per_sequence"].get<uint64_t>(), kConvPerSequence);
    EXPECT_EQ(j["mla_cache"]["bytes_per_token"].get<uint64_t>(), kCachePerTokenF16);
    EXPECT_EQ(j["mla_cache"]["bytes"].get<uint64_t>(), kCachePerTokenF16 * 131072 * 4);
    EXPECT_EQ(j["device"]["available"], true);
    // Every placement's total is the sum of its parts, and the plugin's own allocations are in it.
    uint64_t plugin = 0;
    for (const json& item : j["plugin"]) plugin += item["bytes"].get<uint64_t>();
    uint64_t in_places = 0;
    for (const json& pp : j["placements"]) {
        EXPECT_EQ(pp["total"].get<uint64_t>(), pp["weights"].get<uint64_t>() + pp["state"].get<uint64_t>() +
                                                    pp["cache"].get<uint64_t>() + pp["scratch"].get<uint64_t>() +
                                                    pp["plugin"].get<uint64_t>());
        in_places += pp["plugin"].get<uint64_t>();
    }
    EXPECT_GT(plugin, 0u);
    EXPECT_EQ(in_places, plugin);

    // The table for people says the same in words.
    const ToolRun t = run_tool(HALO_ENGINE_EXE, {"plan", "--config", (dir / "config.json").string(), "--cache-dtype",
                                                 "f16"});
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_NE(t.out.find("98.2 GB held"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("(40.0 MiB) of F32 recurrent state per sequence"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("8,064 B per token (F16)"), std::string::npos) << t.out;
}

// The prefix cache's snapshots are one sequence's KDA state and conv history each; the plan holds as many as the
// budget buys, in the state placement, and says so (it is planned only when a profile or switch sizes it).
TEST(MemoryPlan, PrefixCacheSnapshotsOfThe48BModel) {
    const fs::path dir = write_48b_config("halo_plan48_prefix");
    const std::string config = (dir / "config.json").string();
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"plan", "--config", config, "--json", "--cache-dtype", "f16",
                                                 "--prefix-cache", "2GiB"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    const uint64_t snapshot = kKdaStatePerSequence + kConvPerSequence;  // 44,892,160 B
    EXPECT_EQ(j["prefix_cache"]["bytes_per_snapshot"].get<uint64_t>(), snapshot);
    EXPECT_EQ(j["prefix_cache"]["snapshots"].get<int64_t>(), int64_t((uint64_t(2) << 30) / snapshot));  // 47
    EXPECT_EQ(j["prefix_cache"]["bytes"].get<uint64_t>(), 47 * snapshot);
    uint64_t state = 0;
    for (const json& pp : j["placements"]) state += pp["state"].get<uint64_t>();
    EXPECT_EQ(state, j["kda_state"]["bytes"].get<uint64_t>() + 47 * snapshot);
    // Not sized: not planned.
    const ToolRun none = run_tool(HALO_ENGINE_EXE, {"plan", "--config", config, "--json"});
    ASSERT_EQ(none.code, 0) << none.err;
    EXPECT_EQ(json::parse(none.out)["prefix_cache"]["snapshots"].get<int64_t>(), 0);
    const ToolRun table = run_tool(HALO_ENGINE_EXE, {"plan", "--config", config, "--prefix-cache", "1GiB"});
    EXPECT_NE(table.out.find("prefix cache: up to 23 snapshots of 44.9 MB"), std::string::npos) << table.out;
}

TEST(MemoryPlan, PlanWithoutALoadableBackendStillPrintsThePlan) {
    const fs::path dir = write_48b_config("halo_plan_nodevice");
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"plan", "--config", (dir / "config.json").string(), "--backend", "hip"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("device: unavailable ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("hip"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("98.2 GB held"), std::string::npos) << r.out;
    const ToolRun j = run_tool(HALO_ENGINE_EXE, {"plan", "--config", (dir / "config.json").string(), "--backend", "hip",
                                                 "--json"});
    ASSERT_EQ(j.code, 0) << j.err;
    const json doc = json::parse(j.out);
    EXPECT_EQ(doc["device"]["available"], false);
    EXPECT_TRUE(doc["fits"].is_null());
    EXPECT_EQ(doc["plugin"].size(), 0u);
}

TEST(MemoryPlan, PlanFromAModelDirectoryCountsItsFilesAndQuantizedTensors) {
    // The demo checkpoint's headers: in place on the CPU (the files' bytes), and with experts quantized at load
    // the packed words and scales are copied beside them.
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"plan", "--model", HALO_DEMO_DIR, "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    uint64_t files = 0;
    for (const auto& e : fs::directory_iterator(HALO_DEMO_DIR))
        if (e.path().extension() == ".safetensors") files += fs::file_size(e.path());
    EXPECT_TRUE(j["weights"]["in_place"].get<bool>());
    EXPECT_EQ(j["weights"]["in_place_bytes"].get<uint64_t>(), files);
    const ToolRun q = run_tool(HALO_ENGINE_EXE, {"plan", "--model", HALO_DEMO_DIR, "--json", "--quantize-experts", "int4"});
    ASSERT_EQ(q.code, 0) << q.err;
    const json k = json::parse(q.out);
    EXPECT_GT(k["weights"]["quantized_at_load"].get<uint64_t>(), 0u);
    EXPECT_GT(k["weights"]["by_dtype"]["Q4"].get<uint64_t>(), 0u);
    EXPECT_GT(k["weights"]["copied_bytes"].get<uint64_t>(), 0u);
    EXPECT_LT(k["weights"]["bytes"].get<uint64_t>(), j["weights"]["bytes"].get<uint64_t>());
    // The mapped BF16 experts are read once, to be quantized: 5 MoE layers x 16 experts x 3 x [128, 256] x 2 B. They
    // stay in the mapped total but not in what must fit.
    const uint64_t originals = 5ull * 16 * 3 * 128 * 256 * 2;
    EXPECT_EQ(k["weights"]["in_place_read_once_bytes"].get<uint64_t>(), originals);
    for (const json& pp : k["placements"])
        if (pp["name"] == "mmap") {
            EXPECT_EQ(pp["weights"].get<uint64_t>(), files + k["weights"]["copied_bytes"].get<uint64_t>());
            EXPECT_EQ(pp["needed"].get<uint64_t>(), pp["total"].get<uint64_t>() - originals);
        }
}

// ---- plan against allocated ------------------------------------------------------------------------------------

namespace {

struct Placed {
    std::string name;
    uint64_t planned = 0, allocated = 0;
    double ratio() const { return planned ? double(allocated) / double(planned) : 1.0; }
};

// Planned and allocated bytes per placement now: the model's buffers plus the plugin's own allocations.
std::vector<Placed> compare(const Model& m, const ops::Backend& b) {
    std::vector<Placed> out;
    const std::vector<uint64_t> model = m.allocated();
    const std::vector<ops::InternalUse> plugin = b.internal_use();
    for (size_t i = 0; i < m.plan().placements.size(); ++i) {
        Placed p;
        p.name = m.plan().placements[i].name;
        p.planned = m.plan().placements[i].total();
        p.allocated = model[i];
        for (const ops::InternalUse& u : plugin)
            if (u.placement == int32_t(i)) p.allocated += u.bytes;
        out.push_back(p);
    }
    return out;
}

void expect_within_2_percent(const std::vector<Placed>& placed, const std::string& what) {
    for (const Placed& p : placed) {
        if (!p.planned && !p.allocated) continue;
        std::printf("  %s, %s: planned %llu, allocated %llu, allocated/planned %.4f\n", what.c_str(), p.name.c_str(),
                    (unsigned long long)p.planned, (unsigned long long)p.allocated, p.ratio());
        EXPECT_NEAR(p.ratio(), 1.0, 0.02) << what << ", placement " << p.name << ": planned " << p.planned
                                          << " B, allocated " << p.allocated << " B";
    }
}

uint64_t plugin_total(const ops::Backend& b) {
    uint64_t n = 0;
    for (const ops::InternalUse& u : b.internal_use()) n += u.bytes;
    return n;
}

// One full prefill step of max_step_rows tokens, then one decode step, for each of `sequences` sequences; with
// several, the decode steps run together.
void prefill_and_decode(Model& m, int sequences) {
    const int64_t R = m.options().max_step_rows, V = m.config().vocab_size;
    std::vector<Sequence> seqs(static_cast<size_t>(sequences));
    std::vector<int32_t> prompt(static_cast<size_t>(R));
    for (int64_t i = 0; i < R; ++i) prompt[size_t(i)] = int32_t((i * 31 + 7) % V);
    std::vector<float> logits;
    for (Sequence& s : seqs) {
        m.begin_sequence(s);
        StepItem it{&s, prompt, LogitRows::last};
        m.step(std::span<const StepItem>(&it, 1), logits);
    }
    const int32_t next = 5;
    std::vector<StepItem> items;
    for (Sequence& s : seqs) items.push_back({&s, std::span<const int32_t>(&next, 1), LogitRows::last});
    m.step(items, logits);
    for (Sequence& s : seqs) m.end_sequence(s);
}

fs::path generated_model(const std::string& preset) {
    const fs::path dir = fs::temp_directory_path() / ("halo_plan_model_" + preset + "_" + std::to_string(::getpid()));
    if (!fs::exists(dir / "config.json")) gen::write_checkpoint(dir, gen::preset_config(preset), gen::GenOptions{});
    return dir;
}

class PlanOnPlugin : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(PlanOnPlugin, AllocatedMatchesThePlanWithinTwoPercent) {
    struct Case {
        std::string model;
        int sequences;
        int64_t context;
        int32_t rows;
        ops::DType cache;
    };
    const std::vector<Case> cases = {
        {"tiny", 1, 512, 256, ops::DType::f32},
        {"demo", 2, 1024, 64, ops::DType::f16},
    };
    for (const Case& c : cases) {
        const std::string what = GetParam() + " " + c.model + " x" + std::to_string(c.sequences);
        SCOPED_TRACE(what);
        auto backend = load_plugin(GetParam());  // a fresh one: a plugin keeps its temporaries for the next model
        ModelOptions o;
        o.max_sequences = c.sequences;
        o.max_context = c.context;
        o.max_step_rows = c.rows;
        o.cache_dtype = c.cache;
        Model m(backend->backend(), c.model == "demo" ? fs::path(HALO_DEMO_DIR) : generated_model(c.model), o);
        // Loaded, the model's buffers are exactly the plan's; the plugin's own come with the steps.
        const std::vector<Placed> loaded = compare(m, backend->backend());
        uint64_t planned = 0, allocated = 0;
        for (const Placed& p : loaded) {
            planned += p.planned;
            allocated += p.allocated;
        }
        EXPECT_EQ(allocated + m.plan().plugin_bytes, planned + plugin_total(backend->backend()));
        prefill_and_decode(m, c.sequences);
        expect_within_2_percent(compare(m, backend->backend()), what);
    }
}

TEST_P(PlanOnPlugin, WarmUpHoldsThePlanAndMixedStepsNeedNoMore) {
    // Four sequences, prompts split across steps in every mix of long and short runs, then batched decode: the
    // plugin's own memory is what the plan said at load, and stays so.
    auto backend = load_plugin(GetParam());
    ModelOptions o;
    o.max_sequences = 4;
    o.max_context = 512;
    o.max_step_rows = 256;
    o.warm_up = true;
    Model m(backend->backend(), generated_model("tiny"), o);
    EXPECT_EQ(plugin_total(backend->backend()), m.plan().plugin_bytes);
    const int64_t V = m.config().vocab_size;
    std::vector<Sequence> seqs(4);
    for (Sequence& s : seqs) m.begin_sequence(s);
    std::vector<int32_t> ids(256);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 13 + 1) % size_t(V));
    const std::span<const int32_t> all(ids);
    std::vector<float> logits;
    const std::vector<std::vector<int>> mixes = {{200, 56}, {64, 64, 64, 64}, {1, 1, 1, 200}, {100, 100, 1, 1}};
    for (const auto& mix : mixes) {
        std::vector<StepItem> items;
        for (size_t i = 0; i < mix.size(); ++i) items.push_back({&seqs[i], all.subspan(0, size_t(mix[i])), LogitRows::last});
        m.step(items, logits);
    }
    EXPECT_EQ(plugin_total(backend->backend()), m.plan().plugin_bytes);
    expect_within_2_percent(compare(m, backend->backend()), GetParam() + " tiny x4, warmed up");
}

TEST_P(PlanOnPlugin, StepsAtTheFullContextReachThePlan) {
    // Long contexts change what an op takes (MLA splits its context): steps of every length up to the step size,
    // each ending at the full context, reach the plan and stay within it. Positions are set directly; what the
    // cache holds does not matter to memory.
    auto backend = load_plugin(GetParam());
    ModelOptions o;
    // The CPU's arena is then sized by MLA's context splits (the absorbed form's partial sums), not by the other
    // ops; lavapipe is slow at long contexts.
    o.max_context = GetParam() == "cpu" ? 32768 : 2048;
    o.max_step_rows = 64;
    o.page_size = 64;
    Model m(backend->backend(), generated_model("tiny"), o);
    const int64_t V = m.config().vocab_size;
    std::vector<int32_t> ids(64);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 17 + 3) % size_t(V));
    std::vector<float> logits;
    const int step = GetParam() == "cpu" ? 1 : 9;  // every length on the CPU; a spread on lavapipe (slow)
    for (int n = 64; n >= 1; n -= step) {
        Sequence s;
        m.begin_sequence(s);
        s.n_tokens = o.max_context - n;
        StepItem it{&s, std::span<const int32_t>(ids).subspan(0, size_t(n)), LogitRows::last};
        m.step(std::span<const StepItem>(&it, 1), logits);
        m.end_sequence(s);
        ASSERT_LE(plugin_total(backend->backend()), m.plan().plugin_bytes) << "a step of " << n << " rows";
    }
    expect_within_2_percent(compare(m, backend->backend()),
                            GetParam() + " tiny, steps at context " + std::to_string(o.max_context));
}

INSTANTIATE_TEST_SUITE_P(Plugins, PlanOnPlugin, ::testing::ValuesIn(plugins()),
                         [](const auto& info) { return info.param; });

// ---- context = "auto" and refusals -----------------------------------------------------------------------------

TEST(MemoryPlan, ContextAutoPicksTheLargestContextTheBudgetHolds) {
    // 40 MB of heap for the demo model: the cache (640 B per token in F32) decides where it stops.
    const std::vector<std::string> base = {"plan", "--model", HALO_DEMO_DIR, "--json", "--memory-budget", "heap=40MB"};
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--context", "auto"});
    const ToolRun r = run_tool(HALO_ENGINE_EXE, args);
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    const int64_t picked = j["context"].get<int64_t>();
    EXPECT_EQ(picked % 256, 0);
    EXPECT_GT(picked, 256);
    EXPECT_EQ(j["fits"], true);
    const std::string reason = j["context_auto"].get<std::string>();
    EXPECT_NE(reason.find(std::to_string(picked) + " tokens"), std::string::npos) << reason;
    EXPECT_NE(reason.find(std::to_string(picked + 256) + " tokens would need"), std::string::npos) << reason;
    EXPECT_NE(reason.find("'heap'"), std::string::npos) << reason;
    // The heap holds the picked context, and not one page more.
    for (const int64_t context : {picked, picked + 256}) {
        args = base;
        args.insert(args.end(), {"--context", std::to_string(context)});
        const ToolRun at = run_tool(HALO_ENGINE_EXE, args);
        ASSERT_EQ(at.code, 0) << at.err;
        const json k = json::parse(at.out);
        EXPECT_EQ(k["fits"], context == picked) << context;
        for (const json& pp : k["placements"]) {
            if (pp["name"] == "heap") {
                EXPECT_EQ(pp["budget"].get<uint64_t>(), 40'000'000u);
            }
        }
    }
    // Without a budget the device decides: the demo model's maximum length fits the machine.
    const ToolRun all = run_tool(HALO_ENGINE_EXE, {"plan", "--model", HALO_DEMO_DIR, "--json", "--context", "auto"});
    ASSERT_EQ(all.code, 0) << all.err;
    EXPECT_NE(json::parse(all.out)["context_auto"].get<std::string>().find("maximum length"), std::string::npos);
}

TEST(MemoryPlan, CommandsRefuseAPlanThatDoesNotFitWithTheNumbersAndTheKey) {
    // A switch: the sentence names it.
    const ToolRun r = run_tool(HALO_ENGINE_EXE, {"--prompt-ids", "1,2,3", "--max-tokens", "2", "--memory-budget",
                                                 "heap=4MB", "--context", "4096"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("memory plan: context 4096"), std::string::npos) << r.err;  // the plan comes first
    EXPECT_NE(r.err.find("the memory plan does not fit: placement 'heap' needs "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(cache 2.6 MB (4096 tokens x 1, F32), state 84.0 kB, scratch 2.7 MB, plugin "),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find("but 4.0 MB is available (--memory-budget"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("; lower --context, --parallel, --cache-dtype or --chunk, or raise the budget"),
              std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("memory allocated"), std::string::npos) << r.err;  // refused before loading
    EXPECT_TRUE(r.out.empty()) << r.out;

    // A profile key: the sentence names the file and line of the budget and of the context.
    const fs::path dir = scratch_dir("halo_plan_refuse");
    fs::create_directories(dir);
    std::ofstream(dir / "small.toml") << "backend = \"cpu\"\ncontext = 4096\n\n[budget]\nheap = \"4 MB\"\n";
    const ToolRun p = run_tool(HALO_ENGINE_EXE, {"--profile", (dir / "small.toml").string(), "--prompt-ids", "1,2,3",
                                                 "--max-tokens", "2"});
    EXPECT_EQ(p.code, 1);
    EXPECT_NE(p.err.find("is available (budget.heap in " + (dir / "small.toml").string() + " line 5)"),
              std::string::npos) << p.err;
    EXPECT_NE(p.err.find("lower context (context in small.toml line 2), --parallel, --cache-dtype or --chunk"),
              std::string::npos) << p.err;
    EXPECT_NE(p.err.find("or raise the budget\n"), std::string::npos) << p.err;

    // Where the plan fits, loading reports what was allocated beside it.
    const ToolRun ok = run_tool(HALO_ENGINE_EXE, {"--prompt-ids", "1,2,3", "--max-tokens", "2", "--context", "512"});
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.err.find("memory allocated: heap "), std::string::npos) << ok.err;
    EXPECT_NE(ok.err.find(" planned (+0.0 %)"), std::string::npos) << ok.err;
}

}  // namespace halo::test

// ---- the shipped profiles against the shipped 48B-A3B config ------------------------------------------------------

namespace halo::test {
namespace {

TEST(ShippedProfiles, TheShipped48BConfigIsTheReleasedOne) {
    std::ifstream in(fs::path(HALO_CONFIGS_DIR) / "kimi-linear-48b-a3b-instruct.json");
    ASSERT_TRUE(in) << "configs/kimi-linear-48b-a3b-instruct.json is missing";
    EXPECT_EQ(json::parse(in), json::parse(kKimi48BConfig));
}

// Every profile in configs/ plans the real model from its config.json alone: what a person does before fetching
// 98 GB. The figures that do not depend on the machine are the model card's.
TEST(ShippedProfiles, EveryProfilePlansThe48BModel) {
    const std::string config = (fs::path(HALO_CONFIGS_DIR) / "kimi-linear-48b-a3b-instruct.json").string();
    int profiles = 0;
    for (const auto& entry : fs::directory_iterator(HALO_CONFIGS_DIR)) {
        if (entry.path().extension() != ".toml") continue;
        ++profiles;
        SCOPED_TRACE(entry.path().filename().string());
        const ToolRun r = run_tool(HALO_ENGINE_EXE, {"plan", "--profile", entry.path().string(), "--config", config,
                                                     "--json"});
        ASSERT_EQ(r.code, 0) << r.err;
        const json j = json::parse(r.out);
        EXPECT_EQ(j["kda_state"]["bytes_per_sequence"].get<uint64_t>(), kKdaStatePerSequence);
        const std::string dtype = j["mla_cache"]["dtype"].get<std::string>();
        EXPECT_EQ(j["mla_cache"]["bytes_per_token"].get<uint64_t>(), dtype == "F32" ? 2 * kCachePerTokenF16
                                                                                     : kCachePerTokenF16);
        const int64_t context = j["context"].get<int64_t>();
        const int64_t sequences = j["mla_cache"]["sequences"].get<int64_t>();
        EXPECT_GT(context, 0);
        EXPECT_EQ(j["mla_cache"]["bytes"].get<uint64_t>(),
                  j["mla_cache"]["bytes_per_token"].get<uint64_t>() * uint64_t((context + 255) / 256 * 256) *
                      uint64_t(sequences));
        // Quantized classes only shrink the weights below the BF16 checkpoint's bytes.
        uint64_t weights = 0;
        for (const auto& [name, bytes] : j["weights"]["by_dtype"].items()) weights += bytes.get<uint64_t>();
        EXPECT_LE(weights, kWeightBytes);
        EXPECT_GT(weights, kWeightBytes / 5);
        for (const json& pp : j["placements"])
            EXPECT_EQ(pp["total"].get<uint64_t>(), pp["weights"].get<uint64_t>() + pp["state"].get<uint64_t>() +
                                                        pp["cache"].get<uint64_t>() + pp["scratch"].get<uint64_t>() +
                                                        pp["plugin"].get<uint64_t>());
        EXPECT_TRUE(j["fits"].is_boolean());
        EXPECT_EQ(j["fits"].get<bool>(), j["refusal"].is_null()) << r.out;
    }
    EXPECT_GE(profiles, 4);
}

}  // namespace
}  // namespace halo::test

// ---- placements that share physical memory -------------------------------------------------------------------------

namespace halo::test {
namespace {

// The CPU plugin's two placements are the same pages: the plan must add them up, not check each against all of
// memory. Vulkan's imported host pages are system memory too.
TEST(SharedPools, PluginsSayWhichPlacementsShareMemory) {
    for (const std::string& name : plugins_under_test()) {
        SCOPED_TRACE(name);
        auto backend = load_plugin(name);
        ASSERT_TRUE(backend);
        std::map<std::string, std::string> pool;
        for (const ops::PlacementInfo& pi : backend->backend().device().placements) {
            EXPECT_FALSE(pi.pool.empty()) << pi.name;
            pool[pi.name] = pi.pool;
        }
        if (name == "cpu") {
            EXPECT_EQ(pool.at("heap"), "system memory");
            EXPECT_EQ(pool.at("mmap"), "system memory");
        }
        if (pool.count("host-import")) {
            EXPECT_EQ(pool.at("host-import"), "system memory");
        }
    }
}

// Each placement within its own limit, the two together over the memory they share: refused, naming both.
TEST(SharedPools, PlacementsThatFitAloneButNotTogetherAreRefused) {
    MemoryPlan p;
    p.context = 4096;
    p.sequences = 1;
    PlacementPlan heap, mmap, other;
    heap.name = "heap";
    heap.pool = mmap.pool = "system memory";
    mmap.name = "mmap";
    heap.device_bytes = mmap.device_bytes = 1000;
    heap.cache = 400;
    mmap.weights = 700;
    other.name = "device-local";
    other.pool = "vulkan heap 0";
    other.device_bytes = 10;
    other.scratch = 5;
    p.placements = {heap, mmap, other};
    p.placement_name[0] = "mmap";
    p.placement_name[1] = p.placement_name[2] = "heap";
    p.placement_name[3] = "device-local";
    ASSERT_TRUE(p.placements[0].fits());
    ASSERT_TRUE(p.placements[1].fits());
    const std::vector<MemoryPlan::Pool> pools = p.pools();
    ASSERT_EQ(pools.size(), 1u);  // the Vulkan heap holds one placement: checked alone
    EXPECT_EQ(pools[0].needed, 1100u);
    EXPECT_EQ(pools[0].limit, 1000u);
    EXPECT_FALSE(p.fits());
    const std::string why = refusal(p, {});
    EXPECT_NE(why.find("placements 'heap' and 'mmap' share system memory and together need 1.1 kB"), std::string::npos)
        << why;
    EXPECT_NE(why.find("but 1.0 kB is available"), std::string::npos) << why;
    EXPECT_NE(why.find("--quantize-experts int4"), std::string::npos) << why;
    EXPECT_NE(why.find("--context"), std::string::npos) << why;
    // Within the pool: fits.
    p.placements[1].weights = 600;
    EXPECT_TRUE(p.fits());
    EXPECT_EQ(refusal(p, {}), "the memory plan fits");
}

}  // namespace
}  // namespace halo::test
