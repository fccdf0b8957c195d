// `engine tokenize` / `engine detokenize` run in-process: a CLI::App with the tokenizer commands, stdin and stdout
// swapped for strings.
#include <gtest/gtest.h>

#include <sstream>

#include "core/cli/command.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

struct CliResult {
    int code = -1;
    std::string out, err;
};

CliResult run_cli(std::vector<std::string> args, const std::string& input) {
    CLI::App app{"engine"};
    app.require_subcommand(1);
    auto commands = cli::add_tokenizer_commands(app);
    std::vector<const char*> argv = {"engine"};
    for (auto& a : args) argv.push_back(a.c_str());
    CliResult r;
    try {
        app.parse(int(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        r.code = e.get_exit_code();
        return r;
    }
    std::istringstream in(input);
    std::ostringstream out, err;
    auto* old_in = std::cin.rdbuf(in.rdbuf());
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    for (auto& c : commands)
        if (c.app->parsed()) r.code = c.run();
    std::cin.rdbuf(old_in);
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

const std::string vocab_a = (golden_dir() / "vocab_a").string();

TEST(Cli, TokenizePrintsIdsAndPieces) {
    auto r = run_cli({"tokenize", "--model", vocab_a}, "Hello world");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "[72,345,362,310,266,1062]\n");  // case s-prose-000
    r = run_cli({"tokenize", "--model", vocab_a, "--pieces"}, "Hello世界 <|im_end|>");
    EXPECT_EQ(r.out, "[\"Hello\",\"世界\",\" <|\",\"im\",\"_end\",\"|>\"]\n");
    r = run_cli({"tokenize", "--model", vocab_a, "--pieces", "--allow-special"}, "Hello世界 <|im_end|>");
    EXPECT_EQ(r.out, "[\"Hello\",\"世界\",\" \",\"<|im_end|>\"]\n");
    r = run_cli({"tokenize", "--model", vocab_a, "--allow-special"}, "<|im_end|>");
    EXPECT_EQ(r.out, "[3258]\n");
}

TEST(Cli, DetokenizeRoundTrips) {
    const std::string text = "fn main() {\n    println!(\"héllo, 世界 👋\");\n}\n";
    const auto ids = run_cli({"tokenize", "--model", vocab_a}, text);
    const auto back = run_cli({"detokenize", "--model", vocab_a}, ids.out);
    EXPECT_EQ(back.code, 0) << back.err;
    EXPECT_EQ(back.out, text);
}

TEST(Cli, ErrorsAreOneSentenceAndNonZero) {
    auto r = run_cli({"detokenize", "--model", vocab_a}, "[1, 2, \"x\"]");
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err, "engine: detokenize: element 2 of stdin's array ('\"x\"' at line 1, column 8) is not a token id; "
                     "ids are integers from 0 to 3511\n");
    r = run_cli({"detokenize", "--model", vocab_a}, "1 2 3");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("JSON array of token ids"), std::string::npos);
    r = run_cli({"detokenize", "--model", vocab_a}, "[99999]");
    EXPECT_NE(r.code, 0);
    r = run_cli({"tokenize", "--model", "/nonexistent/model"}, "x");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("tokenize: model directory /nonexistent/model does not exist"), std::string::npos) << r.err;
    r = run_cli({"tokenize"}, "x");  // --model is required
    EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace halo::tok::test
