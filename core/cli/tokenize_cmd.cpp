// `engine tokenize` and `engine detokenize`: the model directory's tokenizer on stdin/stdout.
//   printf 'Hello world' | engine tokenize --model DIR            -> a JSON array of ids, e.g. [72,345,362]
//   printf 'Hello world' | engine tokenize --model DIR --pieces   -> ["Hello"," world"]
//   echo '[72,345,362]' | engine detokenize --model DIR           -> the text, byte-exact, no newline added
//                                                                   (special tokens only with --show-special)
#include <sys/stat.h>
#include <unistd.h>

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
#include "core/input/read_file.h"
#include "core/input/excerpt.h"
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

// All of stdin, read in 1 MiB blocks (through std::cin's buffer, so that a caller may redirect it); a regular file
// is read into a buffer of its size.
std::string read_stdin() {
    std::streambuf* in = std::cin.rdbuf();
    std::string data;
    struct stat st {};
    if (::fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) && uint64_t(st.st_size) <= kMaxStdinBytes)
        data.reserve(size_t(st.st_size) + 1);
    std::vector<char> block(1u << 20);
    for (;;) {
        const std::streamsize n = in->sgetn(block.data(), std::streamsize(block.size()));
        if (n <= 0) break;
        if (data.size() + size_t(n) > kMaxStdinBytes)
            throw std::runtime_error("stdin holds more than " + input::byte_size_text(kMaxStdinBytes) +
                                     "; split the input into smaller parts");
        data.append(block.data(), size_t(n));
    }
    if (std::ferror(stdin))  // stdin closed, a directory, an I/O error: not an empty input
        throw std::runtime_error(std::string("could not read stdin: ") + std::strerror(errno));
    return data;
}

// Output to stdout (std::cout) through a 1 MiB buffer: no copy of the whole output in memory.
class StdoutWriter {
public:
    StdoutWriter() { buffer_.reserve(kBlock + 4096); }
    // The buffer to append to; flushed when it passes a block.
    std::string& buffer() { return buffer_; }
    void maybe_flush() {
        if (buffer_.size() >= kBlock) flush();
    }
    void flush() {
        std::cout.write(buffer_.data(), std::streamsize(buffer_.size()));
        buffer_.clear();
    }
    // Writes what is left; false when anything could not be written.
    bool finish() {
        flush();
        std::cout.flush();
        return bool(std::cout);
    }

private:
    static constexpr size_t kBlock = 1u << 20;
    std::string buffer_;
};

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
    std::cerr << "engine: " << input::one_line(sentence) << '\n';
    return 1;
}

int run_tokenize(const TokenizeOptions& o) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.model_dir);
        const std::string text = read_stdin();
        StdoutWriter writer;
        std::string& out = writer.buffer();
        out += '[';
        if (o.pieces) {
            const std::vector<std::string> pieces = tokenizer.pre_tokenize(text, o.allow_special);
            for (size_t i = 0; i < pieces.size(); ++i) {
                if (i) out += ',';
                append_json_string(out, pieces[i]);
                writer.maybe_flush();
            }
        } else {
            const std::vector<tok::TokenId> ids = tokenizer.encode(text, o.allow_special);
            // Formatted 4,096 ids at a time into a fixed block (at most 11 bytes each), then appended.
            std::vector<char> block(4096 * 12);
            for (size_t i = 0; i < ids.size();) {
                char* p = block.data();
                for (const size_t end = std::min(ids.size(), i + 4096); i < end; ++i) {
                    if (i) *p++ = ',';
                    p = std::to_chars(p, block.data() + block.size(), ids[i]).ptr;
                }
                out.append(block.data(), p);
                writer.maybe_flush();
            }
        }
        out += "]\n";
        return writer.finish() ? 0
                               : fail(std::string("tokenize: could not write to stdout: ") + std::strerror(errno));
    } catch (const std::exception& e) {
        return fail(std::string("tokenize: ") + e.what());
    }
}

int run_detokenize(const DetokenizeOptions& o) {
    try {
        const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.model_dir);
        const std::vector<tok::TokenId> ids = input::parse_token_id_array(read_stdin(), tokenizer.vocab_size(), "stdin");
        StdoutWriter writer;
        writer.buffer() = tokenizer.decode(ids, /*skip_special=*/!o.show_special);  // the whole text at once
        return writer.finish() ? 0
                               : fail(std::string("detokenize: could not write to stdout: ") + std::strerror(errno));
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
