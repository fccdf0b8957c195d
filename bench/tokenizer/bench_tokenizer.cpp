// bench_tokenizer: Tokenizer::encode throughput on one core, and proof that encoding is linear in the input.
//
//   bench_tokenizer [--model DIR] [--corpus DIR] [--mb 4] [--repeats 3]
//
// Inputs are generated, nothing is downloaded: "prose" = the English paragraphs of the vocabulary corpus
// (tools/vocab/corpus/en_*.txt) shuffled and repeated to --mb MB; "code" = blocks of 6 lines of the code files
// (code_*.txt) shuffled and repeated; "cjk" = random sentences of Han, kana and hangul characters with CJK
// punctuation. The linear-time inputs have no whitespace at all: random lowercase letters (every 25,000-character
// slice is one pre-tokenizer piece, the worst case for BPE), the prose with its whitespace removed, and one repeated
// character. Prints a table and one JSON line. MB = 10^6 bytes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"

namespace fs = std::filesystem;
using halo::tok::Tokenizer;

namespace {

std::vector<std::string> corpus_files(const fs::path& dir, const std::string& prefix) {
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind(prefix, 0) == 0) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    std::vector<std::string> texts;
    for (const auto& p : paths) texts.push_back(halo::tok::read_file_bytes(p.string(), "corpus file"));
    if (texts.empty()) throw std::runtime_error("no " + prefix + "*.txt files in " + dir.string());
    return texts;
}

// Splits texts into units (paragraphs, or blocks of lines) and concatenates shuffled copies up to `bytes`.
std::string shuffled(const std::vector<std::string>& units, size_t bytes, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<size_t> order(units.size());
    std::string out;
    while (out.size() < bytes) {
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t i : order) {
            out += units[i];
            if (out.size() >= bytes) break;
        }
    }
    return out;
}

std::vector<std::string> paragraphs(const std::vector<std::string>& texts) {
    std::vector<std::string> units;
    for (const auto& t : texts) {
        size_t pos = 0;
        while (pos < t.size()) {
            size_t end = t.find("\n\n", pos);
            end = end == std::string::npos ? t.size() : end + 2;
            units.push_back(t.substr(pos, end - pos));
            pos = end;
        }
    }
    return units;
}

std::vector<std::string> line_blocks(const std::vector<std::string>& texts, int lines_per_block) {
    std::vector<std::string> units;
    for (const auto& t : texts) {
        std::string block;
        int lines = 0;
        for (char c : t) {
            block += c;
            if (c == '\n' && ++lines == lines_per_block) units.push_back(std::move(block)), block.clear(), lines = 0;
        }
        if (!block.empty()) units.push_back(block + "\n");
    }
    return units;
}

std::string cjk_text(size_t bytes, uint32_t seed) {
    std::mt19937 rng(seed);
    const char* punct[] = {"，", "。", "、", "！", "？", "：", "「", "」"};
    std::string out;
    while (out.size() < bytes) {
        const int n = 6 + int(rng() % 30);
        for (int i = 0; i < n; ++i) {
            const unsigned r = rng() % 100;
            uint32_t cp;
            if (r < 70) cp = 0x4E00 + rng() % 3000;       // frequent Han
            else if (r < 80) cp = 0x4E00 + rng() % 20900;  // any CJK unified ideograph
            else if (r < 90) cp = 0x3041 + rng() % 83;     // hiragana
            else if (r < 95) cp = 0x30A1 + rng() % 89;     // katakana
            else cp = 0xAC00 + rng() % 11172;              // hangul
            halo::tok::append_utf8(out, cp);
        }
        out += punct[rng() % 8];
        if (rng() % 8 == 0) out += rng() % 2 ? "\n" : " 2024 ";
    }
    return out;
}

double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Timing {
    double wall = 0;  // seconds, median
    double cpu = 0;   // this thread's CPU seconds, median (not inflated by other processes on a busy machine)
};

Timing time_encode(const Tokenizer& tok, const std::string& text, int repeats, size_t* tokens) {
    std::vector<double> wall, cpu;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = thread_cpu_seconds();
        const auto ids = tok.encode(text);
        cpu.push_back(thread_cpu_seconds() - cpu_start);
        wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (tokens) *tokens = ids.size();
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

int usage() {
    std::fprintf(stderr, "usage: bench_tokenizer [--model DIR] [--corpus DIR] [--mb N] [--repeats N]\n"
                         "Encode throughput (MB/s, one core) on prose, code and CJK text, and encode time of\n"
                         "0.25/0.5/1 MB inputs without whitespace (linear-time check). Default model: the demo.\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_dir = HALO_DEMO_DIR, corpus_dir = HALO_VOCAB_CORPUS_DIR;
    double mb = 4;
    int repeats = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        if (a == "--model") model_dir = argv[++i];
        else if (a == "--corpus") corpus_dir = argv[++i];
        else if (a == "--mb") mb = std::atof(argv[++i]);
        else if (a == "--repeats") repeats = std::max(1, std::atoi(argv[++i]));
        else return usage();
    }
    try {
        const Tokenizer tok = Tokenizer::load(model_dir);
        const size_t bytes = size_t(mb * 1e6);
        const std::string prose = shuffled(paragraphs(corpus_files(corpus_dir, "en_")), bytes, 1);
        const std::string code = shuffled(line_blocks(corpus_files(corpus_dir, "code_"), 6), bytes, 2);
        const std::string cjk = cjk_text(bytes, 3);
        (void)tok.encode("warm up the character tables");

        std::printf("bench_tokenizer: %s (vocab %d), one thread, median of %d runs; MB/s = MB / thread CPU seconds\n\n",
                    model_dir.c_str(), tok.vocab_size(), repeats);
        std::printf("| input | MB    | wall s  | cpu s   | MB/s   | tokens    | bytes/token |\n");
        std::printf("|-------|-------|---------|---------|--------|-----------|-------------|\n");
        std::string json = "{\"bench\":\"tokenizer\",\"vocab_size\":" + std::to_string(tok.vocab_size()) + ",\"encode\":[";
        const std::pair<const char*, const std::string*> inputs[] = {{"prose", &prose}, {"code", &code}, {"cjk", &cjk}};
        for (size_t k = 0; k < 3; ++k) {
            size_t tokens = 0;
            const std::string& text = *inputs[k].second;
            const Timing t = time_encode(tok, text, repeats, &tokens);
            const double rate = double(text.size()) / 1e6 / t.cpu;
            std::printf("| %-5s | %5.2f | %7.3f | %7.3f | %6.1f | %9zu | %11.2f |\n", inputs[k].first, text.size() / 1e6,
                        t.wall, t.cpu, rate, tokens, double(text.size()) / double(tokens));
            char row[256];
            std::snprintf(row, sizeof row,
                          "%s{\"input\":\"%s\",\"bytes\":%zu,\"wall_s\":%.4f,\"cpu_s\":%.4f,\"mb_per_s\":%.2f,\"tokens\":%zu}",
                          k ? "," : "", inputs[k].first, text.size(), t.wall, t.cpu, rate, tokens);
            json += row;
        }
        json += "],\"linear\":[";

        std::mt19937 rng(4);
        std::string letters(1'000'000, 'a');
        for (char& c : letters) c = char('a' + rng() % 26);
        std::string prose_no_space;
        for (char c : prose)
            if (c != ' ' && c != '\n' && c != '\t' && c != '\r' && c != '\f' && c != '\v') prose_no_space += c;
        const std::string repeated(1'000'000, 'a');
        const std::pair<const char*, const std::string*> linear[] = {
            {"no_space_letters", &letters}, {"no_space_prose", &prose_no_space}, {"repeated_char", &repeated}};
        std::printf("\n| no-whitespace input | 0.25 MB cpu s | 0.5 MB cpu s | 1 MB cpu s | 1 MB / 0.25 MB |\n");
        std::printf("|---------------------|---------------|--------------|------------|----------------|\n");
        bool first = true;
        for (const auto& [name, text] : linear) {
            double t[3];
            const double sizes[3] = {0.25, 0.5, 1.0};
            for (int k = 0; k < 3; ++k) {
                // Cut at a character boundary (the prose may hold multi-byte characters).
                size_t n = std::min(text->size(), size_t(sizes[k] * 1e6));
                while (n < text->size() && (uint8_t((*text)[n]) & 0xC0) == 0x80) ++n;
                const Timing timing = time_encode(tok, text->substr(0, n), std::max(repeats, 5), nullptr);
                t[k] = timing.cpu;
                char row[160];
                std::snprintf(row, sizeof row, "%s{\"input\":\"%s\",\"mb\":%.2f,\"wall_s\":%.4f,\"cpu_s\":%.4f}",
                              first ? "" : ",", name, sizes[k], timing.wall, timing.cpu);
                json += row;
                first = false;
            }
            std::printf("| %-19s | %13.4f | %12.4f | %10.4f | %14.2f |\n", name, t[0], t[1], t[2], t[2] / t[0]);
        }
        json += "]}";
        std::printf("\n(linear time: the last column stays near 4; quadratic would be 16)\n\n%s\n", json.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
        return 1;
    }
    return 0;
}
