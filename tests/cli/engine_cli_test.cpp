// The `engine` executable as a user (or another program) runs it: the documented command forms on the golden tiny
// model against the float64 golden, and bad input of every kind, which must end in a clear error naming the input,
// never in a crash, a hang or a silent fallback.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"
#include "tools/gen/checkpoint_writer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Outcome {
    int code = -1;       // exit status; -1 when killed by a signal
    int signal = 0;      // the signal that ended it, if any
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

class EngineCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = scratch_dir("halo_cli");
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Runs the engine with `args` (each passed as one argument), stdin from `input`, under a time limit.
    Outcome engine(const std::vector<std::string>& args, const std::string& input = "") {
        std::string cmd = "timeout 120 " + quote(HALO_ENGINE_EXE);
        for (const auto& a : args) cmd += " " + quote(a);
        const fs::path in = dir_ / "stdin", out = dir_ / "stdout", err = dir_ / "stderr";
        std::ofstream(in, std::ios::binary) << input;
        cmd += " <" + quote(in.string()) + " >" + quote(out.string()) + " 2>" + quote(err.string());
        const int status = std::system(cmd.c_str());
        Outcome r;
        if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        r.out = slurp(out);
        r.err = slurp(err);
        return r;
    }

    std::string golden() const { return (fs::path(golden_dir()) / "tiny").string(); }
    std::string prompt_ids() const {
        std::ifstream f(fs::path(golden()) / "prompt.json");
        const json p = json::parse(f);
        std::string s;
        for (const auto& id : p["ids"]) s += (s.empty() ? "" : ",") + std::to_string(id.get<int>());
        return s;
    }
    // A generated tiny model (vocab 384) in dir_/name, with config edits.
    std::string tiny_model(const std::string& name, const std::function<void(json&)>& edit = {}) {
        json config = gen::preset_config("tiny");
        if (edit) edit(config);
        gen::GenOptions o;
        o.seed = 3;
        const fs::path d = dir_ / name;
        gen::write_checkpoint(d, config, o);
        return d.string();
    }

    fs::path dir_;
};

// The error must be a plain failure (exit 1, or CLI11's usage error) with `needle` in its message.
void expect_clear_error(const Outcome& r, const std::string& needle, const std::string& what) {
    EXPECT_EQ(r.signal, 0) << what << ": killed by signal " << r.signal << "\n" << r.err;
    EXPECT_NE(r.code, 0) << what << ": exited 0\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_NE(r.code, 124) << what << ": timed out";
    EXPECT_NE(r.err.find(needle), std::string::npos) << what << ": stderr lacks '" << needle << "':\n" << r.err;
}

TEST_F(EngineCli, GreedyGenerationMatchesTheGolden) {
    std::ifstream f(fs::path(golden()) / "greedy.json");
    const json want = json::parse(f);
    const Outcome r = engine({"--backend=cpu", "--model", golden(), "--prompt-ids", prompt_ids(), "--max-tokens",
                          std::to_string(want["ids"].size()), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const json got = json::parse(r.out);
    EXPECT_EQ(got["ids"], want["ids"]);
    EXPECT_EQ(got["prompt_tokens"].get<int>(), 70);
    EXPECT_GT(got["timings"]["decode_tok_s"].get<double>(), 0.0);
}

TEST_F(EngineCli, PlainOutputIsTheIdsAndSamplingIsReproducible) {
    auto run = [&](const std::string& seed) {
        return engine({"--backend=cpu", "--model", golden(), "--prompt-ids", "1,2,3", "--max-tokens", "12",
                       "--temperature", "1.5", "--top-p", "0.95", "--seed", seed, "--quiet"});
    };
    const Outcome a = run("5"), b = run("5"), c = run("6");
    ASSERT_EQ(a.code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);  // same seed, same ids
    EXPECT_NE(a.out, c.out);  // at temperature 1.5 over 384 ids, 12 draws from two seeds differ
    std::vector<int> ids;
    std::stringstream s(a.out);
    for (std::string item; std::getline(s, item, ',');) ids.push_back(std::stoi(item));
    ASSERT_EQ(ids.size(), 12u) << a.out;
    for (int id : ids) EXPECT_TRUE(id >= 0 && id < 384) << id;
}

TEST_F(EngineCli, LogitsMatchTheGoldenInBothWeightings) {
    for (const auto& [weighting, file] : {std::pair{"unbiased", "logits.npy"}, {"biased", "logits_hf_biased.npy"}}) {
        const fs::path out = dir_ / (std::string(weighting) + ".npy");
        const Outcome r = engine({"logits", "--backend=cpu", "--model", golden(), "--prompt-ids", prompt_ids(), "--out",
                              out.string(), std::string("--moe-weighting=") + weighting});
        ASSERT_EQ(r.code, 0) << r.err;
        const NpyArray got = read_npy(out), want = read_npy(fs::path(golden()) / file);
        EXPECT_EQ(got.dtype, "<f4");
        ASSERT_EQ(got.shape, want.shape);
        const std::vector<float> g = got.as_floats(), w = want.as_floats();
        double worst = 0;
        for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(double(g[i]) - double(w[i])));
        EXPECT_LT(worst, 1e-4) << weighting;  // the same bound as the model golden test (F32 vs float64)
    }
}

TEST_F(EngineCli, QuantizedWeightsPassCheckModeOnEveryPlugin) {
    // Check mode reads every op's weights back (packed words and scales) and reruns the op on the reference; a
    // quantized checkpoint and load-time quantization of every class must pass it on each plugin.
    const std::string int4 = (fs::path(golden()).parent_path() / "tiny-int4").string();
    for (const std::string& plugin : plugins_under_test())
        for (const std::vector<std::string>& extra :
             {std::vector<std::string>{"--model", int4},
              std::vector<std::string>{"--model", golden(), "--quantize-attention", "int8", "--quantize-lm-head", "int4",
                                       "--quantize-shared", "int4", "--quantize-group", "48"}}) {
            std::vector<std::string> args = {"logits", "--check", "--backend", plugin, "--prompt-ids", prompt_ids(),
                                             "--out", (dir_ / "q.npy").string(), "--quiet"};
            args.insert(args.end(), extra.begin(), extra.end());
            const Outcome r = engine(args);
            EXPECT_EQ(r.code, 0) << plugin << " " << extra.back() << ": " << r.err;
        }
}

TEST_F(EngineCli, HelpAndBackends) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"}, {"logits", "--help"},
                                                {"bench", "--help"}, {"backends", "--help"}, {"tokenize", "--help"}}) {
        const Outcome r = engine(args);
        EXPECT_EQ(r.code, 0) << args[0];
        EXPECT_NE(r.out.find("--"), std::string::npos) << args[0] << ": " << r.out;
    }
    const Outcome r = engine({"backends"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("cpu: usable"), std::string::npos) << r.out;
}

TEST_F(EngineCli, DemoModelRunsWithoutArguments) {
    const Outcome r = engine({"--max-tokens", "4", "--quiet"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(r.out.empty());
}

TEST_F(EngineCli, BadArgumentsGiveClearErrors) {
    const std::string g = golden();
    const struct {
        std::vector<std::string> args;
        std::string needle;
    } cases[] = {
        {{"--model", g, "--prompt-ids", "1,2", "--temperature", "nan"}, "temperature"},
        {{"--model", g, "--prompt-ids", "1,2", "--temperature", "inf"}, "temperature"},
        {{"--model", g, "--prompt-ids", "1,2", "--top-p", "1.5"}, "top_p"},
        {{"--model", g, "--prompt-ids", "1,,2"}, "--prompt-ids"},
        {{"--model", g, "--prompt-ids", "+3"}, "--prompt-ids"},
        {{"--model", g, "--prompt-ids", "-1"}, "--prompt-ids"},
        {{"--model", g, "--prompt-ids", "18446744073709551617"}, "18446744073709551617"},
        {{"--model", g, "--prompt-ids", "1,384"}, "outside the model's vocabulary"},
        {{"--model", g, "--prompt-ids", ""}, "--prompt-ids is empty"},
        {{"--model", g, "--prompt-ids", "1", "--stop-ids", "x"}, "--stop-ids"},
        {{"--model", g, "--prompt-ids", "1", "--seed", "-1"}, "--seed"},
        {{"--model", g, "--prompt-ids", "1", "--chunk", "0"}, "--chunk"},
        {{"--model", g, "--prompt-ids", "1", "--max-tokens", "-1"}, "--max-tokens"},
        {{"--model", g, "--prompt-ids", "1,2,3", "--context", "2"}, "raise --context"},
        {{"--model", g, "--prompt", "hello"}, "tiktoken.model"},
        {{"--model", ""}, "--model"},
        {{"--model", g, "--prompt-ids", "1", "--backend=nonexistent"}, "nonexistent"},
        {{"--model", g, "logits", "--prompt-ids", "1", "--out", "x.npy"}, "put it after"},
        {{"logits", "--model", g, "--prompt-ids", "1", "--out", dir_.string()}, "is a directory"},
        {{"logits", "--model", g, "--prompt-ids", "1", "--out", (dir_ / "no" / "x.npy").string()}, "does not exist"},
        {{"logits", "--model", g, "--prompt-ids", "1,400", "--out", (dir_ / "x.npy").string()}, "outside"},
        {{"bench", "--model", g, "-p", "0", "-n", "0"}, "nothing to run"},
        {{"bench", "--model", g, "-r", "0"}, "--repetitions"},
        {{"--model", (dir_ / "missing").string()}, "missing"},
        {{"--no-such-flag"}, "no-such-flag"},
    };
    for (const auto& c : cases) {
        std::string what;
        for (const auto& a : c.args) what += " " + a;
        expect_clear_error(engine(c.args), c.needle, what);
    }
    EXPECT_FALSE(fs::exists(dir_ / "x.npy"));  // refused inputs leave no output behind
}

TEST_F(EngineCli, PromptsTheModelCannotTakeAreRefusedBeforeLoading) {
    const std::string m = tiny_model("short", [](json& c) { c["model_max_length"] = 5; });
    expect_clear_error(engine({"--model", m, "--prompt-ids", "1,2,3", "--max-tokens", "3"}), "maximum length 5",
                       "generation past model_max_length");
    expect_clear_error(engine({"logits", "--model", m, "--prompt-ids", "1,2,3,4,5,6", "--out", (dir_ / "l.npy").string()}),
                       "maximum length 5", "logits past model_max_length");
    const Outcome ok = engine({"--model", m, "--prompt-ids", "1,2,3", "--max-tokens", "2", "--quiet"});
    EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(EngineCli, ATokenizerLargerThanTheModelIsRefused) {
    const std::string m = tiny_model("foreign_tokenizer");
    const fs::path demo = fs::path(HALO_ENGINE_EXE).parent_path().parent_path() / "models" / "demo";
    ASSERT_TRUE(fs::exists(demo / "tiktoken.model")) << "the demo tokenizer is built with the engine";
    fs::copy_file(demo / "tiktoken.model", fs::path(m) / "tiktoken.model");
    fs::copy_file(demo / "tokenizer_config.json", fs::path(m) / "tokenizer_config.json");
    expect_clear_error(engine({"--model", m, "--prompt", "hello world"}), "do not belong to this model",
                       "demo tokenizer on a 384-id model");
}

TEST_F(EngineCli, OutputThatCannotBeWrittenIsAnError) {
    if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full here";
    const std::string cmd = "timeout 120 " + quote(HALO_ENGINE_EXE) + " --model " + quote(golden()) +
                            " --prompt-ids 1,2 --max-tokens 2 --quiet >/dev/full 2>/dev/null";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
}

}  // namespace
}  // namespace halo::test
