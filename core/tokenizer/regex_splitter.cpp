#include "core/tokenizer/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "core/tokenizer/pretokenizer.h"

namespace halo::tok {

const std::string& RegexSplitter::pattern() {
    static const std::string p = [] {
        const std::string upper = R"((?:(?!\p{sc:Han})[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]))";
        const std::string lower = R"((?:(?!\p{sc:Han})[\p{Ll}\p{Lm}\p{Lo}\p{M}]))";
        const std::string contraction = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)";
        const std::string prefix = R"([^\r\n\p{L}\p{N}]?)";
        const std::string ws = kWhiteSpaceClass;                            // \s
        const std::string ws_body = ws.substr(1, ws.size() - 2);            // its members, to build [^\s...]
        return std::string(R"(\p{sc:Han}+)") +                               //
               "|" + prefix + upper + "*" + lower + "+" + contraction +      //
               "|" + prefix + upper + "+" + lower + "*" + contraction +      //
               R"(|\p{N}{1,3})" +                                            //
               "| ?[^" + ws_body + R"(\p{L}\p{N}]+[\r\n]*)" +                 //
               "|" + ws + R"(*[\r\n]+)" +                                    //
               "|" + ws + "+(?![^" + ws_body + "])" +                        // \s+(?!\S)
               "|" + ws + "+";
    }();
    return p;
}

struct RegexSplitter::Impl {
    pcre2_code* code = nullptr;
    pcre2_match_data* match = nullptr;
};

RegexSplitter::RegexSplitter() : impl_(std::make_unique<Impl>()) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern().data()), pattern().size(),
                                PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (!impl_->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw std::runtime_error("PCRE2 rejected the pre-tokenizer pattern at offset " + std::to_string(err_off) +
                                 ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
    impl_->match = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
}

RegexSplitter::~RegexSplitter() {
    pcre2_match_data_free(impl_->match);
    pcre2_code_free(impl_->code);
}

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
    std::vector<std::string_view> pieces;
    for (const ByteSpan& span : split_slices(text)) {
        const std::string_view slice = text.substr(span.begin, span.end - span.begin);
        size_t pos = 0;
        while (pos < slice.size()) {
            const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(slice.data()), slice.size(), pos,
                                       PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, impl_->match, nullptr);
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(impl_->match);
            if (rc < 0 || ov[1] <= pos)
                throw std::runtime_error("the PCRE2 pre-tokenizer found no piece at byte " + std::to_string(pos) +
                                         " of a slice; the pattern should match every character");
            pieces.push_back(slice.substr(pos, ov[1] - pos));
            pos = ov[1];
        }
    }
    return pieces;
}

}  // namespace halo::tok
