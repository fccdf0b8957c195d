// `engine tokenize` and `engine detokenize`: the model directory's tokenizer on stdin/stdout.
//   printf 'Hello world' | engine tokenize --model DIR            -> a JSON array of ids, e.g. [72,345,362]
//   printf 'Hello world' | engine tokenize --model DIR --pieces   -> ["Hello"," world"]
//   echo '[72,345,362]' | engine detokenize --model DIR           -> the text, byte-exact, no newline added
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/cli/command.h"
#include "core/tokenizer/tokenizer.h"

namespace halo::cli {
namespace {

struct TokenizeOptions {
    std::string model_dir;
    bool pieces = false;
    bool allow_special = false;
};

std::string read_stdin() {
    std::cin >> std::noskipws;
    return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
}

int fail(const std::string& sentence) {
    std::cerr << sentence << '\n';
    return 1;
}

int run_tokenize(const TokenizeOptions& o) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.model_dir);
        const std::string text = read_stdin();
        nlohmann::json out = nlohmann::json::array();
        if (o.pieces) {
            for (auto& p : tokenizer.pre_tokenize(text, o.allow_special)) out.push_back(std::move(p));
        } else {
            for (tok::TokenId id : tokenizer.encode(text, o.allow_special)) out.push_back(id);
        }
        std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        std::cout.flush();
        return std::cout.good() ? 0 : fail("tokenize: could not write to stdout");
    } catch (const std::exception& e) {
        return fail(std::string("tokenize: ") + e.what());
    }
}

int run_detokenize(const std::string& model_dir) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(model_dir);
        const std::string input = read_stdin();
        const nlohmann::json j = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_array())
            return fail("detokenize: stdin must hold a JSON array of token ids, such as [9906, 1917]");
        std::vector<tok::TokenId> ids;
        for (size_t i = 0; i < j.size(); ++i) {
            const auto& v = j[i];
            if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tokenizer.vocab_size())
                return fail("detokenize: element " + std::to_string(i) + " (" + v.dump() +
                            ") is not a token id; ids are integers from 0 to " +
                            std::to_string(tokenizer.vocab_size() - 1));
            ids.push_back(tok::TokenId(v.get<int64_t>()));
        }
        std::cout << tokenizer.decode(ids);
        std::cout.flush();
        return std::cout.good() ? 0 : fail("detokenize: could not write to stdout");
    } catch (const std::exception& e) {
        return fail(std::string("detokenize: ") + e.what());
    }
}

}  // namespace

std::vector<Command> add_tokenizer_commands(CLI::App& app) {
    auto tokenize_opts = std::make_shared<TokenizeOptions>();
    CLI::App* tokenize = app.add_subcommand(
        "tokenize",
        "Read UTF-8 text on stdin and print its token ids as one JSON array (ill-formed UTF-8 is read with U+FFFD "
        "replacement). Special-token strings such as <|im_end|> are plain text unless --allow-special is given.");
    tokenize->add_option("--model", tokenize_opts->model_dir,
                         "Model directory holding tiktoken.model and tokenizer_config.json (the weights are not needed)")
        ->required();
    tokenize->add_flag("--pieces", tokenize_opts->pieces,
                       "Print the pre-tokenizer pieces (JSON strings) instead of the ids");
    tokenize->add_flag("--allow-special", tokenize_opts->allow_special,
                       "Turn special-token strings in the text into their special ids (for trusted text only)");

    auto detokenize_model = std::make_shared<std::string>();
    CLI::App* detokenize = app.add_subcommand(
        "detokenize",
        "Read a JSON array of token ids on stdin and print their text exactly (no newline added; bytes that are not "
        "valid UTF-8 become U+FFFD).");
    detokenize->add_option("--model", *detokenize_model,
                           "Model directory holding tiktoken.model and tokenizer_config.json")
        ->required();

    return {
        Command{tokenize, [tokenize_opts] { return run_tokenize(*tokenize_opts); }},
        Command{detokenize, [detokenize_model] { return run_detokenize(*detokenize_model); }},
    };
}

}  // namespace halo::cli
