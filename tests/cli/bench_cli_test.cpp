// engine bench as a user runs it: llama-bench's flags (-p, -n, -pg, -d, -r, -o, -t, comma lists) and outputs
// (markdown, CSV, JSON), checked against independent truth: the statistics against the samples they summarise, the
// model's size, parameters and bytes per token against the checkpoint's safetensors header and config.json, the build
// commit against the source repository; --backends cpu,vulkan side by side; the per-op decode profile against the
// model's layers and the bytes per token; bad flags refused with clear sentences.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <regex>
#include <string>
#include <thread>
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

// The bench flags every run here shares: the demo model and a small bandwidth buffer (the figures are not judged).
std::vector<std::string> bench_args(std::vector<std::string> extra) {
    std::vector<std::string> args = {"bench", "-m", HALO_DEMO_DIR, "--bandwidth-gb", "0.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

ToolRun bench(const std::vector<std::string>& extra) { return run_tool(HALO_ENGINE_EXE, bench_args(extra)); }

std::string describe(const ToolRun& r) { return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::string line;
    for (char c : text) {
        if (c == '\n') {
            lines.push_back(line);
            line.clear();
        } else {
            line += c;
        }
    }
    if (!line.empty()) lines.push_back(line);
    return lines;
}

std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(' '), b = s.find_last_not_of(' ');
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The rows of the first markdown table in `text` (header, separator, data), each as its trimmed cells; with `after`,
// of the first table that follows a line starting with it.
std::vector<std::vector<std::string>> markdown_rows(const std::string& text, const std::string& after = "") {
    std::vector<std::vector<std::string>> rows;
    bool found = after.empty();
    for (const std::string& line : lines_of(text)) {
        if (!found) {
            found = line.rfind(after, 0) == 0;
            continue;
        }
        if (line.empty() || line[0] != '|') {
            if (!rows.empty()) break;  // the end of the table
            continue;
        }
        std::vector<std::string> cells;
        size_t pos = 1;
        while (pos < line.size()) {
            const size_t bar = line.find('|', pos);
            if (bar == std::string::npos) break;
            cells.push_back(trim(line.substr(pos, bar - pos)));
            pos = bar + 1;
        }
        rows.push_back(cells);
    }
    return rows;
}

// RFC 4180 CSV: fields separated by commas, quoted when they hold commas or quotes (quotes doubled inside).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, any = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row.push_back(field);
            field.clear();
        } else if (c == '\n') {
            row.push_back(field);
            rows.push_back(row);
            row.clear();
            field.clear();
        } else {
            field += c;
        }
        any = true;
    }
    EXPECT_FALSE(quoted) << "unterminated quoted CSV field";
    if (any && (!field.empty() || !row.empty())) {
        row.push_back(field);
        rows.push_back(row);
    }
    return rows;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }

double sample_stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
}

// The threads the engine runs for a --threads request on this machine (0 or more than the hardware: all of them).
int threads_for(int requested) {
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    cpu_set_t set;
    int usable = hardware;
    if (sched_getaffinity(0, sizeof set, &set) == 0) usable = std::min(hardware, CPU_COUNT(&set));
    return requested == 0 || requested > hardware ? usable : requested;
}

// The build commit must name a commit of the source repository (the hash of `git describe --always --dirty`), or be
// "unknown" where the sources are not a git checkout or git cannot run.
void expect_source_commit(const std::string& commit) {
    const fs::path source = fs::path(HALO_CONFIGS_DIR).parent_path();
    const bool git_runs = std::system("git --version >/dev/null 2>&1") == 0;
    if (commit == "unknown") {
        EXPECT_TRUE(!fs::exists(source / ".git") || !git_runs) << "a git checkout with git at hand reports no commit";
        return;
    }
    ASSERT_TRUE(std::regex_match(commit, std::regex("[0-9A-Za-z._/+-]+"))) << commit;
    std::string hash = commit;
    if (hash.size() > 6 && hash.compare(hash.size() - 6, 6, "-dirty") == 0) hash.resize(hash.size() - 6);
    if (const size_t g = hash.rfind("-g"); g != std::string::npos) hash = hash.substr(g + 2);  // tag-N-gHASH
    ASSERT_TRUE(git_runs);
    const std::string cmd = "git -C " + shell_quote(source.string()) + " cat-file -e " + shell_quote(hash + "^{commit}") +
                            " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << commit << " is not a commit of " << source;
}

// A safetensors file's header: tensor name -> {dtype, shape, data_offsets}.
json safetensors_header(const fs::path& file) {
    std::ifstream f(file, std::ios::binary);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    std::string text(n, '\0');
    f.read(text.data(), std::streamsize(n));
    json h = json::parse(text);
    h.erase("__metadata__");
    return h;
}

const std::vector<std::string> kRecordFields = {
    "build_commit", "backend", "device", "model_filename", "model_type", "weights", "model_size", "model_n_params",
    "decode_weight_bytes", "mapped_bytes", "mapped_resident_bytes", "mapped_huge_bytes", "n_threads", "n_chunk",
    "cache_dtype", "n_prompt", "n_gen", "n_depth", "test", "test_time",
    "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "bytes_per_run", "avg_gbs", "bandwidth_gbs", "bandwidth_before_gbs",
    "bandwidth_after_gbs", "bandwidth_fraction", "samples_ns", "samples_ts"};

// Every statistic of a JSON record recomputed from its samples.
void expect_consistent_record(const json& r) {
    SCOPED_TRACE(r.dump());
    for (const std::string& field : kRecordFields) EXPECT_TRUE(r.contains(field)) << field;
    const int64_t tokens = r["n_prompt"].get<int64_t>() + r["n_gen"].get<int64_t>();
    std::vector<double> ns, ts, gbs;
    for (const auto& x : r["samples_ns"]) ns.push_back(x.get<double>());
    for (const auto& x : r["samples_ts"]) ts.push_back(x.get<double>());
    ASSERT_EQ(ns.size(), ts.size());
    ASSERT_FALSE(ns.empty());
    for (size_t i = 0; i < ns.size(); ++i) {
        EXPECT_GT(ns[i], 0);
        EXPECT_NEAR(ts[i], 1e9 * double(tokens) / ns[i], 1e-9 * ts[i]);
        gbs.push_back(r["bytes_per_run"].get<double>() / ns[i]);
    }
    EXPECT_NEAR(r["avg_ts"].get<double>(), mean(ts), 1e-9 * mean(ts));
    EXPECT_NEAR(r["stddev_ts"].get<double>(), sample_stddev(ts), 1e-9 * mean(ts));
    EXPECT_NEAR(r["avg_ns"].get<double>(), mean(ns), 0.51);
    EXPECT_NEAR(r["stddev_ns"].get<double>(), sample_stddev(ns), 0.51);
    EXPECT_NEAR(r["avg_gbs"].get<double>(), mean(gbs), 1e-9 * mean(gbs));
    const double before = r["bandwidth_before_gbs"], after = r["bandwidth_after_gbs"];
    EXPECT_GT(before, 0);
    EXPECT_GT(after, 0);
    EXPECT_EQ(r["bandwidth_gbs"].get<double>(), std::max(before, after));
    EXPECT_NEAR(r["bandwidth_fraction"].get<double>(), mean(gbs) / std::max(before, after), 1e-9);
    // The label llama-bench would print for these lengths.
    const int64_t p = r["n_prompt"], n = r["n_gen"], d = r["n_depth"];
    std::string name = p > 0 && n == 0 ? "pp" + std::to_string(p)
                       : p == 0        ? "tg" + std::to_string(n)
                                       : "pp" + std::to_string(p) + "+tg" + std::to_string(n);
    if (d > 0) name += " @ d" + std::to_string(d);
    EXPECT_EQ(r["test"], name);
    EXPECT_TRUE(std::regex_match(r["test_time"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
}

std::vector<std::string> tests_of(const json& records) {
    std::vector<std::string> names;
    for (const auto& r : records) names.push_back(r["test"]);
    return names;
}

class BenchCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = scratch_dir("halo_bench_cli");
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(BenchCli, MarkdownIsLlamaBenchsTableWithBandwidthColumns) {
    const ToolRun r = bench({"-p", "16", "-n", "4", "-pg", "8,2", "-d", "0,8", "-r", "2", "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(r.err, "") << "--quiet prints nothing but results and errors";
    const auto rows = markdown_rows(r.out);
    ASSERT_EQ(rows.size(), 2u + 6u) << r.out;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"model", "size", "params", "backend", "threads", "test", "t/s", "GB/s",
                                                 "% of bw"}));
    for (const std::string& cell : rows[1]) EXPECT_TRUE(std::regex_match(cell, std::regex("-+[-:]"))) << cell;
    // Per depth: the pp tests, the tg tests, then the pp+tg tests, as llama-bench orders them.
    const std::vector<std::string> tests = {"pp16", "tg4", "pp8+tg2", "pp16 @ d8", "tg4 @ d8", "pp8+tg2 @ d8"};
    std::smatch device;
    ASSERT_TRUE(std::regex_search(r.out, device, std::regex(R"(device: cpu = .*\((\d+) threads)"))) << r.out;
    for (size_t i = 0; i < tests.size(); ++i) {
        const auto& row = rows[2 + i];
        ASSERT_EQ(row.size(), rows[0].size()) << r.out;
        EXPECT_EQ(row[0], "demo");
        EXPECT_TRUE(std::regex_match(row[1], std::regex(R"(\d+\.\d\d MiB)"))) << row[1];
        EXPECT_TRUE(std::regex_match(row[2], std::regex(R"(\d+\.\d\d M)"))) << row[2];
        EXPECT_EQ(row[3], "cpu");
        EXPECT_EQ(row[4], std::to_string(threads_for(0)));
        EXPECT_EQ(row[4], device[1].str()) << "the threads column and the threads the CPU plugin runs";
        EXPECT_EQ(row[5], tests[i]);
        std::smatch ts;
        ASSERT_TRUE(std::regex_match(row[6], ts, std::regex(R"((\d+\.\d\d) ± (\d+\.\d\d))"))) << row[6];
        EXPECT_GT(std::stod(ts[1]), 0);
        EXPECT_GT(std::stod(row[7]), 0);
        EXPECT_TRUE(std::regex_match(row[8], std::regex(R"(\d+\.\d%)"))) << row[8];
    }
    EXPECT_NE(r.out.find("memory read bandwidth: "), std::string::npos) << r.out;
    std::smatch build;
    ASSERT_TRUE(std::regex_search(r.out, build, std::regex("\nbuild: (\\S+)\n"))) << r.out;
    expect_source_commit(build[1]);
}

TEST_F(BenchCli, DefaultsAreLlamaBenchsAndPgAddsToThem) {
    // -p 512 -n 128 unless told otherwise; -pg adds its test to the default ones.
    const ToolRun r = bench({"-pg", "16,4", "-r", "1", "--no-warmup", "-o", "json", "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    const json records = json::parse(r.out);
    EXPECT_EQ(tests_of(records), (std::vector<std::string>{"pp512", "tg128", "pp16+tg4"}));
    for (const auto& rec : records) expect_consistent_record(rec);
    // Five repetitions unless told otherwise.
    const ToolRun five = bench({"-p", "4", "-n", "0", "-o", "json", "--quiet"});
    ASSERT_EQ(five.code, 0) << describe(five);
    const json one = json::parse(five.out);
    ASSERT_EQ(tests_of(one), std::vector<std::string>{"pp4"});
    EXPECT_EQ(one[0]["samples_ns"].size(), 5u);
}

TEST_F(BenchCli, CsvHasOneRowPerTestOfTheCrossProduct) {
    // -t and the length lists multiply; a flag may also be repeated (-n 2 -n 4). Progress goes to stderr.
    const ToolRun r = bench({"-o", "csv", "-p", "8,16", "-n", "2", "-n", "4", "-t", "1,2", "-r", "2"});
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_NE(r.err.find("bench: cpu, " + std::to_string(threads_for(1)) + " threads, pp8: rep 1/2: "), std::string::npos)
        << r.err;
    const auto rows = parse_csv(r.out);
    ASSERT_EQ(rows.size(), 1u + 8u) << r.out;
    EXPECT_EQ(rows[0], kRecordFields);
    auto column = [&](const std::string& name) {
        return size_t(std::find(rows[0].begin(), rows[0].end(), name) - rows[0].begin());
    };
    const std::vector<std::string> tests = {"pp8", "pp16", "tg2", "tg4"};
    for (size_t i = 1; i < rows.size(); ++i) {
        const auto& row = rows[i];
        ASSERT_EQ(row.size(), rows[0].size()) << "row " << i << " of\n" << r.out;
        EXPECT_EQ(row[column("test")], tests[(i - 1) % 4]);
        EXPECT_EQ(row[column("n_threads")], std::to_string(threads_for(i <= 4 ? 1 : 2)));
        EXPECT_NE(row[column("device")].find(" threads"), std::string::npos) << "a device name with commas, quoted";
        EXPECT_EQ(row[column("backend")], "cpu");
        // Every sample, and their mean.
        std::vector<double> ts;
        std::string samples = row[column("samples_ts")];
        for (size_t pos = 0; pos <= samples.size();) {
            const size_t semi = std::min(samples.find(';', pos), samples.size());
            ts.push_back(std::stod(samples.substr(pos, semi - pos)));
            pos = semi + 1;
        }
        ASSERT_EQ(ts.size(), 2u) << samples;
        EXPECT_NEAR(std::stod(row[column("avg_ts")]), mean(ts), 1e-6 * mean(ts));
        expect_source_commit(row[column("build_commit")]);
    }
}

TEST_F(BenchCli, JsonRecordsCarryEverySampleAndTheirStatistics) {
    // JSON lines on stdout and the JSON array in --json-out from the same run: the same records.
    const fs::path file = dir_ / "bench.json";
    const ToolRun r = bench({"-o", "jsonl", "-p", "8", "-n", "4", "-pg", "4,2", "-d", "0,4", "-r", "3", "--json-out",
                             file.string(), "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    std::ifstream f(file);
    const json records = json::parse(f);
    ASSERT_TRUE(records.is_array());
    EXPECT_EQ(tests_of(records), (std::vector<std::string>{"pp8", "tg4", "pp4+tg2", "pp8 @ d4", "tg4 @ d4", "pp4+tg2 @ d4"}));
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), records.size()) << r.out;
    for (size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(json::parse(lines[i]), records[i]);
        EXPECT_EQ(records[i]["samples_ns"].size(), 3u);
        expect_consistent_record(records[i]);
    }
}

TEST_F(BenchCli, ModelFiguresFollowTheCheckpointAndConfig) {
    // Size, parameters and bytes per decode token from the safetensors header; bytes per run from config.json's
    // shapes: 2 prefill steps of --chunk 8 each reading the weights (capped at all of them) and the state at its end,
    // and 4 decode tokens each reading their weights and the state at their context (an F16 MLA cache here).
    const ToolRun r = bench({"-o", "json", "-p", "16", "-n", "4", "-d", "8", "--chunk", "8", "--cache-dtype", "f16",
                             "-r", "1", "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    const json records = json::parse(r.out);
    ASSERT_EQ(tests_of(records), (std::vector<std::string>{"pp16 @ d8", "tg4 @ d8"}));

    const fs::path demo = HALO_DEMO_DIR;
    const json header = safetensors_header(demo / "model.safetensors");
    std::ifstream cf(demo / "config.json");
    const json config = json::parse(cf);
    uint64_t params = 0, data = 0, decode = 0;
    std::map<std::string, uint64_t> expert0;  // layer -> bytes of routed expert 0 (w1, w2, w3)
    const std::regex expert(R"(model\.layers\.(\d+)\..*\.experts\.(\d+)\..*)");
    for (const auto& [name, t] : header.items()) {
        uint64_t elements = 1;
        for (const auto& d : t["shape"]) elements *= d.get<uint64_t>();
        params += elements;
        const uint64_t bytes = t["data_offsets"][1].get<uint64_t>() - t["data_offsets"][0].get<uint64_t>();
        data += bytes;
        std::smatch m;
        if (std::regex_match(name, m, expert)) {
            if (m[2] == "0") expert0[m[1]] += bytes;
        } else if (name == "model.embed_tokens.weight") {
            decode += bytes / t["shape"][0].get<uint64_t>();  // one row
        } else {
            decode += bytes;
        }
    }
    for (const auto& [layer, bytes] : expert0) decode += config["num_experts_per_token"].get<uint64_t>() * bytes;
    ASSERT_FALSE(config.value("tie_word_embeddings", false)) << "the sum above assumes an lm_head of its own";

    const json& la = config["linear_attn_config"];
    const uint64_t heads = la["num_heads"], hd = la["head_dim"], kernel = la["short_conv_kernel_size"];
    const uint64_t kda_per_step = la["kda_layers"].size() * 2 *  // read and written
                                  (heads * hd * hd * 4 + (kernel - 1) * 3 * heads * hd * 4);  // F32 state, conv history
    const uint64_t mla_per_token = la["full_attn_layers"].size() *
                                   (config["kv_lora_rank"].get<uint64_t>() + config["qk_rope_head_dim"].get<uint64_t>()) * 2;

    for (const auto& rec : records) {
        SCOPED_TRACE(rec["test"].get<std::string>());
        EXPECT_EQ(rec["model_n_params"].get<uint64_t>(), params);
        const uint64_t size = rec["model_size"];
        EXPECT_GE(size, data);
        EXPECT_LT(size, data + 256 * header.size()) << "weights plus at most their alignment";
        EXPECT_EQ(rec["decode_weight_bytes"].get<uint64_t>(), decode);
        // The demo checkpoint is one mapped file; the CPU reads its weights in place, so some of it is mapped.
        EXPECT_EQ(rec["mapped_bytes"].get<uint64_t>(), fs::file_size(demo / "model.safetensors"));
        EXPECT_GT(rec["mapped_resident_bytes"].get<uint64_t>(), 0u);
        EXPECT_LE(rec["mapped_resident_bytes"].get<uint64_t>(), rec["mapped_bytes"].get<uint64_t>() + (2u << 20));
        EXPECT_LE(rec["mapped_huge_bytes"].get<uint64_t>(), rec["mapped_resident_bytes"].get<uint64_t>());
        EXPECT_EQ(rec["n_chunk"], 8);
        EXPECT_EQ(rec["cache_dtype"], "f16");
        uint64_t expected = 0;
        if (rec["n_prompt"] == 16) {
            for (uint64_t context : {16, 24}) expected += std::min(size, 8 * decode) + kda_per_step + context * mla_per_token;
        } else {
            for (uint64_t context = 9; context <= 12; ++context) expected += decode + kda_per_step + context * mla_per_token;
        }
        EXPECT_EQ(rec["bytes_per_run"].get<uint64_t>(), expected);
        expect_consistent_record(rec);
    }
}

TEST_F(BenchCli, ProfileKeysApplyAndSwitchesWin) {
    const fs::path profile = dir_ / "bench.toml";
    std::ofstream(profile) << "threads = 1\nprefill_chunk = 8\ncache_dtype = \"bf16\"\n";
    const ToolRun r = bench({"--profile", profile.string(), "-p", "16", "-n", "0", "-r", "1", "-o", "json", "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    const json rec = json::parse(r.out).at(0);
    EXPECT_EQ(rec["n_threads"], 1);
    EXPECT_EQ(rec["n_chunk"], 8);
    EXPECT_EQ(rec["cache_dtype"], "bf16");
    const ToolRun over = bench({"--profile", profile.string(), "-t", "2", "--chunk", "16", "-p", "16", "-n", "0", "-r",
                                "1", "-o", "json", "--quiet"});
    ASSERT_EQ(over.code, 0) << describe(over);
    const json rec2 = json::parse(over.out).at(0);
    EXPECT_EQ(rec2["n_threads"], threads_for(2));
    EXPECT_EQ(rec2["n_chunk"], 16);
    EXPECT_EQ(rec2["cache_dtype"], "bf16");
}

TEST_F(BenchCli, BackendsSideBySide) {
    const auto plugins = plugins_under_test();
    if (std::find(plugins.begin(), plugins.end(), "vulkan") == plugins.end())
        GTEST_SKIP() << "the vulkan plugin is not usable here (PluginInventory says why)";
    const fs::path file = dir_ / "bench.json";
    const ToolRun r = bench({"--backends", "cpu,vulkan", "-p", "4", "-n", "2", "-r", "1", "--no-warmup", "--quiet",
                             "--json-out", file.string()});
    ASSERT_EQ(r.code, 0) << describe(r);
    std::ifstream f(file);
    const json records = json::parse(f);
    ASSERT_EQ(records.size(), 4u);
    std::vector<std::string> backends;
    for (const auto& rec : records) {
        backends.push_back(rec["backend"]);
        expect_consistent_record(rec);
        EXPECT_NE(r.out.find("device: " + rec["backend"].get<std::string>() + " = " + rec["device"].get<std::string>()),
                  std::string::npos)
            << r.out;
    }
    EXPECT_EQ(backends, (std::vector<std::string>{"cpu", "cpu", "vulkan", "vulkan"}));
    EXPECT_EQ(tests_of(records), (std::vector<std::string>{"pp4", "tg2", "pp4", "tg2"}));

    const auto rows = markdown_rows(r.out);
    ASSERT_EQ(rows.size(), 2u + 2u) << r.out;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"model", "size", "params", "threads", "test", "cpu t/s",
                                                 "cpu GB/s (% of bw)", "vulkan t/s", "vulkan GB/s (% of bw)", "vulkan/cpu"}));
    for (size_t i = 0; i < 2; ++i) {
        const auto& row = rows[2 + i];
        ASSERT_EQ(row.size(), rows[0].size()) << r.out;
        EXPECT_EQ(row[4], records[i]["test"]);
        char ts[64], ratio[64];
        std::snprintf(ts, sizeof ts, "%.2f ± %.2f", records[i]["avg_ts"].get<double>(), 0.0);
        EXPECT_EQ(row[5], ts);
        std::snprintf(ts, sizeof ts, "%.2f ± %.2f", records[2 + i]["avg_ts"].get<double>(), 0.0);
        EXPECT_EQ(row[7], ts);
        EXPECT_TRUE(std::regex_match(row[6], std::regex(R"(\d+\.\d\d \(\d+\.\d%\))"))) << row[6];
        std::snprintf(ratio, sizeof ratio, "%.3g",
                      records[2 + i]["avg_ts"].get<double>() / records[i]["avg_ts"].get<double>());
        EXPECT_EQ(row[9], ratio);
    }
}

TEST_F(BenchCli, DecodeProfileCountsEveryOpAndAddsUpToTheTokenBytes) {
    // Markdown: after the results, one profile table per tg test (not for pp tests), per op kind in the order a token
    // runs them, and a line summing every op.
    const ToolRun md = bench({"-p", "4", "-n", "3", "-d", "0,8", "-r", "1", "--quiet"});
    ASSERT_EQ(md.code, 0) << describe(md);
    ASSERT_EQ(markdown_rows(md.out).size(), 2u + 4u) << "the results table is unchanged\n" << md.out;
    const std::regex heading(R"(op profile: cpu, \d+ threads, (tg3(?: @ d8)?): 3 tokens decoded once more, )"
                             R"(synchronised after every op: [0-9.]+ ms per token in ops, [0-9.]+ ms with the host )"
                             R"(work between them \([0-9.]+ ms timed above\))");
    std::vector<std::string> profiled;
    for (const std::string& line : lines_of(md.out)) {
        if (std::smatch m; std::regex_match(line, m, heading))
            profiled.push_back(m[1]);
        else
            EXPECT_EQ(line.find("op profile:"), std::string::npos) << line;
    }
    EXPECT_EQ(profiled, (std::vector<std::string>{"tg3", "tg3 @ d8"})) << md.out;
    const auto table = markdown_rows(md.out, "op profile: cpu");
    ASSERT_GE(table.size(), 3u) << md.out;
    EXPECT_EQ(table[0], (std::vector<std::string>{"op", "calls/token", "ms/token", "% of time", "MB/token", "state MB/token",
                                                  "GB/s", "% of bw"}));
    std::vector<std::string> ops;
    for (size_t i = 2; i < table.size(); ++i) {
        ops.push_back(table[i][0]);
        // No GB/s where no bytes are counted (add, the row gather: activations only).
        const bool reads = table[i][4] != "0.000";
        EXPECT_TRUE(std::regex_match(table[i][6], std::regex(reads ? R"(\d+\.\d\d)" : "-"))) << table[i][6];
        EXPECT_TRUE(std::regex_match(table[i][7], std::regex(reads ? R"(\d+\.\d%)" : "-"))) << table[i][7];
    }
    EXPECT_EQ(ops, (std::vector<std::string>{"embedding", "rms_norm", "add", "mlp", "kda", "mla", "moe", "row gather",
                                             "lm_head", "all ops"}));

    // JSON: the same profile per tg record; its calls follow config.json's layers, and its bytes add up to the bytes
    // per token the bench counts for the timed runs (weights per token, KDA state, MLA cache at each context).
    const ToolRun r = bench({"-p", "4", "-n", "3", "-d", "0,8", "-r", "1", "--cache-dtype", "bf16", "-o", "json", "--quiet"});
    ASSERT_EQ(r.code, 0) << describe(r);
    const json records = json::parse(r.out);
    ASSERT_EQ(tests_of(records), (std::vector<std::string>{"pp4", "tg3", "pp4 @ d8", "tg3 @ d8"}));
    std::ifstream cf(fs::path(HALO_DEMO_DIR) / "config.json");
    const json config = json::parse(cf);
    const json& la = config["linear_attn_config"];
    const int64_t layers = config["num_hidden_layers"], dense = config["first_k_dense_replace"];
    const std::map<std::string, int64_t> calls_per_token = {
        {"embedding", 1}, {"rms_norm", 2 * layers + 1}, {"add", 2 * layers}, {"mlp", dense},
        {"kda", int64_t(la["kda_layers"].size())}, {"mla", int64_t(la["full_attn_layers"].size())},
        {"moe", layers - dense}, {"row gather", 1}, {"lm_head", 1}};
    // The profile and the bench's figure are byte counts of the same tensors, cache and state over the same tokens:
    // they agree to the byte unless one of them misses a tensor. Half the checkpoint's smallest tensor is the bound:
    // no rounding reaches it (the per-token figures are doubles, exact to ~1e-16 of them) and a tensor counted by one
    // side only exceeds it.
    uint64_t smallest = UINT64_MAX;
    const json header = safetensors_header(fs::path(HALO_DEMO_DIR) / "model.safetensors");
    for (const auto& [name, t] : header.items())
        smallest = std::min(smallest, t["data_offsets"][1].get<uint64_t>() - t["data_offsets"][0].get<uint64_t>());
    const double tolerance = 0.5 * double(smallest);
    for (const auto& rec : records) {
        SCOPED_TRACE(rec["test"].get<std::string>());
        if (rec["n_gen"] == 0) {
            EXPECT_FALSE(rec.contains("op_profile")) << "only decode tests are profiled";
            continue;
        }
        ASSERT_TRUE(rec.contains("op_profile"));
        const json& prof = rec["op_profile"];
        EXPECT_EQ(prof["tokens"], 3);
        EXPECT_GT(prof["wall_ms_per_token"].get<double>(), 0);
        uint64_t bytes = 0;
        double per_token = 0, ms = 0;
        std::map<std::string, int64_t> calls;
        for (const auto& op : prof["ops"]) {
            const std::string name = op["op"];
            calls[name] = op["calls"].get<int64_t>() / 3;
            EXPECT_EQ(op["calls"].get<int64_t>() % 3, 0) << name;
            EXPECT_DOUBLE_EQ(op["calls_per_token"].get<double>(), double(calls[name])) << name;
            const uint64_t b = op["weight_bytes"].get<uint64_t>() + op["state_bytes"].get<uint64_t>();
            bytes += b;
            per_token += op["bytes_per_token"].get<double>();
            ms += op["ms_per_token"].get<double>();
            EXPECT_NEAR(op["bytes_per_token"].get<double>(), double(b) / 3, 1e-9 * double(b)) << name;
            EXPECT_GT(op["ms_per_token"].get<double>(), 0) << name;
            const double gbs = op["seconds"].get<double>() > 0 ? double(b) / op["seconds"].get<double>() / 1e9 : 0;
            EXPECT_NEAR(op["gbs"].get<double>(), gbs, 1e-9 * gbs) << name;
            EXPECT_NEAR(op["bandwidth_fraction"].get<double>(), gbs / rec["bandwidth_gbs"].get<double>(), 1e-9) << name;
            // Where the sequence state is: the KDA state and conv history, the MLA cache.
            EXPECT_EQ(op["state_bytes"].get<uint64_t>() > 0, name == "kda" || name == "mla") << name;
        }
        EXPECT_EQ(calls, calls_per_token);
        EXPECT_NEAR(double(bytes), rec["bytes_per_run"].get<double>(), tolerance);
        EXPECT_NEAR(per_token, rec["bytes_per_run"].get<double>() / 3, tolerance);
        EXPECT_LE(ms, prof["wall_ms_per_token"].get<double>() * (1 + 1e-9)) << "the ops' time is part of the wall time";
    }

    // Off: no profile, no extra pass.
    const ToolRun off = bench({"-p", "0", "-n", "2", "-r", "1", "--op-profile", "off", "--quiet"});
    ASSERT_EQ(off.code, 0) << describe(off);
    EXPECT_EQ(off.out.find("op profile"), std::string::npos) << off.out;
    const ToolRun off_json = bench({"-p", "0", "-n", "2", "-r", "1", "--op-profile", "off", "-o", "jsonl", "--quiet"});
    ASSERT_EQ(off_json.code, 0) << describe(off_json);
    EXPECT_FALSE(json::parse(off_json.out).contains("op_profile"));
}

TEST_F(BenchCli, BadFlagsGiveClearErrors) {
    const struct {
        std::vector<std::string> args;
        std::vector<std::string> words;
    } cases[] = {
        {{"-p", "x"}, {"-p: 'x' is not a whole number"}},
        {{"-p", "1,,2"}, {"-p: an empty item"}},
        {{"-n", "16777217"}, {"-n: '16777217' is outside 0..16777216"}},
        {{"-d", "4k"}, {"-d: '4k' is not a whole number"}},
        {{"-t", "two"}, {"-t: 'two' is not a whole number"}},
        {{"-pg", "512"}, {"-pg: '512' is not one prompt,generation pair"}},
        {{"-pg"}, {"-pg needs one prompt,generation pair"}},
        {{"-pg", "0,0"}, {"-pg: 0,0 is an empty test"}},
        {{"--pg", "1,2,3"}, {"--pg: '1,2,3' is not one prompt,generation pair"}},
        {{"-p", "0", "-n", "0"}, {"nothing to run"}},
        {{"-r", "0"}, {"--repetitions", "1 to 1000"}},
        {{"-o", "xml"}, {"--output", "xml"}},
        {{"--backends", "cpu,,vulkan"}, {"--backends: an empty name"}},
        {{"--backends", "cpu,cpu"}, {"--backends names 'cpu' twice"}},
        {{"--backend", "cpu", "--backends", "cpu"}, {"--backend and --backends were both given"}},
        {{"--backends", "cpu,nonexistent", "-p", "1", "-n", "0", "-r", "1"}, {"nonexistent"}},
        {{"--json-out", dir_.string()}, {"--json-out", "is a directory"}},
        {{"-d", "2000000", "-p", "8", "-n", "0"}, {"pp8 @ d2000000", "maximum length"}},
        {{"-p", "64", "-n", "0", "--context", "16"}, {"pp64", "raise --context"}},
        {{"--prompt-len", "8"}, {"--prompt-len"}},  // the old flags are gone
        {{"--op-profile", "yes"}, {"--op-profile", "yes"}},
    };
    for (const auto& c : cases) {
        std::string what = "bench";
        for (const auto& a : c.args) what += " " + a;
        const ToolRun r = bench(c.args);
        expect_clear_error(r, c.words, what);
        EXPECT_EQ(r.out, "") << what;
    }
    const ToolRun small = run_tool(HALO_ENGINE_EXE, {"bench", "--bandwidth-gb", "0.01"});
    expect_clear_error(small, {"--bandwidth-gb must be between 0.1 and 1024"}, "--bandwidth-gb 0.01");
}

}  // namespace
}  // namespace halo::test
