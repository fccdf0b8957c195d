// The memory plan in words: the table people read, the JSON scripts read, the allocated-beside-planned report and
// the sentence that refuses a plan that does not fit.
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/memory_plan.h"

namespace halo {

using namespace halo::ops;

namespace {

std::string with_commas(uint64_t n) {
    std::string s = std::to_string(n);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
}

std::string mib_text(uint64_t bytes) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(1 << 20));
    return buf;
}

const char* kUseKey[kMemoryUseCount] = {"weights", "state", "cache", "scratch"};

std::string origin_of(const OptionOrigins& origin, const std::string& key, const std::string& fallback) {
    const auto it = origin.find(key);
    return it != origin.end() ? it->second : fallback;
}

// origin_of, with a profile's path cut to its file name ("context in x.toml line 2"): the sentence names several.
std::string short_origin(const OptionOrigins& origin, const std::string& key, const std::string& fallback) {
    std::string s = origin_of(origin, key, fallback);
    const size_t in = s.find(" in "), line = s.rfind(" line ");
    if (in == std::string::npos || line == std::string::npos || line < in) return s;
    const std::string path = s.substr(in + 4, line - in - 4);
    const size_t slash = path.find_last_of('/');
    return s.substr(0, in + 4) + (slash == std::string::npos ? path : path.substr(slash + 1)) + s.substr(line);
}

// "heap" or, where the plan has no device, the name asked for.
std::string placement_of(const MemoryPlan& p, int u) { return p.placement_name[u]; }

}  // namespace

std::string size_text(uint64_t bytes) {
    if (bytes < 1000) return std::to_string(bytes) + " B";
    const char* units[] = {"kB", "MB", "GB", "TB", "PB"};
    double v = double(bytes) / 1000;
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        ++i;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[i]);
    return buf;
}

std::string MemoryPlan::describe(const DeviceInfo&) const { return describe(); }

std::string MemoryPlan::describe() const {
    std::string s;
    for (int u = 0; u < kMemoryUseCount; ++u) {
        std::string how = placement_name[u];
        if (u == 0 && weights_zero_copy) how += ", in place";
        if (u == 0 && quantized_at_load)
            how += ", " + std::to_string(quantized_at_load) + " tensors quantized at load" +
                   (weights_zero_copy ? " (" + size_text(weights_copied_bytes) + " of them copied)" : "");
        s += std::string(u ? ", " : "") + memory_use_name(MemoryUse(u)) + " " + size_text(bytes[u]) + " (" + how + ")";
    }
    if (plugin_bytes) s += ", plugin temporaries " + size_text(plugin_bytes);
    return s;
}

std::string plan_table(const MemoryPlan& p) {
    const MemoryLayout& L = p.layout;
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "memory plan: context %lld x %d sequence%s, steps of %d rows, %s cache%s\n",
                  (long long)p.context, p.sequences, p.sequences == 1 ? "" : "s", p.step_rows, dtype_name(L.cache_dtype),
                  p.device_name.empty() ? "" : (", on " + p.device_name).c_str());
    out += line;
    if (!p.device_unavailable.empty()) out += "  device: unavailable (" + p.device_unavailable + "); no limits checked\n";
    std::snprintf(line, sizeof line, "  %-14s %9s %9s %9s %9s %9s %9s %10s  %s\n", "placement", "weights", "state",
                  "cache", "scratch", "plugin", "total", "available", "fits");
    out += line;
    for (const PlacementPlan& pp : p.placements) {
        const std::string avail = pp.limit() ? size_text(pp.limit()) : "unknown";
        const char* fits = !pp.limit() ? "?" : pp.fits() ? "yes" : "NO";
        // Weights read only while loading are left out (the weights line says how much): this is what must fit.
        std::snprintf(line, sizeof line, "  %-14s %9s %9s %9s %9s %9s %9s %10s  %s%s\n", pp.name.c_str(),
                      size_text(pp.weights - pp.read_once).c_str(), size_text(pp.state).c_str(), size_text(pp.cache).c_str(),
                      size_text(pp.scratch).c_str(), size_text(pp.plugin).c_str(), size_text(pp.needed()).c_str(),
                      avail.c_str(), fits, pp.limited_by_budget() ? " (budget)" : "");
        out += line;
    }
    for (const MemoryPlan::Pool& q : p.pools()) {
        std::string names;
        for (size_t i = 0; i < q.placements.size(); ++i)
            names += (i == 0 ? "" : i + 1 == q.placements.size() ? " and " : ", ") + q.placements[i];
        out += "  " + names + " share " + q.name + ": " + size_text(q.needed) + " together, " +
               (q.limit ? size_text(q.limit) + " available, fits: " + (q.fits() ? "yes" : "NO") : "available unknown") +
               "\n";
    }
    std::string dtypes;
    for (const auto& [name, bytes] : p.weights_by_dtype) dtypes += (dtypes.empty() ? "" : " + ") + name + " " + size_text(bytes);
    out += "  weights: " + size_text(L.weight_bytes) + " held (" + dtypes + ") in " + placement_of(p, 0) +
           (L.weights_in_place ? ", used in place from the mapped files (" + size_text(L.in_place_bytes) + ")" : ", copied");
    if (p.quantized_at_load) out += ", " + std::to_string(p.quantized_at_load) + " tensors quantized at load";
    if (L.in_place_read_once)
        out += " (their float originals, " + size_text(L.in_place_read_once) +
               " of the mapped files, are read once and not counted against the limit)";
    out += "\n";
    if (L.kda_layers)
        out += "  KDA state: " + size_text(p.kda_state_per_sequence) + " (" + mib_text(p.kda_state_per_sequence) +
               ") of F32 recurrent state per sequence, plus " + size_text(p.kda_conv_per_sequence) +
               " of F32 conv history, x " + std::to_string(p.sequences) + " in " + placement_of(p, 1) + "\n";
    if (L.prefix_snapshots)
        out += "  prefix cache: up to " + std::to_string(L.prefix_snapshots) + " snapshots of " +
               size_text(L.prefix_snapshot_bytes()) + " (KDA state and conv history) = " + size_text(L.prefix_bytes()) +
               " in " + placement_of(p, 1) + ", allocated as prompts are read; cached prefixes' MLA pages are cache "
               "pages no running sequence needs\n";
    if (L.mla_layers)
        out += "  MLA cache: " + with_commas(p.cache_per_token) + " B per token (" + dtype_name(L.cache_dtype) + ") x " +
               std::to_string(p.context) + " tokens x " + std::to_string(p.sequences) + " in " +
               std::to_string(L.page_size) + "-token pages, in " + placement_of(p, 2) + "\n";
    out += "  scratch: " + size_text(L.scratch_bytes) + " for steps of " + std::to_string(p.step_rows) + " rows and " +
           std::to_string(p.logit_rows) + " logit rows, in " + placement_of(p, 3) + "\n";
    if (!p.plugin.empty()) {
        out += "  plugin:";
        for (size_t i = 0; i < p.plugin.size(); ++i) {
            const InternalUse& u = p.plugin[i];
            const std::string where = u.placement >= 0 && size_t(u.placement) < p.placements.size()
                                          ? p.placements[size_t(u.placement)].name
                                          : "outside the placements";
            out += std::string(i ? "," : "") + " " + u.what + " " + size_text(u.bytes) + " (" + where + ")";
        }
        out += "\n";
    }
    return out;
}

nlohmann::json plan_json(const MemoryPlan& p) {
    using nlohmann::json;
    const MemoryLayout& L = p.layout;
    json j;
    j["context"] = p.context;
    j["sequences"] = p.sequences;
    j["step_rows"] = p.step_rows;
    j["logit_rows"] = p.logit_rows;
    json w;
    w["bytes"] = L.weight_bytes;
    w["by_dtype"] = p.weights_by_dtype;
    w["placement"] = placement_of(p, 0);
    w["in_place"] = L.weights_in_place;
    w["in_place_bytes"] = L.in_place_bytes;
    w["in_place_read_once_bytes"] = L.in_place_read_once;
    w["copied_bytes"] = L.copied_bytes;
    w["quantized_at_load"] = p.quantized_at_load;
    j["weights"] = w;
    j["kda_state"] = {{"layers", L.kda_layers},
                      {"bytes_per_sequence", p.kda_state_per_sequence},
                      {"conv_bytes_per_sequence", p.kda_conv_per_sequence},
                      {"sequences", p.sequences},
                      {"bytes", L.state_bytes()},
                      {"placement", placement_of(p, 1)}};
    j["prefix_cache"] = {{"snapshots", L.prefix_snapshots},
                         {"bytes_per_snapshot", L.prefix_snapshot_bytes()},
                         {"bytes", L.prefix_bytes()},
                         {"placement", placement_of(p, 1)}};
    j["mla_cache"] = {{"layers", L.mla_layers},
                      {"bytes_per_token", p.cache_per_token},
                      {"dtype", dtype_name(L.cache_dtype)},
                      {"context", p.context},
                      {"sequences", p.sequences},
                      {"page_size", L.page_size},
                      {"pages", L.cache_pages},
                      {"bytes", L.cache_bytes()},
                      {"placement", placement_of(p, 2)}};
    j["scratch"] = {{"bytes", L.scratch_bytes}, {"placement", placement_of(p, 3)}};
    json plugin = json::array();
    for (const InternalUse& u : p.plugin)
        plugin.push_back({{"what", u.what},
                          {"bytes", u.bytes},
                          {"placement", u.placement >= 0 && size_t(u.placement) < p.placements.size()
                                            ? json(p.placements[size_t(u.placement)].name)
                                            : json(nullptr)}});
    j["plugin"] = plugin;
    json places = json::array();
    for (const PlacementPlan& pp : p.placements) {
        json q = {{"name", pp.name},     {"weights", pp.weights}, {"state", pp.state},   {"cache", pp.cache},
                  {"scratch", pp.scratch}, {"plugin", pp.plugin},  {"total", pp.total()}, {"read_once", pp.read_once},
                  {"needed", pp.needed()}};
        q["device_available"] = pp.device_bytes ? json(pp.device_bytes) : json(nullptr);
        q["budget"] = pp.budget ? json(pp.budget) : json(nullptr);
        q["available"] = pp.limit() ? json(pp.limit()) : json(nullptr);
        q["fits"] = pp.limit() ? json(pp.fits()) : json(nullptr);
        places.push_back(q);
    }
    j["placements"] = places;
    json pools = json::array();
    for (const MemoryPlan::Pool& q : p.pools())
        pools.push_back({{"name", q.name},
                         {"placements", q.placements},
                         {"needed", q.needed},
                         {"available", q.limit ? json(q.limit) : json(nullptr)},
                         {"fits", q.limit ? json(q.fits()) : json(nullptr)}});
    j["shared_pools"] = pools;
    if (p.device_unavailable.empty())
        j["device"] = {{"available", true}, {"name", p.device_name}};
    else
        j["device"] = {{"available", false}, {"reason", p.device_unavailable}};
    bool known = false;
    for (const PlacementPlan& pp : p.placements) known = known || pp.limit();
    j["fits"] = known ? json(p.fits()) : json(nullptr);
    return j;
}

std::string allocated_table(const MemoryPlan& p, const std::vector<uint64_t>& model,
                            const std::vector<InternalUse>& plugin) {
    std::vector<uint64_t> plugin_at(p.placements.size(), 0);
    for (const InternalUse& u : plugin)
        if (u.placement >= 0 && size_t(u.placement) < plugin_at.size()) plugin_at[size_t(u.placement)] += u.bytes;
    std::string out = "memory allocated:";
    bool first = true;
    for (size_t i = 0; i < p.placements.size(); ++i) {
        const PlacementPlan& pp = p.placements[i];
        // Prefix-cache snapshots are allocated as prompts are read: not part of what loading allocates.
        const uint64_t prefix = int32_t(i) == p.placement[int(MemoryUse::state)] ? p.layout.prefix_bytes() : 0;
        const uint64_t planned = pp.total() - pp.plugin - prefix, got = i < model.size() ? model[i] : 0;
        if (!pp.total() && !got && !plugin_at[i]) continue;
        char pct[32] = "";
        if (planned) std::snprintf(pct, sizeof pct, " (%+.1f %%)", 100.0 * (double(got) - double(planned)) / double(planned));
        out += std::string(first ? " " : "; ") + pp.name + " " + size_text(got) + " of " + size_text(planned) +
               " planned" + pct;
        if (pp.plugin || plugin_at[i])
            out += ", the plugin's own " + size_text(plugin_at[i]) + " of " + size_text(pp.plugin) + " planned";
        if (prefix) out += ", and up to " + size_text(prefix) + " of prefix-cache snapshots as prompts are read";
        first = false;
    }
    bool grows = false;
    for (size_t i = 0; i < p.placements.size(); ++i) grows = grows || plugin_at[i] < p.placements[i].plugin;
    return out + (grows ? " (the plugin's own grows to its plan in the first steps)" : "") + "\n";
}

std::string refusal(const MemoryPlan& p, const OptionOrigins& origin) {
    const PlacementPlan* over = nullptr;
    for (const PlacementPlan& pp : p.placements)
        if (!pp.fits()) {
            over = &pp;
            break;
        }
    // Placements that each fit but together overrun the memory they share: refused as one.
    PlacementPlan pooled;
    std::string pool_text;
    if (!over)
        for (const MemoryPlan::Pool& q : p.pools()) {
            if (q.fits()) continue;
            for (const PlacementPlan& pp : p.placements)
                if (pp.pool == q.name && pp.needed()) {
                    pooled.weights += pp.weights;
                    pooled.read_once += pp.read_once;
                    pooled.state += pp.state;
                    pooled.cache += pp.cache;
                    pooled.scratch += pp.scratch;
                    pooled.plugin += pp.plugin;
                    pool_text += (pool_text.empty() ? "placements '" : "' and '") + pp.name;
                }
            pooled.name = q.name;
            pooled.device_bytes = q.limit;
            pool_text += "' share " + q.name + " and together";
            over = &pooled;
            break;
        }
    if (!over) return "the memory plan fits";
    const MemoryLayout& L = p.layout;
    std::string parts;
    auto part = [&](uint64_t bytes, const std::string& text) {
        if (bytes) parts += (parts.empty() ? "" : ", ") + text + " " + size_text(bytes);
    };
    part(over->weights - over->read_once, "weights");
    if (over->cache)
        parts += std::string(parts.empty() ? "" : ", ") + "cache " + size_text(over->cache) + " (" +
                 std::to_string(p.context) + " tokens x " + std::to_string(p.sequences) + ", " +
                 dtype_name(L.cache_dtype) + ")";
    part(over->state, "state");
    part(over->scratch, "scratch");
    part(over->plugin, "plugin");
    std::string limit_from;
    if (over->limited_by_budget())
        limit_from = origin_of(origin, "budget." + over->name, "--memory-budget " + over->name + "=SIZE");
    else
        limit_from = "what " + (p.device_name.empty() ? std::string("the device") : p.device_name) + " reports for " +
                     (pool_text.empty() ? "it" : over->name);
    // What to change: the sizes of the uses this placement holds, then its limit.
    // A key set by the profile is named with its line; one left at its default by its switch.
    auto key = [&](const std::string& k, const std::string& flag) {
        const std::string from = short_origin(origin, k, flag);
        return from == flag ? flag : k + " (" + from + ")";
    };
    std::vector<std::string> lower;
    if (over->cache) {
        lower.push_back(key("context", "--context"));
        lower.push_back(key("parallel", "--parallel"));
        lower.push_back(key("cache_dtype", "--cache-dtype"));
    } else if (over->state) {
        lower.push_back(key("parallel", "--parallel"));
    }
    if (over->state && L.prefix_snapshots) lower.push_back(key("prefix_cache.size", "--prefix-cache"));
    if (over->scratch || over->plugin) lower.push_back(key("prefill_chunk", "--chunk"));
    std::vector<std::string> actions;
    if (!lower.empty()) {
        std::string a = "lower ";
        for (size_t i = 0; i < lower.size(); ++i) a += (i == 0 ? "" : i + 1 == lower.size() ? " or " : ", ") + lower[i];
        actions.push_back(a);
    }
    if (over->weights) {
        // Suggest the next step of quantization: the experts first (nearly all the bytes), then the rest.
        const bool quantized = p.weights_by_dtype.count("Q4") || p.weights_by_dtype.count("Q8");
        actions.push_back(!quantized ? "quantize the weights (--quantize-experts int4)"
                                     : "quantize more of the weights (int4 for every class: --quantize-experts, "
                                       "--quantize-shared, --quantize-attention, --quantize-lm-head)");
    }
    if (over->limited_by_budget()) {
        actions.push_back("raise the budget");
    } else if (!pool_text.empty()) {
        actions.push_back("free memory on the machine");
    } else {
        std::string uses;
        for (int u = 0; u < kMemoryUseCount; ++u)
            if (p.placement_name[u] == over->name)
                uses += std::string(uses.empty() ? "" : ", ") + "placement." + kUseKey[u];
        actions.push_back("move " + (uses.empty() ? std::string("something") : uses) + " to another placement");
    }
    std::string todo;
    for (size_t i = 0; i < actions.size(); ++i)
        todo += (i == 0 ? "" : i + 1 == actions.size() ? ", or " : ", ") + actions[i];
    const std::string who = pool_text.empty() ? "placement '" + over->name + "'" : pool_text;
    return "the memory plan does not fit: " + who + (pool_text.empty() ? " needs " : " need ") + size_text(over->needed()) + " (" +
           parts + ") but " + size_text(over->limit()) + " is available (" + limit_from + "); " + todo;
}

}  // namespace halo
