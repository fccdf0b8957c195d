// The engine's command line under hostile or careless input, as a user or a script runs it: nested JSON that used to
// overflow the stack, usage errors, ids outside the vocabulary; and its output in logs and pipes (plain progress
// lines, the summary on a line of its own, special tokens only when asked, tokenize output that is valid JSON).
#include <algorithm>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/run_tool.h"
#include "tests/support/plugins.h"
#include "tests/support/scratch_dir.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class HostileInput : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = scratch_dir("halo_hostile");
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Runs the engine through the shell with `args` (each quoted), stdin from `input`; with merge, stderr goes to
    // the same pipe as stdout (as in `engine ... 2>&1 | tee log`).
    ToolRun engine(const std::vector<std::string>& args, const std::string& input = "", bool merge = false) {
        const fs::path in = dir_ / "stdin";
        std::ofstream(in, std::ios::binary) << input;
        std::string cmd = shell_quote(HALO_ENGINE_EXE);
        for (const auto& a : args) cmd += " " + shell_quote(a);
        cmd += " <" + shell_quote(in.string());
        if (merge) cmd += " 2>&1 | cat";
        return run_tool("/bin/sh", {"-c", cmd});
    }
    std::string golden() const { return (fs::path(golden_dir()) / "tiny").string(); }
    std::string demo() const { return (fs::path(HALO_ENGINE_EXE).parent_path().parent_path() / "models" / "demo").string(); }
    // A copy of the golden tiny model whose config.json is `config`.
    std::string model_with_config(const std::string& config) {
        const fs::path m = dir_ / "model";
        fs::create_directories(m);
        for (const auto& e : fs::directory_iterator(golden()))
            if (e.path().extension() == ".safetensors" || e.path().filename() == "model.safetensors.index.json")
                fs::create_symlink(e.path(), m / e.path().filename());
        std::ofstream(m / "config.json") << config;
        return m.string();
    }
    std::string golden_config() const { return read_whole_file(fs::path(golden()) / "config.json"); }

    fs::path dir_;
};

// One line on stderr, prefixed, short: what a user sees for any refused input.
void expect_one_short_line(const ToolRun& r, const std::string& needle, const std::string& what) {
    expect_clear_error(r, {needle}, what);
    EXPECT_EQ(r.code, 1) << what;
    EXPECT_EQ(r.err.rfind("engine: ", 0), 0u) << what << ": " << r.err.substr(0, 300);
    EXPECT_LT(r.err.size(), 500u) << what << ": " << r.err.substr(0, 600);
}

TEST_F(HostileInput, DeeplyNestedJsonIsAnErrorNotACrash) {
    // hidden_size as 100,000 nested arrays: a stack overflow in the error message's dump() before.
    std::string config = golden_config();
    const json c = json::parse(config);
    const std::string field = "\"hidden_size\": " + std::to_string(c["hidden_size"].get<int64_t>());
    ASSERT_NE(config.find(field), std::string::npos) << config;
    config.replace(config.find(field), field.size(),
                   "\"hidden_size\": " + std::string(100000, '[') + std::string(100000, ']'));
    const std::string m = model_with_config(config);
    expect_one_short_line(engine({"--model", m, "--prompt-ids", "1,2", "--max-tokens", "1"}),
                          "config.json nests JSON more than 32 levels deep", "deep config.json");
    expect_one_short_line(engine({"detokenize", "--model", demo()}, std::string(100000, '[') + std::string(100000, ']')),
                          "detokenize: element 0 of stdin's array", "deep detokenize input");
    expect_one_short_line(engine({"detokenize", "--model", demo()}, "[1, \"" + std::string(1 << 20, 'x') + "\"]"),
                          "element 1 of stdin's array", "a 1 MB string in detokenize input");
}

TEST_F(HostileInput, UsageErrorsArePrefixedSentencesWithExitStatusOne) {
    const std::vector<std::vector<std::string>> cases = {
        {"--bogus"}, {"tokenize"}, {"--max-tokens", "many"}, {"logits", "--unknown-flag"}, {"bench", "-r"}};
    for (const auto& args : cases) {
        const ToolRun r = engine(args);
        EXPECT_EQ(r.code, 1) << args[0] << ": " << r.err;
        EXPECT_EQ(r.err.rfind("engine: ", 0), 0u) << args[0] << ": " << r.err;
        EXPECT_NE(r.err.find("--help' for the options"), std::string::npos) << r.err;
    }
    const ToolRun sub = engine({"tokenize"});
    EXPECT_NE(sub.err.find("; run 'engine tokenize --help' for the options\n"), std::string::npos) << sub.err;
    EXPECT_EQ(std::count(sub.err.begin(), sub.err.end(), '\n'), 1) << sub.err;
    const ToolRun help = engine({"--help"});
    EXPECT_EQ(help.code, 0) << help.err;
}

TEST_F(HostileInput, ArgumentsAreEchoedEscapedAndShort) {
    // A terminal escape sequence (it would set the window title), a newline and 100 KB in values that end up in
    // error messages.
    for (const std::string& value : {std::string("x\x1b]0;pwned\x07"), std::string("a\nb"), std::string(100000, 'x')}) {
        for (const char* flag : {"--backend", "--model", "--weights-placement"}) {
            const ToolRun r = engine({flag, value, "--prompt-ids", "1", "--max-tokens", "1"});
            expect_one_short_line(r, "", std::string(flag) + " " + value.substr(0, 12));
            EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err.substr(0, 300);
        }
    }
}

TEST_F(HostileInput, EmptyValuesAndOutputsThatCannotWorkAreRefused) {
    for (const char* flag : {"--max-tokens", "--temperature", "--top-k", "--top-p", "--plugin-dir"})
        expect_one_short_line(engine({"--model", golden(), "--prompt-ids", "1", flag, ""}), "empty", flag);
    const fs::path fifo = dir_ / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    expect_one_short_line(engine({"logits", "--model", golden(), "--prompt-ids", "1", "--out", fifo.string()}),
                          "is not a regular file", "--out to a FIFO");
    // stdin that cannot be read is an error, not an empty input.
    const ToolRun dir_in = run_tool("/bin/sh", {"-c", shell_quote(HALO_ENGINE_EXE) + " tokenize --model " +
                                                          shell_quote(demo()) + " < " + shell_quote(dir_.string())});
    expect_one_short_line(dir_in, "could not read stdin", "a directory as stdin");
    // Output that cannot be written: one error line, and help text counts as output.
    const ToolRun full = run_tool("/bin/sh", {"-c", "echo hi | " + shell_quote(HALO_ENGINE_EXE) + " tokenize --model " +
                                                        shell_quote(demo()) + " > /dev/full"});
    expect_one_short_line(full, "could not write", "tokenize > /dev/full");
    const ToolRun help = run_tool("/bin/sh", {"-c", shell_quote(HALO_ENGINE_EXE) + " --help > /dev/full"});
    expect_one_short_line(help, "could not write the output", "--help > /dev/full");
}

TEST_F(HostileInput, TensorsTheConfigDoesNotUseAreWarnedAbout) {
    // The golden model's config cut to its first three (KDA) layers: layer 4's tensors are left over.
    json c = json::parse(golden_config());
    c["num_hidden_layers"] = 3;
    c["linear_attn_config"]["full_attn_layers"] = json::array();
    const std::string m = model_with_config(c.dump(2));
    const ToolRun r = engine({"--model", m, "--prompt-ids", "1,2", "--max-tokens", "1"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("tensors of the checkpoint are not used by its config.json (first: 'model.layers.3."),
              std::string::npos)
        << r.err;
    const ToolRun intact = engine({"--model", golden(), "--prompt-ids", "1,2", "--max-tokens", "1"});
    EXPECT_EQ(intact.err.find("not used"), std::string::npos) << intact.err;
}

TEST_F(HostileInput, APluginThatCannotBeLoadedSaysWhy) {
    const fs::path plugins = dir_ / "plugins";
    fs::create_directories(plugins);
    std::ofstream(plugins / "libhalo_broken.so") << "x";
    expect_one_short_line(engine({"--plugin-dir", plugins.string(), "--backend", "broken", "--model", golden(),
                                  "--prompt-ids", "1"}),
                          "libhalo_broken.so: file too short", "a one-byte plugin");  // the dynamic loader's reason
}

TEST_F(HostileInput, StopIdsOutsideTheVocabularyAreRefused) {
    expect_one_short_line(engine({"--model", golden(), "--prompt-ids", "1,2", "--max-tokens", "2", "--stop-ids", "5,99999"}),
                          "--stop-ids: token id 99999 (item 2) is outside the model's vocabulary", "--stop-ids 99999");
}

TEST_F(HostileInput, ProgressIsPlainLinesAndTheSummaryStartsItsOwnLine) {
    std::string ids;
    for (int i = 0; i < 64; ++i) ids += (i ? "," : "") + std::to_string(1 + i % 300);
    // stderr to a file (not a terminal): every progress report is a line, no carriage returns.
    const ToolRun r = engine({"--model", golden(), "--prompt-ids", ids, "--max-tokens", "3", "--chunk", "8"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
    // The engine thread reads the prompt while the command prints, so a fast chunk's report may be merged into the
    // next one; the reports that are printed are whole lines, and the last says the whole prompt was read.
    EXPECT_NE(r.err.find("/64 tokens\nengine: prefill"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("engine: prefill 64/64 tokens\n"), std::string::npos) << r.err;
    // stdout and stderr into one pipe: the ids end their line before the summary.
    const ToolRun merged = engine({"--model", golden(), "--prompt-ids", "1,2,3", "--max-tokens", "3"}, "", true);
    ASSERT_EQ(merged.code, 0) << merged.err;
    const size_t summary = merged.out.find("engine: prefill 3 tokens");
    ASSERT_NE(summary, std::string::npos) << merged.out;
    // Everything before the summary is whole lines, and the ids are one of them.
    const std::string before = merged.out.substr(0, summary);
    EXPECT_EQ(before.back(), '\n') << merged.out;
    const size_t ids_line = before.rfind('\n', before.size() - 2) + 1;
    const std::string line = before.substr(ids_line, before.size() - 1 - ids_line);
    EXPECT_EQ(line.find_first_not_of("0123456789,"), std::string::npos) << "not the ids: " << line << "\n" << merged.out;
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 2) << merged.out;
}

TEST_F(HostileInput, SpecialTokensAreShownOnlyWhenAsked) {
    const json config = json::parse(read_whole_file(fs::path(demo()) / "tokenizer_config.json"));
    std::string im_end;
    for (const auto& [id, token] : config["added_tokens_decoder"].items())
        if (token["content"] == "<|im_end|>") im_end = id;
    ASSERT_FALSE(im_end.empty());
    // The first special id after <|im_end|> without a name in the config: a reserved token.
    int next = std::stoi(im_end) + 1;
    while (config["added_tokens_decoder"].contains(std::to_string(next))) ++next;
    const std::string reserved = std::to_string(next);
    const std::string ids = "[72, " + im_end + ", 101, " + reserved + "]";
    const ToolRun plain = engine({"detokenize", "--model", demo()}, ids);
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(plain.out.find("<|"), std::string::npos) << plain.out;
    const ToolRun shown = engine({"detokenize", "--model", demo(), "--show-special"}, ids);
    ASSERT_EQ(shown.code, 0) << shown.err;
    EXPECT_NE(shown.out.find("<|im_end|>"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("<|reserved_token_" + reserved + "|>"), std::string::npos) << shown.out;
    EXPECT_EQ(shown.out.size(), plain.out.size() + std::string("<|im_end|>").size() +
                                    std::string("<|reserved_token_|>").size() + reserved.size());
}

TEST_F(HostileInput, TokenizeWritesValidJsonAndRoundTrips) {
    std::string text = "say \"hi\"\\n\ttab\x01\x1f and \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 <|im_end|>\n";
    for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i) + " of prose, with words.\n";
    const ToolRun pieces = engine({"tokenize", "--model", demo(), "--pieces"}, text);
    ASSERT_EQ(pieces.code, 0) << pieces.err;
    std::string joined;
    for (const auto& p : json::parse(pieces.out)) joined += p.get<std::string>();
    EXPECT_EQ(joined, text);
    const ToolRun ids = engine({"tokenize", "--model", demo()}, text);
    ASSERT_EQ(ids.code, 0) << ids.err;
    const ToolRun back = engine({"detokenize", "--model", demo()}, ids.out);
    ASSERT_EQ(back.code, 0) << back.err;
    EXPECT_EQ(back.out, text);
}

}  // namespace
}  // namespace halo::test
