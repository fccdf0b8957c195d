#include "bench/prefix/report.h"

#include <algorithm>
#include <cstdio>

namespace halo::bench {

namespace {

constexpr int32_t kTargetTurn = 10;     // the target: this turn's TTFT ...
constexpr double kTargetRatio = 1.5;    // ... within this many times turn 1's, for the same number of new tokens

std::string format(const char* fmt, auto... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

double mb(uint64_t bytes) { return double(bytes) / 1e6; }

// What the cache holds for the conversation after its last turn, and the bound it must stay within: one KDA state
// copy per snapshot kept, plus the MLA pages of the conversation's tokens (shared by every snapshot of a prefix of
// it) and at most one partly filled page per snapshot (the page a snapshot ends in is copied when the sequence
// writes on into it).
struct Memory {
    int32_t snapshots = 0, pages = 0;
    uint64_t snapshot_bytes = 0;   // held, as the cache counts them
    uint64_t held = 0;             // snapshot_bytes + pages x page bytes
    int64_t conversation_tokens = 0;
    int32_t conversation_pages = 0;
    uint64_t bound = 0;
    uint64_t unshared = 0;         // the same snapshots, if each kept its own copy of its prefix's pages (at most)
};

Memory memory_of(const ReplaySetup& s, const std::vector<Turn>& turns) {
    Memory m;
    if (turns.empty()) return m;
    const PrefixCacheStats& p = turns.back().prefix;
    m.snapshots = p.snapshots;
    m.pages = p.pages;
    m.snapshot_bytes = p.snapshot_bytes;
    m.held = p.snapshot_bytes + uint64_t(p.pages) * s.page_bytes;
    // The turn-end snapshot: the prompt and the reply but its last token (sampled, never fed).
    m.conversation_tokens = turns.back().prompt_tokens() + std::max<int64_t>(int64_t(turns.back().reuse.ids.size()) - 1, 0);
    m.conversation_pages = int32_t((m.conversation_tokens + s.page_size - 1) / std::max(s.page_size, 1));
    m.bound = uint64_t(m.snapshots) * s.snapshot_bytes + uint64_t(m.conversation_pages + m.snapshots) * s.page_bytes;
    m.unshared = uint64_t(m.snapshots) * (s.snapshot_bytes + uint64_t(m.conversation_pages) * s.page_bytes);
    return m;
}

// Turn `number` (from 1), or null.
const Turn* turn_at(const std::vector<Turn>& turns, int32_t number) {
    return number >= 1 && size_t(number) <= turns.size() ? &turns[size_t(number) - 1] : nullptr;
}

const Turn* largest_cold(const std::vector<Turn>& turns) {
    const Turn* best = nullptr;
    for (const Turn& t : turns)
        if (t.cold_measured && t.cold.error.empty() && t.reuse.error.empty()) best = &t;
    return best;
}

// TTFT of `t` over turn 1's, as measured and per new token read.
double ttft_ratio(const Turn& t, const Turn& first) { return t.reuse.ttft_s / first.reuse.ttft_s; }
double cpu_ratio(const Turn& t, const Turn& first) { return t.reuse.ttft_cpu_s / first.reuse.ttft_cpu_s; }
double ttft_ratio_per_token(const Turn& t, const Turn& first) {
    return (t.reuse.ttft_s / double(std::max<int64_t>(t.new_read(), 1))) /
           (first.reuse.ttft_s / double(std::max<int64_t>(first.new_read(), 1)));
}

}  // namespace

std::vector<Check> replay_checks(const ReplaySetup& s, const std::vector<Turn>& turns) {
    std::vector<Check> checks;
    if (turns.empty()) {
        checks.push_back({"turns run", false, "no turn fits --max-tokens"});
        return checks;
    }
    for (const Turn& t : turns) {
        if (!t.reuse.error.empty()) checks.push_back({format("turn %d with reuse", t.number), false, t.reuse.error});
        if (t.cold_measured && !t.cold.error.empty())
            checks.push_back({format("turn %d cold", t.number), false, t.cold.error});
    }
    for (const Turn& t : turns) {
        if (!t.cold_measured) continue;
        Check c{format("turn %d greedy reply, reuse vs cold", t.number), t.reuse.ids == t.cold.ids, ""};
        if (c.ok) {
            c.detail = format("MATCH (%zu tokens)", t.reuse.ids.size());
        } else {
            size_t at = 0;
            while (at < t.reuse.ids.size() && at < t.cold.ids.size() && t.reuse.ids[at] == t.cold.ids[at]) ++at;
            c.detail = format("MISMATCH from token %zu (reuse %zu tokens, cold %zu)", at, t.reuse.ids.size(),
                              t.cold.ids.size());
        }
        checks.push_back(c);
        if (t.cold.cached_tokens != 0)
            checks.push_back({format("turn %d cold reads its whole prompt", t.number), false,
                              format("%lld tokens came from a cache", (long long)t.cold.cached_tokens)});
    }
    // Turn k resumes from turn k-1's end snapshot (its prompt and reply but the reply's last token, which was
    // sampled and never fed): the newest entry, which least-recently-used eviction keeps whatever else it drops.
    Check resumed{"every turn after the first resumes from the end of the previous one", true, ""};
    for (size_t i = 1; i < turns.size() && resumed.ok; ++i) {
        const Turn& prev = turns[i - 1];
        const int64_t want = prev.prompt_tokens() + int64_t(prev.reuse.ids.size()) - 1;
        if (turns[i].reuse.cached_tokens != want) {
            resumed.ok = false;
            resumed.detail = format("turn %d took %lld tokens from the cache, not %lld", turns[i].number,
                                    (long long)turns[i].reuse.cached_tokens, (long long)want);
        }
    }
    if (resumed.ok) resumed.detail = format("%zu turns", turns.size() - 1);
    checks.push_back(resumed);

    const Memory m = memory_of(s, turns);
    Check held{"snapshot memory within KDA state x snapshots + MLA pages of the conversation and one page per snapshot",
               m.snapshot_bytes == uint64_t(m.snapshots) * s.snapshot_bytes && m.held <= m.bound, ""};
    held.detail = format("%.1f MB held, bound %.1f MB", mb(m.held), mb(m.bound));
    checks.push_back(held);
    return checks;
}

std::string replay_markdown(const ReplaySetup& s, const std::vector<Turn>& turns, const std::vector<Check>& checks) {
    const ReplaySettings& r = s.settings;
    std::string out;
    out += format("prefix_replay: %s on %s (%s); context %lld, pages for %d sequences (%d pages), prefix cache %.0f MB (%d snapshots of %.2f MB), "
                  "stride %lld, MLA page %d tokens = %.3f MB\n",
                  s.model_dir.c_str(), s.device.c_str(), s.cpu.c_str(), (long long)s.context, s.sequences, s.total_pages, mb(s.cache_bytes),
                  s.max_snapshots, mb(s.snapshot_bytes), (long long)s.stride, s.page_size, mb(s.page_bytes));
    out += format("conversation: system prompt %lld tokens, then per turn the previous reply + %lld new tokens; "
                  "%d-token greedy replies; up to %lld tokens; seed %llu\n\n",
                  (long long)r.first, (long long)r.fresh, r.reply, (long long)r.max_tokens, (unsigned long long)r.seed);
    out += "| turn | prompt tokens | cached | new read | TTFT reuse s (CPU s) | TTFT cold s (CPU s) | cold / reuse | "
           "snapshots | snapshot MB | MLA pages | evictions | load 1m |\n";
    out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const Turn& t : turns) {
        const std::string cold = t.cold_measured ? format("%.3f (%.2f)", t.cold.ttft_s, t.cold.ttft_cpu_s) : "";
        const std::string ratio = t.cold_measured ? format("%.1fx", t.cold.ttft_s / t.reuse.ttft_s) : "";
        out += format("| %d | %lld | %lld | %lld | %.3f (%.2f) | %s | %s | %d | %.1f | %d | %llu | %.1f |\n", t.number,
                      (long long)t.prompt_tokens(), (long long)t.reuse.cached_tokens, (long long)t.new_read(),
                      t.reuse.ttft_s, t.reuse.ttft_cpu_s, cold.c_str(), ratio.c_str(), t.prefix.snapshots,
                      mb(t.prefix.snapshot_bytes), t.prefix.pages, (unsigned long long)t.prefix.evictions,
                      t.reuse.load_1m);
    }
    out += "\nSummary\n";
    if (const Turn* first = turn_at(turns, 1)) {
        out += format("- TTFT turn 1: %.3f s (%.2f CPU s) for %lld new tokens\n", first->reuse.ttft_s,
                      first->reuse.ttft_cpu_s, (long long)first->new_read());
        auto versus_first = [&](const Turn& t) {
            return format("TTFT %.3f s (%.2f CPU s) for %lld new tokens (%lld cached): %.2fx turn 1 (%.2fx per new "
                          "token; CPU time %.2fx)",
                          t.reuse.ttft_s, t.reuse.ttft_cpu_s, (long long)t.new_read(), (long long)t.reuse.cached_tokens,
                          ttft_ratio(t, *first), ttft_ratio_per_token(t, *first), cpu_ratio(t, *first));
        };
        if (const Turn* tenth = turn_at(turns, kTargetTurn))
            out += format("- turn %d: %s; target within %.1fx: %s (CPU time: %s)\n", kTargetTurn,
                          versus_first(*tenth).c_str(), kTargetRatio,
                          ttft_ratio(*tenth, *first) <= kTargetRatio ? "met" : "missed",
                          cpu_ratio(*tenth, *first) <= kTargetRatio ? "met" : "missed");
        else
            out += format("- turn %d was not reached (%zu turns)\n", kTargetTurn, turns.size());
        out += format("- last turn (%d): %s\n", turns.back().number, versus_first(turns.back()).c_str());
        if (r.first != r.fresh + 1)
            out += format("- note: turn 1 reads %lld tokens and later turns %lld (the previous reply's last token and "
                          "%lld new); the per-token ratio compares them fairly\n",
                          (long long)r.first, (long long)r.fresh + 1, (long long)r.fresh);
    }
    if (const Turn* c = largest_cold(turns))
        out += format("- reuse speedup at turn %d (%lld prompt tokens, the largest measured cold): TTFT %.3f s cold vs "
                      "%.3f s with reuse = %.1fx (CPU time %.2f s vs %.2f s = %.1fx)\n",
                      c->number, (long long)c->prompt_tokens(), c->cold.ttft_s, c->reuse.ttft_s,
                      c->cold.ttft_s / c->reuse.ttft_s, c->cold.ttft_cpu_s, c->reuse.ttft_cpu_s,
                      c->cold.ttft_cpu_s / c->reuse.ttft_cpu_s);
    const Memory m = memory_of(s, turns);
    if (!turns.empty())
        out += format("- snapshot memory for the conversation (%lld tokens): %.1f MB = %d snapshots x %.2f MB of KDA "
                      "state (%.1f MB) + %d MLA pages x %.3f MB (%.1f MB); bound: %d snapshots x %.2f MB + (%d "
                      "conversation pages + one partly filled page per snapshot) x %.3f MB = %.1f MB; %s. Without "
                      "page sharing the same snapshots could need up to %.1f MB; host memory (token lists, kept "
                      "logits) %.1f MB\n",
                      (long long)m.conversation_tokens, mb(m.held), m.snapshots, mb(s.snapshot_bytes),
                      mb(m.snapshot_bytes), m.pages, mb(s.page_bytes), mb(uint64_t(m.pages) * s.page_bytes),
                      m.snapshots, mb(s.snapshot_bytes), m.conversation_pages, mb(s.page_bytes), mb(m.bound),
                      m.held <= m.bound ? "within" : "OVER", mb(m.unshared), mb(turns.back().prefix.host_bytes));

    out += "\nChecks\n";
    for (const Check& c : checks)
        out += format("- %s: %s%s%s\n", c.ok ? "ok" : "FAILED", c.name.c_str(), c.detail.empty() ? "" : ": ",
                      c.detail.c_str());
    return out;
}

nlohmann::json replay_json(const ReplaySetup& s, const std::vector<Turn>& turns, const std::vector<Check>& checks) {
    using nlohmann::json;
    const ReplaySettings& r = s.settings;
    json j;
    j["setup"] = {{"model", s.model_dir},
                  {"device", s.device},
                  {"cpu", s.cpu},
                  {"threads", s.threads},
                  {"context", s.context},
                  {"sequences", s.sequences},
                  {"total_pages", s.total_pages},
                  {"prefix_cache_bytes", s.cache_bytes},
                  {"max_snapshots", s.max_snapshots},
                  {"stride", s.stride},
                  {"snapshot_bytes", s.snapshot_bytes},
                  {"page_bytes", s.page_bytes},
                  {"page_size", s.page_size},
                  {"first", r.first},
                  {"new", r.fresh},
                  {"reply", r.reply},
                  {"max_tokens", r.max_tokens},
                  {"cold_every", r.cold_every},
                  {"seed", r.seed}};
    json rows = json::array();
    for (const Turn& t : turns) {
        json row = {{"turn", t.number},
                    {"prompt_tokens", t.prompt_tokens()},
                    {"cached_tokens", t.reuse.cached_tokens},
                    {"new_tokens_read", t.new_read()},
                    {"ttft_s", t.reuse.ttft_s},
                    {"ttft_cpu_s", t.reuse.ttft_cpu_s},
                    {"load_1m", t.reuse.load_1m},
                    {"total_s", t.reuse.total_s},
                    {"reply_tokens", t.reuse.ids.size()},
                    {"snapshots", t.prefix.snapshots},
                    {"snapshot_bytes", t.prefix.snapshot_bytes},
                    {"host_bytes", t.prefix.host_bytes},
                    {"pages", t.prefix.pages},
                    {"lookups", t.prefix.lookups},
                    {"hits", t.prefix.hits},
                    {"tokens_reused", t.prefix.tokens_reused},
                    {"snapshots_taken", t.prefix.snapshots_taken},
                    {"evictions", t.prefix.evictions},
                    {"cold_ttft_s", nullptr},
                    {"cold_ttft_cpu_s", nullptr},
                    {"cold_total_s", nullptr},
                    {"cold_over_reuse", nullptr},
                    {"match", nullptr}};
        if (!t.reuse.error.empty()) row["error"] = t.reuse.error;
        if (t.cold_measured) {
            row["cold_ttft_s"] = t.cold.ttft_s;
            row["cold_ttft_cpu_s"] = t.cold.ttft_cpu_s;
            row["cold_load_1m"] = t.cold.load_1m;
            row["cold_total_s"] = t.cold.total_s;
            row["cold_over_reuse"] = t.cold.ttft_s / t.reuse.ttft_s;
            row["match"] = t.reuse.ids == t.cold.ids;
            if (!t.cold.error.empty()) row["cold_error"] = t.cold.error;
        }
        rows.push_back(row);
    }
    j["turns"] = rows;

    json summary = json::object();
    if (const Turn* first = turn_at(turns, 1)) {
        summary["ttft_turn1_s"] = first->reuse.ttft_s;
        summary["ttft_turn1_cpu_s"] = first->reuse.ttft_cpu_s;
        if (const Turn* tenth = turn_at(turns, kTargetTurn)) {
            summary["ttft_turn10_s"] = tenth->reuse.ttft_s;
            summary["turn10_over_turn1"] = ttft_ratio(*tenth, *first);
            summary["turn10_over_turn1_per_new_token"] = ttft_ratio_per_token(*tenth, *first);
            summary["turn10_over_turn1_cpu"] = cpu_ratio(*tenth, *first);
            summary["turn10_target"] = kTargetRatio;
            summary["turn10_target_met"] = ttft_ratio(*tenth, *first) <= kTargetRatio;
        }
        summary["last_turn"] = turns.back().number;
        summary["ttft_last_s"] = turns.back().reuse.ttft_s;
        summary["ttft_last_cpu_s"] = turns.back().reuse.ttft_cpu_s;
        summary["last_over_turn1"] = ttft_ratio(turns.back(), *first);
        summary["last_over_turn1_per_new_token"] = ttft_ratio_per_token(turns.back(), *first);
        summary["last_over_turn1_cpu"] = cpu_ratio(turns.back(), *first);
    }
    if (const Turn* c = largest_cold(turns))
        summary["largest_cold"] = {{"turn", c->number},
                                   {"prompt_tokens", c->prompt_tokens()},
                                   {"cold_ttft_s", c->cold.ttft_s},
                                   {"reuse_ttft_s", c->reuse.ttft_s},
                                   {"speedup", c->cold.ttft_s / c->reuse.ttft_s},
                                   {"cold_ttft_cpu_s", c->cold.ttft_cpu_s},
                                   {"reuse_ttft_cpu_s", c->reuse.ttft_cpu_s},
                                   {"speedup_cpu", c->cold.ttft_cpu_s / c->reuse.ttft_cpu_s}};
    const Memory m = memory_of(s, turns);
    summary["memory"] = {{"conversation_tokens", m.conversation_tokens},
                         {"conversation_pages", m.conversation_pages},
                         {"snapshots", m.snapshots},
                         {"snapshot_bytes", m.snapshot_bytes},
                         {"pages", m.pages},
                         {"held_bytes", m.held},
                         {"bound_bytes", m.bound},
                         {"unshared_bytes", m.unshared},
                         {"within_bound", m.held <= m.bound}};
    j["summary"] = summary;
    json cj = json::array();
    bool all_ok = true;
    for (const Check& c : checks) {
        cj.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
        all_ok = all_ok && c.ok;
    }
    j["checks"] = cj;
    j["ok"] = all_ok;
    return j;
}

}  // namespace halo::bench
