#include "core/cli/bench_report.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <utility>

namespace halo::cli {

namespace {

double mean(const std::vector<double>& v) {
    return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

// Sample standard deviation (n - 1), 0 for fewer than two values.
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double sq = 0;
    for (double x : v) sq += (x - m) * (x - m);
    return std::sqrt(sq / double(v.size() - 1));
}

std::vector<double> as_doubles(const std::vector<uint64_t>& v) { return {v.begin(), v.end()}; }

std::string format(const char* fmt, double a, double b = 0) {
    char buf[256];
    std::snprintf(buf, sizeof buf, fmt, a, b);
    return buf;
}

// llama-bench's model size column: MiB or GiB.
std::string binary_size_text(uint64_t bytes) {
    return bytes < (1ull << 30) ? format("%.2f MiB", double(bytes) / (1 << 20))
                                : format("%.2f GiB", double(bytes) / (1 << 30));
}

std::string params_text(uint64_t n) { return n < 1000000000ull ? format("%.2f M", double(n) / 1e6) : format("%.2f B", double(n) / 1e9); }

// Characters a terminal shows for UTF-8 text (continuation bytes do not count).
size_t display_width(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// A markdown table with columns padded to their widest cell; numbers right-aligned.
struct Table {
    std::vector<std::string> headers;
    std::vector<bool> right;
    std::vector<std::vector<std::string>> rows;

    void column(std::string header, bool right_aligned) {
        headers.push_back(std::move(header));
        right.push_back(right_aligned);
    }
    std::string render() const {
        std::vector<size_t> width(headers.size(), 3);
        for (size_t c = 0; c < headers.size(); ++c) width[c] = std::max(width[c], display_width(headers[c]));
        for (const auto& r : rows)
            for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], display_width(r[c]));
        auto line = [&](const std::vector<std::string>& cells) {
            std::string s = "|";
            for (size_t c = 0; c < cells.size(); ++c) {
                const std::string pad(width[c] - display_width(cells[c]), ' ');
                s += " " + (right[c] ? pad + cells[c] : cells[c] + pad) + " |";
            }
            return s + "\n";
        };
        std::string out = line(headers) + "|";
        for (size_t c = 0; c < headers.size(); ++c)
            out += " " + std::string(width[c] - 1, '-') + (right[c] ? ":" : "-") + " |";
        out += "\n";
        for (const auto& r : rows) out += line(r);
        return out;
    }
};

// One decode profile: a line on how it was taken, then per op kind its calls, time and bytes per token, the GB/s
// those bytes make in that time and their share of the measured bandwidth; a last line sums every op.
std::string op_profile_markdown(const BenchSetup& setup, const BenchRow& r) {
    const OpProfile& p = r.op_profile;
    const double tokens = p.tokens, bw = setup.bandwidth_gbs();
    OpProfileLine all{"all ops"};
    for (const OpProfileLine& l : p.ops) {
        all.calls += l.calls;
        all.seconds += l.seconds;
        all.weight_bytes += l.weight_bytes;
        all.state_bytes += l.state_bytes;
    }
    std::string out = "op profile: " + r.backend + ", " + std::to_string(r.threads) + " threads, " + r.test.name() + ": " +
                      std::to_string(p.tokens) + " tokens decoded once more, synchronised after every op: " +
                      format("%.3f ms per token in ops, %.3f ms with the host work between them", 1e3 * all.seconds / tokens,
                             1e3 * p.wall_seconds / tokens) +
                      format(" (%.3f ms timed above)\n", r.avg_ts() > 0 ? 1e3 / r.avg_ts() : 0.0);
    Table t;
    for (const char* h : {"op", "calls/token", "ms/token", "% of time", "MB/token", "state MB/token", "GB/s", "% of bw"})
        t.column(h, std::string(h) != "op");
    auto line = [&](const OpProfileLine& l) {
        const double gbs = l.seconds > 0 ? double(l.bytes()) / l.seconds / 1e9 : 0;
        t.rows.push_back({l.op, format("%.3g", double(l.calls) / tokens), format("%.3f", 1e3 * l.seconds / tokens),
                          format("%.1f%%", all.seconds > 0 ? 100 * l.seconds / all.seconds : 0.0),
                          format("%.3f", double(l.bytes()) / tokens / 1e6), format("%.3f", double(l.state_bytes) / tokens / 1e6),
                          l.bytes() > 0 ? format("%.2f", gbs) : "-",
                          l.bytes() > 0 && bw > 0 ? format("%.1f%%", 100 * gbs / bw) : "-"});
    };
    for (const OpProfileLine& l : p.ops) line(l);
    line(all);
    return out + t.render();
}

}  // namespace

std::vector<double> BenchRow::samples_ts() const {
    std::vector<double> ts;
    for (uint64_t ns : samples_ns) ts.push_back(ns > 0 ? 1e9 * double(test.tokens()) / double(ns) : 0);
    return ts;
}

double BenchRow::avg_ts() const { return mean(samples_ts()); }
double BenchRow::stddev_ts() const { return stddev(samples_ts()); }

double BenchRow::avg_gbs() const {
    std::vector<double> gbs;
    for (uint64_t ns : samples_ns) gbs.push_back(ns > 0 ? double(bytes_per_run) / double(ns) : 0);  // bytes/ns = GB/s
    return mean(gbs);
}

std::string bench_markdown(const BenchSetup& setup, const std::vector<BenchRow>& rows,
                           const std::vector<std::string>& backends) {
    std::string out;
    if (!rows.empty()) {
        const BenchRow& r = rows.front();
        out += "model: " + setup.model_dir + " (" + r.weights + "; " + format("%.1f MB of weights, %.1f MB", double(r.model_size) / 1e6,
                                                                        double(r.decode_weight_bytes) / 1e6) +
               " read per decode token)\n";
        if (r.mapped_resident_bytes > 0)
            out += format("checkpoint files: %.1f MB, ", double(r.mapped_bytes) / 1e6) +
                   format("%.1f MB of them mapped, %.1f MB of that in 2 MiB pages", double(r.mapped_resident_bytes) / 1e6,
                          double(r.mapped_huge_bytes) / 1e6) +
                   (r.mapped_huge_bytes * 2 < r.mapped_resident_bytes
                        ? " (4 KiB pages stream slower where TLB misses are dear; the page cache keeps a file it "
                          "already held in small pages until it drops the file)\n"
                        : "\n");
    }
    std::vector<std::pair<std::string, std::string>> devices;  // (backend, device) in order of appearance
    for (const BenchRow& r : rows)
        if (std::find(devices.begin(), devices.end(), std::make_pair(r.backend, r.device)) == devices.end())
            devices.emplace_back(r.backend, r.device);
    for (const auto& [backend, device] : devices) out += "device: " + backend + " = " + device + "\n";
    out += format("memory read bandwidth: %.1f GB/s before the tests, %.1f GB/s after", setup.bandwidth_before_gbs,
                  setup.bandwidth_after_gbs) +
           format(" (best of 5 passes over %.1f GB, ", double(setup.bandwidth_buffer_bytes) / 1e9) +
           std::to_string(setup.bandwidth_threads) + " threads)\n";
    out += "GB/s: bytes a test must read (weights once per prefill step and per decoded token, KDA state, MLA cache) "
           "over its time; " + format("%% of bw: its share of %.1f GB/s\n\n", setup.bandwidth_gbs());

    Table t;
    t.column("model", false);
    t.column("size", true);
    t.column("params", true);
    const bool side_by_side = backends.size() > 1;
    if (!side_by_side) t.column("backend", false);
    t.column("threads", true);
    t.column("test", true);
    auto gbs_text = [&](const BenchRow& r) { return format("%.2f", r.avg_gbs()); };
    auto share_text = [&](const BenchRow& r) {
        return setup.bandwidth_gbs() > 0 ? format("%.1f%%", 100 * r.avg_gbs() / setup.bandwidth_gbs()) : "-";
    };
    auto ts_text = [](const BenchRow& r) { return format("%.2f ± %.2f", r.avg_ts(), r.stddev_ts()); };
    if (!side_by_side) {
        t.column("t/s", true);
        t.column("GB/s", true);
        t.column("% of bw", true);
        for (const BenchRow& r : rows)
            t.rows.push_back({setup.model_name, binary_size_text(r.model_size), params_text(r.model_n_params), r.backend,
                              std::to_string(r.threads), r.test.name(), ts_text(r), gbs_text(r), share_text(r)});
    } else {
        for (const std::string& b : backends) {
            t.column(b + " t/s", true);
            t.column(b + " GB/s (% of bw)", true);
        }
        for (size_t i = 1; i < backends.size(); ++i) t.column(backends[i] + "/" + backends[0], true);
        // One line per (threads, test) of the first backend, with the same test of the others beside it.
        std::map<std::pair<std::string, std::pair<int32_t, std::string>>, const BenchRow*> by_key;
        for (const BenchRow& r : rows) by_key[{r.backend, {r.threads, r.test.name()}}] = &r;
        for (const BenchRow& first : rows) {
            if (first.backend != backends[0]) continue;
            std::vector<std::string> cells = {setup.model_name, binary_size_text(first.model_size),
                                              params_text(first.model_n_params), std::to_string(first.threads),
                                              first.test.name()};
            std::vector<const BenchRow*> same;
            for (const std::string& b : backends) {
                const auto it = by_key.find({b, {first.threads, first.test.name()}});
                same.push_back(it == by_key.end() ? nullptr : it->second);
                cells.push_back(same.back() ? ts_text(*same.back()) : "-");
                cells.push_back(same.back() ? gbs_text(*same.back()) + " (" + share_text(*same.back()) + ")" : "-");
            }
            for (size_t i = 1; i < backends.size(); ++i)
                cells.push_back(same[i] && first.avg_ts() > 0 ? format("%.3g", same[i]->avg_ts() / first.avg_ts()) : "-");
            t.rows.push_back(cells);
        }
    }
    out += t.render();
    for (const BenchRow& r : rows)
        if (r.op_profile.tokens > 0) out += "\n" + op_profile_markdown(setup, r);
    out += "\nbuild: " + setup.build_commit + "\n";
    return out;
}

nlohmann::ordered_json bench_record(const BenchSetup& setup, const BenchRow& r) {
    const std::vector<double> ns = as_doubles(r.samples_ns);
    const double bandwidth = setup.bandwidth_gbs();
    nlohmann::ordered_json j;
    j["build_commit"] = setup.build_commit;
    j["backend"] = r.backend;
    j["device"] = r.device;
    j["model_filename"] = setup.model_dir;
    j["model_type"] = setup.model_name;
    j["weights"] = r.weights;
    j["model_size"] = r.model_size;
    j["model_n_params"] = r.model_n_params;
    j["decode_weight_bytes"] = r.decode_weight_bytes;
    j["mapped_bytes"] = r.mapped_bytes;
    j["mapped_resident_bytes"] = r.mapped_resident_bytes;
    j["mapped_huge_bytes"] = r.mapped_huge_bytes;
    j["n_threads"] = r.threads;
    j["n_chunk"] = r.chunk;
    j["cache_dtype"] = r.cache_dtype;
    j["n_prompt"] = r.test.n_prompt;
    j["n_gen"] = r.test.n_gen;
    j["n_depth"] = r.test.n_depth;
    j["test"] = r.test.name();
    j["test_time"] = r.test_time;
    j["avg_ns"] = uint64_t(std::llround(mean(ns)));
    j["stddev_ns"] = uint64_t(std::llround(stddev(ns)));
    j["avg_ts"] = r.avg_ts();
    j["stddev_ts"] = r.stddev_ts();
    j["bytes_per_run"] = r.bytes_per_run;
    j["avg_gbs"] = r.avg_gbs();
    j["bandwidth_gbs"] = bandwidth;
    j["bandwidth_before_gbs"] = setup.bandwidth_before_gbs;
    j["bandwidth_after_gbs"] = setup.bandwidth_after_gbs;
    j["bandwidth_fraction"] = bandwidth > 0 ? r.avg_gbs() / bandwidth : 0.0;
    j["samples_ns"] = r.samples_ns;
    j["samples_ts"] = r.samples_ts();
    return j;
}

nlohmann::ordered_json bench_json_record(const BenchSetup& setup, const BenchRow& r) {
    nlohmann::ordered_json j = bench_record(setup, r);
    const OpProfile& p = r.op_profile;
    if (p.tokens == 0) return j;
    const double tokens = p.tokens, bw = setup.bandwidth_gbs();
    nlohmann::ordered_json prof;
    prof["tokens"] = p.tokens;
    prof["wall_ms_per_token"] = 1e3 * p.wall_seconds / tokens;
    nlohmann::ordered_json ops = nlohmann::ordered_json::array();
    for (const OpProfileLine& l : p.ops) {
        const double gbs = l.seconds > 0 ? double(l.bytes()) / l.seconds / 1e9 : 0;
        nlohmann::ordered_json o;
        o["op"] = l.op;
        o["calls"] = l.calls;
        o["seconds"] = l.seconds;
        o["weight_bytes"] = l.weight_bytes;  // over all the profiled tokens
        o["state_bytes"] = l.state_bytes;
        o["calls_per_token"] = double(l.calls) / tokens;
        o["ms_per_token"] = 1e3 * l.seconds / tokens;
        o["bytes_per_token"] = double(l.bytes()) / tokens;
        o["gbs"] = gbs;
        o["bandwidth_fraction"] = bw > 0 ? gbs / bw : 0.0;
        ops.push_back(o);
    }
    prof["ops"] = ops;
    j["op_profile"] = prof;
    return j;
}

nlohmann::ordered_json bench_json(const BenchSetup& setup, const std::vector<BenchRow>& rows) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const BenchRow& r : rows) a.push_back(bench_json_record(setup, r));
    return a;
}

namespace {

// A CSV field: strings quoted (quotes doubled) when they hold a comma, a quote or a line break; arrays joined by ';'.
std::string csv_field(const nlohmann::ordered_json& v) {
    std::string s;
    if (v.is_array()) {
        for (const auto& x : v) s += (s.empty() ? "" : ";") + x.dump();
    } else {
        s = v.is_string() ? v.get<std::string>() : v.dump();
    }
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

}  // namespace

std::string bench_csv(const BenchSetup& setup, const std::vector<BenchRow>& rows) {
    std::string out;
    const nlohmann::ordered_json header = bench_record(setup, BenchRow{});
    for (auto it = header.begin(); it != header.end(); ++it) out += (it == header.begin() ? "" : ",") + it.key();
    out += "\n";
    for (const BenchRow& r : rows) {
        const nlohmann::ordered_json rec = bench_record(setup, r);
        std::string line;
        for (auto it = rec.begin(); it != rec.end(); ++it) line += (it == rec.begin() ? "" : ",") + csv_field(it.value());
        out += line + "\n";
    }
    return out;
}

}  // namespace halo::cli
