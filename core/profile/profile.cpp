// TOML profiles (configs/*.toml): read one into RunOptions, key by key, with the same rules as the switches.
//
// Every key maps to one switch. A value is checked by feeding its text to that switch on a scratch CLI::App (so the
// switch's validator is the only copy of the rule) and copied into the caller's options unless the caller's command
// line gave the switch. Errors name the file, the line and the key, and the nearest valid key.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <toml++/toml.h>

#include "core/input/excerpt.h"
#include "core/input/nearest.h"
#include "core/profile/options.h"

namespace halo::cli {

namespace {

// What a key's value may be in TOML. Integers and floats are turned into text for the switch; `size` is an integer
// of bytes or a string with a unit.
enum class ValueType { string, path, integer, integer_or_string, number, size };

struct ProfileKey {
    const char* table;  // "" = the top level, else "placement", "quantize", "server"
    const char* name;
    const char* flag;   // the switch that sets the same field
    ValueType type;
    void (*copy)(RunOptions& to, const RunOptions& from);  // the field(s) the switch sets
};

constexpr ProfileKey kKeys[] = {
    {"", "backend", "--backend", ValueType::string, [](RunOptions& t, const RunOptions& f) { t.backend = f.backend; }},
    {"", "model", "--model", ValueType::path, [](RunOptions& t, const RunOptions& f) { t.model_dir = f.model_dir; }},
    {"", "plugin_dir", "--plugin-dir", ValueType::path,
     [](RunOptions& t, const RunOptions& f) { t.plugin_dir = f.plugin_dir; }},
    {"", "threads", "--threads", ValueType::integer, [](RunOptions& t, const RunOptions& f) { t.threads = f.threads; }},
    {"", "device", "--device", ValueType::integer, [](RunOptions& t, const RunOptions& f) { t.device = f.device; }},
    {"", "device_name", "--device-name", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.device_name = f.device_name; }},
    {"", "context", "--context", ValueType::integer_or_string,
     [](RunOptions& t, const RunOptions& f) {
         t.context = f.context;
         t.context_auto = f.context_auto;
     }},
    {"", "parallel", "--parallel", ValueType::integer,
     [](RunOptions& t, const RunOptions& f) { t.sequences = f.sequences; }},
    {"", "prefill_chunk", "--chunk", ValueType::integer, [](RunOptions& t, const RunOptions& f) { t.chunk = f.chunk; }},
    {"", "cache_dtype", "--cache-dtype", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.cache_dtype = f.cache_dtype; }},
    {"", "moe_weighting", "--moe-weighting", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.moe_weighting = f.moe_weighting; }},
    {"placement", "weights", "--weights-placement", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.placement[0] = f.placement[0]; }},
    {"placement", "state", "--state-placement", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.placement[1] = f.placement[1]; }},
    {"placement", "cache", "--cache-placement", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.placement[2] = f.placement[2]; }},
    {"placement", "scratch", "--scratch-placement", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.placement[3] = f.placement[3]; }},
    {"quantize", "experts", "--quantize-experts", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.quantize.experts = f.quantize.experts; }},
    {"quantize", "shared", "--quantize-shared", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.quantize.shared = f.quantize.shared; }},
    {"quantize", "attention", "--quantize-attention", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.quantize.attention = f.quantize.attention; }},
    {"quantize", "lm_head", "--quantize-lm-head", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.quantize.lm_head = f.quantize.lm_head; }},
    {"quantize", "group", "--quantize-group", ValueType::integer,
     [](RunOptions& t, const RunOptions& f) { t.quantize.group = f.quantize.group; }},
    {"server", "host", "--host", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.server.host = f.server.host; }},
    {"server", "port", "--port", ValueType::integer,
     [](RunOptions& t, const RunOptions& f) { t.server.port = f.server.port; }},
    {"server", "queue", "--queue", ValueType::integer,
     [](RunOptions& t, const RunOptions& f) { t.server.queue = f.server.queue; }},
    {"server", "drain_timeout", "--drain-timeout", ValueType::number,
     [](RunOptions& t, const RunOptions& f) { t.server.drain_timeout_s = f.server.drain_timeout_s; }},
    {"server", "model_name", "--model-name", ValueType::string,
     [](RunOptions& t, const RunOptions& f) { t.server.model_name = f.server.model_name; }},
    {"prefix_cache", "size", "--prefix-cache", ValueType::size,
     [](RunOptions& t, const RunOptions& f) { t.prefix_cache = f.prefix_cache; }},
    {"prefix_cache", "stride", "--prefix-stride", ValueType::integer,
     [](RunOptions& t, const RunOptions& f) { t.prefix_stride = f.prefix_stride; }},
    {"prefix_cache", "dir", "--prefix-cache-dir", ValueType::path,
     [](RunOptions& t, const RunOptions& f) { t.prefix_cache_dir = f.prefix_cache_dir; }},
};

// The tables a profile may have; [budget] has one key per placement name, so any key, each a size.
constexpr const char* kTables[] = {"placement", "budget", "quantize", "server", "prefix_cache"};
constexpr const char* kBudgetFlag = "--memory-budget";

std::string key_path(const std::string& table, const std::string& name) {
    return table.empty() ? name : table + "." + name;
}

const ProfileKey* find_key(const std::string& table, const std::string& name) {
    for (const ProfileKey& k : kKeys)
        if (table == k.table && name == k.name) return &k;
    return nullptr;
}

std::string type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "true or false";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "nothing";
    }
}

std::string wanted_name(ValueType t) {
    switch (t) {
    case ValueType::string:
    case ValueType::path: return "a string";
    case ValueType::integer: return "an integer";
    case ValueType::integer_or_string: return "an integer or \"auto\"";
    case ValueType::number: return "a number";
    case ValueType::size: return "a size (an integer of bytes or a string like \"96 GiB\")";
    }
    return "?";
}

// The value's text as the switch would receive it, or nothing when its TOML type does not fit `t`.
std::optional<std::string> value_text(const toml::node& n, ValueType t) {
    const bool string_ok = t == ValueType::string || t == ValueType::path || t == ValueType::integer_or_string ||
                           t == ValueType::size;
    const bool integer_ok = t == ValueType::integer || t == ValueType::integer_or_string || t == ValueType::number ||
                            t == ValueType::size;
    if (const auto* s = n.as_string(); s && string_ok) return s->get();
    if (const auto* i = n.as_integer(); i && integer_ok) return std::to_string(i->get());
    if (const auto* f = n.as_floating_point(); f && t == ValueType::number) {
        std::ostringstream text;
        text.precision(17);
        text << f->get();
        return text.str();
    }
    return std::nullopt;
}

// Reads the profile's text, or throws a sentence saying why it cannot.
std::string read_text(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw std::runtime_error("--profile " + path + ": the file does not exist; give a TOML profile such as configs/demo.toml");
    if (fs::is_directory(path, ec))
        throw std::runtime_error("--profile " + path + " is a folder; give a TOML file in it, such as " +
                                 (fs::path(path) / "demo.toml").string());
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("--profile " + path + " cannot be read: " + std::strerror(errno));
    constexpr size_t kMaxBytes = 1 << 20;  // a profile is a page of text; a bigger file is not one
    std::string text(kMaxBytes + 1, '\0');
    f.read(text.data(), std::streamsize(text.size()));
    if (f.bad()) throw std::runtime_error("--profile " + path + " cannot be read: " + std::strerror(errno));
    text.resize(size_t(f.gcount()));
    if (text.size() > kMaxBytes)
        throw std::runtime_error("--profile " + path + " is larger than 1 MiB, too large for a profile; give a TOML profile");
    return text;
}

struct Reader {
    RunOptions& o;
    const CLI::App& app;
    RunOptions scratch;       // receives each value through its switch, then gives it to `o`
    CLI::App scratch_app;     // every switch of RunOptions, for its rule
    std::string where;        // "configs/x.toml line "

    Reader(RunOptions& options, const CLI::App& a) : o(options), app(a) {
        add_run_options(scratch_app, scratch);
        add_server_options(scratch_app, scratch.server);
        add_prefix_cache_options(scratch_app, scratch);
        where = o.profile + " line ";
    }

    [[noreturn]] void fail(const toml::source_region& at, const std::string& what) const {
        throw std::runtime_error(where + std::to_string(at.begin.line) + ": " + what);
    }

    bool switch_given(const char* flag) const {
        const CLI::Option* opt = app.get_option_no_throw(flag);
        return opt && opt->count() > 0;
    }

    void read(const toml::table& top) {
        for (const auto& [key, node] : top) {
            const std::string name(key.str());
            const bool is_table_name = std::find_if(std::begin(kTables), std::end(kTables), [&](const char* t) {
                                           return name == t;
                                       }) != std::end(kTables);
            if (is_table_name) {
                if (!node.is_table())
                    fail(key.source(), "'" + name + "' must be a table ([" + name + "]), not " + type_name(node));
                if (name == "budget")
                    read_budget(*node.as_table());
                else
                    read_table(name, *node.as_table());
                continue;
            }
            if (node.is_table() && !find_key("", name)) {
                const std::vector<std::string> tables(std::begin(kTables), std::end(kTables));
                fail(key.source(), "unknown table " + input::quote(name, input::kNameBytes) + "; did you mean '" +
                                       input::nearest(name, tables) + "'?");
            }
            read_key("", name, key.source(), node);
        }
    }

    void read_table(const std::string& table, const toml::table& t) {
        for (const auto& [key, node] : t) read_key(table, std::string(key.str()), key.source(), node);
    }

    void read_key(const std::string& table, const std::string& name, const toml::source_region& at,
                  const toml::node& node) {
        const ProfileKey* k = find_key(table, name);
        if (!k) unknown_key(table, name, at);
        const std::string path = key_path(table, name);
        std::optional<std::string> text = value_text(node, k->type);
        if (!text) fail(at, "key '" + path + "' must be " + wanted_name(k->type) + ", not " + type_name(node));
        if (k->type == ValueType::path) {
            if (text->empty()) return;  // the default (for model: the built-in demo model)
            std::filesystem::path p(*text);
            if (p.is_relative()) p = std::filesystem::path(o.profile).parent_path() / p;
            *text = p.lexically_normal().string();
        }
        CLI::Option* opt = scratch_app.get_option(k->flag);
        opt->clear();
        opt->add_result(*text);
        try {
            opt->run_callback();
        } catch (const CLI::Error& e) {
            std::string why = e.what();
            if (const std::string prefix = std::string(k->flag) + ": "; why.rfind(prefix, 0) == 0) why.erase(0, prefix.size());
            fail(at, "key '" + path + "': " + why);
        }
        if (switch_given(k->flag)) return;  // the command line wins
        k->copy(o, scratch);
        o.origin[path] = path + " in " + where + std::to_string(at.begin.line);
    }

    void read_budget(const toml::table& t) {
        for (const auto& [key, node] : t) {
            const std::string name(key.str());
            const std::string path = "budget." + name;
            const std::string quoted = input::quote(path, input::kNameBytes);
            const std::optional<std::string> text = value_text(node, ValueType::size);
            if (!text) fail(key.source(), "key " + quoted + " must be " + wanted_name(ValueType::size) + ", not " + type_name(node));
            // The rule of --memory-budget NAME=SIZE.
            if (const std::string why = kBudgetItem(name + "=" + *text); !why.empty())
                fail(key.source(), "key " + quoted + ": " + why);
            if (o.origin.count(path)) continue;  // given by --memory-budget
            o.budget[name] = *parse_size(*text);
            o.origin[path] = path + " in " + where + std::to_string(key.source().begin.line);
        }
    }

    [[noreturn]] void unknown_key(const std::string& table, const std::string& name, const toml::source_region& at) {
        const std::string in_table = table.empty() ? "" : " in [" + table + "]";
        std::string sentence = "unknown key " + input::quote(name, input::kNameBytes) + in_table + "; did you mean ";
        // A key of another table written in the wrong place: say where it belongs.
        for (const ProfileKey& k : kKeys)
            if (name == k.name)
                fail(at, sentence + "'" + name + "'" +
                             (*k.table ? " in [" + std::string(k.table) + "]" : " at the top (before any [table])") + "?");
        std::vector<std::string> names;
        for (const ProfileKey& k : kKeys)
            if (table == k.table) names.emplace_back(k.name);
        if (table.empty())
            for (const char* t : kTables) names.emplace_back(t);
        fail(at, sentence + "'" + input::nearest(name, names) + "'?");
    }
};

}  // namespace

void apply_profile(RunOptions& o, const CLI::App& app) {
    // Where the switches given on the command line set fields: they win over the profile.
    for (const ProfileKey& k : kKeys)
        if (const CLI::Option* opt = app.get_option_no_throw(k.flag); opt && opt->count() > 0)
            o.origin[key_path(k.table, k.name)] = k.flag;
    if (const CLI::Option* opt = app.get_option_no_throw(kBudgetFlag); opt && opt->count() > 0)
        for (const auto& [name, bytes] : o.budget) o.origin["budget." + name] = kBudgetFlag;
    if (o.profile.empty()) return;

    const std::string text = read_text(o.profile);
    toml::table top;
    try {
        top = toml::parse(text, o.profile);
    } catch (const toml::parse_error& e) {
        throw std::runtime_error(o.profile + " line " + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                                 std::string(e.description()));
    }
    Reader reader(o, app);
    reader.read(top);
}

std::string source_of(const RunOptions& o, const std::string& key) {
    if (const auto it = o.origin.find(key); it != o.origin.end()) return it->second;
    if (key.rfind("budget.", 0) == 0) return std::string(kBudgetFlag) + " " + key.substr(7) + "=SIZE";
    for (const ProfileKey& k : kKeys)
        if (key == key_path(k.table, k.name)) return k.flag;
    return key;
}

bool is_set(const RunOptions& o, const std::string& key) { return o.origin.count(key) > 0; }

void check_placements(const RunOptions& o, const ops::DeviceInfo& device) {
    std::vector<std::string> names;
    std::string list;
    for (const ops::PlacementInfo& p : device.placements) {
        names.push_back(p.name);
        list += (list.empty() ? "" : ", ") + p.name;
    }
    auto check = [&](const std::string& name, const std::string& key) {
        if (std::find(names.begin(), names.end(), name) != names.end()) return;
        throw std::runtime_error(source_of(o, key) + ": " + input::quote(name, input::kNameBytes) +
                                 " is not a placement of the " + o.backend + " device " + device.name +
                                 "; its placements are " + list + " (did you mean '" + input::nearest(name, names) +
                                 "'? `engine backends` describes them)");
    };
    for (int u = 0; u < ops::kMemoryUseCount; ++u)
        if (!o.placement[u].empty())
            check(o.placement[u], std::string("placement.") + ops::memory_use_name(ops::MemoryUse(u)));
    for (const auto& [name, bytes] : o.budget) check(name, "budget." + name);
}

}  // namespace halo::cli
