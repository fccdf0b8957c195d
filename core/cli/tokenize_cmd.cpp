// `engine tokenize` and `engine detokenize`: the model directory's tokenizer on stdin/stdout.
//   printf 'Hello world' | engine tokenize --model DIR            -> a JSON array of ids, e.g. [72,345,362]
//   printf 'Hello world' | engine tokenize --model DIR --pieces   -> ["Hello"," world"]
//   echo '[72,345,362]' | engine detokenize --model DIR           -> the text, byte-exact, no newline added
//                                                                   (special tokens only with --show-special)
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "core/cli/command.h"
#include "core/input/bounded_json.h"
#include "core/input/token_ids.h"
#include "core/tokenizer/tokenizer.h"

namespace halo::cli {
namespace {

struct TokenizeOptions {
    std::string model_dir;
    bool pieces = false;
    bool allow_special = false;
};

struct DetokenizeOptions {
    std::string model_dir;
    bool show_special = false;
};

// Largest stdin read by tokenize and detokenize.
constexpr size_t kMaxStdinBytes = size_t(1) << 30;

// All of stdin, read in large blocks (through std::cin's buffer, so that a caller may redirect it).
std::string read_stdin() {
    std::streambuf* in = std::cin.rdbuf();
    std::string data;
    size_t used = 0;
    for (;;) {
        if (data.size() - used < (1u << 16)) data.resize(std::max<size_t>(data.size() * 2, 1u << 20));
        const std::streamsize n = in->sgetn(data.data() + used, std::streamsize(data.size() - used));
        used += size_t(std::max<std::streamsize>(n, 0));
        if (used > kMaxStdinBytes)
            throw std::runtime_error("stdin holds more than " + input::byte_size_text(kMaxStdinBytes) +
                                     "; split the input into smaller parts");
        if (n <= 0) break;
    }
    data.resize(used);
    return data;
}

// Writes `out` to stdout (std::cout, one block); false when it could not be written.
bool write_stdout(std::string_view out) {
    std::cout.write(out.data(), std::streamsize(out.size()));
    std::cout.flush();
    return bool(std::cout);
}

// Appends `s` (valid UTF-8: the pre-tokenizer's pieces are) as a JSON string.
void append_json_string(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out += '"';
    for (const char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += char(c);
            }
        }
    }
    out += '"';
}

int fail(const std::string& sentence) {
    std::cerr << "engine: " << sentence << '\n';
    return 1;
}

int run_tokenize(const TokenizeOptions& o) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.model_dir);
        const std::string text = read_stdin();
        std::string out = "[";
        if (o.pieces) {
            const std::vector<std::string> pieces = tokenizer.pre_tokenize(text, o.allow_special);
            out.reserve(text.size() * 2 + pieces.size() * 3 + 2);
            for (size_t i = 0; i < pieces.size(); ++i) {
                if (i) out += ',';
                append_json_string(out, pieces[i]);
            }
        } else {
            const std::vector<tok::TokenId> ids = tokenizer.encode(text, o.allow_special);
            out.reserve(ids.size() * 7 + 2);
            char buf[16];
            for (size_t i = 0; i < ids.size(); ++i) {
                if (i) out += ',';
                const auto r = std::to_chars(buf, buf + sizeof buf, ids[i]);
                out.append(buf, r.ptr);
            }
        }
        out += "]\n";
        return write_stdout(out) ? 0 : fail(std::string("tokenize: could not write to stdout: ") + std::strerror(errno));
    } catch (const std::exception& e) {
        return fail(std::string("tokenize: ") + e.what());
    }
}

int run_detokenize(const DetokenizeOptions& o) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.model_dir);
        const std::vector<tok::TokenId> ids = input::parse_token_id_array(read_stdin(), tokenizer.vocab_size(), "stdin");
        const std::string text = tokenizer.decode(ids, /*skip_special=*/!o.show_special);
        return write_stdout(text) ? 0 : fail(std::string("detokenize: could not write to stdout: ") + std::strerror(errno));
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

    auto detokenize_opts = std::make_shared<DetokenizeOptions>();
    CLI::App* detokenize = app.add_subcommand(
        "detokenize",
        "Read a JSON array of token ids on stdin and print their text exactly (no newline added; bytes that are not "
        "valid UTF-8 become U+FFFD).");
    detokenize->add_option("--model", detokenize_opts->model_dir,
                           "Model directory holding tiktoken.model and tokenizer_config.json")
        ->required();
    detokenize->add_flag("--show-special", detokenize_opts->show_special,
                         "Print special and reserved tokens by name (e.g. <|im_end|>) instead of leaving them out");

    return {
        Command{tokenize, [tokenize_opts] { return run_tokenize(*tokenize_opts); }},
        Command{detokenize, [detokenize_opts] { return run_detokenize(*detokenize_opts); }},
    };
}

}  // namespace halo::cli
