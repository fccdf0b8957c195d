// Loading: the golden vocabularies, special-id naming, and clear errors for malformed files.
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/fifo_guard.h"
#include "tests/tokenizer/test_support.h"

namespace halo::tok::test {
namespace {

// A valid tiktoken.model with the 256 bytes at ranks 0..255 plus `extra` lines.
std::string byte_model(const std::string& extra = "") {
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string s;
    for (int b = 0; b < 256; ++b)
        s += std::string{b64[b >> 2], b64[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
    return s + extra;
}

std::string error_of(const std::string& model, const std::string& config = "{}") {
    try {
        Tokenizer::from_text(model, config, "dir");
    } catch (const TokenizerError& e) {
        return e.what();
    }
    return "";
}

TEST(VocabLoad, GoldenVocabularies) {
    const Tokenizer& a = golden_tokenizer("a");
    const Tokenizer& b = golden_tokenizer("b");
    EXPECT_EQ(a.num_base_tokens(), 3256);
    EXPECT_EQ(a.vocab_size(), 3512);
    EXPECT_EQ(b.num_base_tokens(), 3000);
    EXPECT_EQ(b.vocab_size(), 3256);
    for (const Tokenizer* t : {&a, &b}) {
        const TokenId n = t->num_base_tokens();
        const SpecialIds& s = t->special_ids();
        EXPECT_EQ(s.bos, n + 0);
        EXPECT_EQ(s.eos, n + 1);
        EXPECT_EQ(s.im_end, n + 2);
        EXPECT_EQ(s.im_user, n + 3);
        EXPECT_EQ(s.im_assistant, n + 4);
        EXPECT_EQ(s.im_system, n + 10);
        EXPECT_EQ(s.tool_calls_section_begin, n + 11);
        EXPECT_EQ(s.tool_call_end, n + 15);
        EXPECT_EQ(s.im_middle, n + 17);
        EXPECT_EQ(s.unk, n + 254);
        EXPECT_EQ(s.pad, n + 255);
        EXPECT_EQ(t->stop_ids(), (std::vector<TokenId>{n + 2, n + 1}));
        EXPECT_EQ(t->token_bytes(n + 5), "<|reserved_token_" + std::to_string(n + 5) + "|>");
        EXPECT_EQ(t->special_id("<|reserved_token_" + std::to_string(n + 5) + "|>"), n + 5);
        // A reserved name is not special for an id that has a real name.
        EXPECT_FALSE(t->special_id("<|reserved_token_" + std::to_string(n + 2) + "|>").has_value());
        EXPECT_EQ(t->config().eos_token, "[EOS]");
    }
    EXPECT_EQ(b.base_token_id("er"), 0);  // vocab_b: ranks are not byte order
    EXPECT_EQ(b.base_token_id("e"), 683);
    EXPECT_EQ(b.base_token_id(" "), 2066);
    EXPECT_EQ(b.base_token_id(std::string(1, '\0')), 716);
}

TEST(VocabLoad, MinimalDirectory) {
    const Tokenizer t = Tokenizer::from_text(byte_model(), "{}");
    EXPECT_EQ(t.vocab_size(), 512);
    EXPECT_EQ(t.special_ids().im_end, -1);
    EXPECT_TRUE(t.stop_ids().empty());
    EXPECT_EQ(t.encode("hi"), (std::vector<TokenId>{'h', 'i'}));
    EXPECT_EQ(t.token_bytes(256), "<|reserved_token_256|>");
}

TEST(VocabLoad, ErrorsNameTheLine) {
    EXPECT_EQ(error_of(byte_model("aGk= 256\naGk= 257\n")),
              "dir/tiktoken.model line 258: the token bytes are the same as on line 257; each token must appear once");
    EXPECT_EQ(error_of(byte_model("aGk= 255\n")),
              "dir/tiktoken.model line 257: rank 255 was already given on line 256; each rank must appear once");
    EXPECT_EQ(error_of(byte_model("aGk=256\n")),
              "dir/tiktoken.model line 257 is 'aGk=256'; expected '<base64 token bytes> <rank>' with one space");
    EXPECT_EQ(error_of(byte_model("aGk 256\n")),
              "dir/tiktoken.model line 257: 'aGk' is not padded standard base64 of the token bytes");
    EXPECT_EQ(error_of(byte_model("aGk= 25x\n")),
              "dir/tiktoken.model line 257: the rank '25x' is not a decimal number");
    EXPECT_EQ(error_of(byte_model("aGk= 257\n")),
              "dir/tiktoken.model has no token of rank 256 although ranks go up to 257; ranks must be 0..n-1, each once");
    EXPECT_EQ(error_of(""), "dir/tiktoken.model holds no tokens; it should have one '<base64> <rank>' line per token");
    EXPECT_NE(error_of(byte_model("aGk= 99999999999\n")).find("line 257"), std::string::npos);
    EXPECT_NE(error_of(byte_model("aGk= 9999999\n")).find("line 257"), std::string::npos);
    // Without the byte 0x41 ("QQ==" at rank 65).
    std::string model = byte_model();
    model.replace(model.find("QQ== 65"), 7, "aGk= 65");
    EXPECT_EQ(error_of(model),
              "dir/tiktoken.model has no token for the single byte 0x41; byte-level BPE needs all 256 single bytes");
    // Blank lines and CRLF are accepted.
    EXPECT_EQ(error_of(byte_model("\r\naGk= 256\r\n\n")), "");
}

TEST(VocabLoad, ConfigErrors) {
    EXPECT_NE(error_of(byte_model(), "{").find("dir/tokenizer_config.json is not valid JSON"), std::string::npos);
    EXPECT_NE(error_of(byte_model(), R"({"added_tokens_decoder": {"12": {"content": "x"}}})")
                  .find("names id 12, but special ids start at 256"),
              std::string::npos);
    EXPECT_NE(error_of(byte_model(), R"({"added_tokens_decoder": {"abc": {"content": "x"}}})").find("'abc' is not a token id"),
              std::string::npos);
    EXPECT_NE(error_of(byte_model(), R"({"added_tokens_decoder": {"256": {"content": ")" + std::string(300, 'a') + R"("}}})")
                  .find("has a content of 300 bytes, more than the 256"),
              std::string::npos);
    // Only the canonical spelling of an id: " 256", "+256" and "0256" would let two entries name one id.
    for (const char* key : {" 256", "+256", "0256", "256 "})
        EXPECT_NE(error_of(byte_model(), std::string(R"({"added_tokens_decoder": {")") + key + R"(": {"content": "x"}}})")
                      .find("is not a token id"),
                  std::string::npos)
            << key;
    EXPECT_NE(error_of(byte_model(), R"({"added_tokens_decoder": {"256": {"content": "x"}, "257": {"content": "x"}}})")
                  .find("names both id 256 and id 257"),
              std::string::npos);
    // A config naming an id beyond num_base + 255 grows the special range to cover it.
    const Tokenizer t = Tokenizer::from_text(byte_model(), R"({"added_tokens_decoder": {"600": {"content": "<x>"}}})");
    EXPECT_EQ(t.vocab_size(), 601);
    EXPECT_EQ(t.encode("a<x>", true), (std::vector<TokenId>{'a', 600}));
}

// Special tokens in text (allow_special): the leftmost match wins, and at one position the longest name, also when
// names are prefixes of each other, share prefixes with the text, or start with bytes above 0x7F.
TEST(VocabLoad, SpecialTokensMatchLeftmostLongest) {
    const Tokenizer t = Tokenizer::from_text(byte_model(), R"({"added_tokens_decoder": {
        "256": {"content": "ab"}, "257": {"content": "abc"}, "258": {"content": "abcd"}, "259": {"content": "b"},
        "260": {"content": "\u00e9x"}, "261": {"content": "\u00e9"}}})");
    const auto ids = t.encode("xabcabcdab bab\xC3\xA9x\xC3\xA9y", /*allow_special=*/true);
    const std::vector<TokenId> want = {'x', 257, 258, 256, ' ', 259, 256, 260, 261, 'y'};
    EXPECT_EQ(ids, want);
}

TEST(VocabLoad, WrongTypedConfigFieldsAreNamed) {
    EXPECT_EQ(error_of(byte_model(), R"({"added_tokens_decoder": {"256": {"content": "x", "special": "yes"}}})"),
              "dir/tokenizer_config.json: added_tokens_decoder[\"256\"].special must be a boolean, not string");
    EXPECT_EQ(error_of(byte_model(), R"({"eos_token": 5})"),
              "dir/tokenizer_config.json: eos_token must be a token name string or an object with a \"content\" "
              "string, not number");
    EXPECT_EQ(error_of(byte_model(), R"({"pad_token": {"id": 3}})"),
              "dir/tokenizer_config.json: pad_token must be a token name string or an object with a \"content\" "
              "string, not object");
    EXPECT_EQ(error_of(byte_model(), R"({"chat_template": true})"),
              "dir/tokenizer_config.json: chat_template must be a string, not boolean");
    // Forms Hugging Face writes: null tokens, AddedToken objects, a list of named templates.
    EXPECT_EQ(error_of(byte_model(), R"({"pad_token": null, "bos_token": {"content": "[BOS]"},
                                         "chat_template": [{"name": "default", "template": "x"}]})"),
              "");
}

// A scratch model directory holding a valid tiktoken.model and tokenizer_config.json.
class VocabFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("halo_vocab_files_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        std::ofstream(dir_ / "tiktoken.model", std::ios::binary) << byte_model();
        std::ofstream(dir_ / "tokenizer_config.json") << "{}";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string load_error() {
        try {
            Tokenizer::load(dir_);
        } catch (const std::exception& e) {
            return e.what();
        }
        return "";
    }
    std::filesystem::path dir_;
};

TEST_F(VocabFiles, DirectoryInsteadOfAFile) {
    EXPECT_EQ(load_error(), "");
    for (const char* name : {"tiktoken.model", "tokenizer_config.json"}) {
        const auto path = dir_ / name, aside = dir_ / (std::string(name) + ".aside");
        std::filesystem::rename(path, aside);
        std::filesystem::create_directory(path);
        EXPECT_EQ(load_error(), "tokenizer file " + path.string() + " is a directory, not a file");
        std::filesystem::remove(path);
        std::filesystem::rename(aside, path);
    }
}

TEST_F(VocabFiles, FifoInsteadOfAFile) {
    for (const char* name : {"tiktoken.model", "tokenizer_config.json"}) {
        const auto path = dir_ / name, aside = dir_ / (std::string(name) + ".aside");
        std::filesystem::rename(path, aside);
        std::string error;
        EXPECT_TRUE(halo::test::returns_without_blocking_on_fifo(path, [&] { error = load_error(); }))
            << "loading blocked in open() on the FIFO " << name;
        EXPECT_EQ(error, "tokenizer file " + path.string() + " is not a regular file (a FIFO, socket or device)");
        std::filesystem::remove(path);
        std::filesystem::rename(aside, path);
    }
}

TEST(VocabLoad, MissingFilesAreNamed) {
    try {
        Tokenizer::load(golden_dir());  // holds neither file
        FAIL();
    } catch (const TokenizerError& e) {
        EXPECT_NE(std::string(e.what()).find("has no tiktoken.model"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Tokenizer::load(golden_dir() / "no_such_dir"), TokenizerError);
}

}  // namespace
}  // namespace halo::tok::test
