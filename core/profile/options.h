// The options of every command that runs a model, as one struct filled from a TOML profile (--profile) and the
// command line (a switch given on the command line overrides its profile key), and the conversions from their text
// to the engine's types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/model.h"
#include "core/quantization.h"
#include "ops/backend.h"

namespace halo::cli {

// The --quantize-* options as typed (int4, int8 or none per weight class), shared by every command that loads a
// model and by `engine quantize`.
struct QuantTexts {
    std::string experts = "none", shared = "none", attention = "none", lm_head = "none";
    int32_t group = 32;
    QuantChoice choice() const;  // throws std::runtime_error naming the flag
};
void add_quantize_options(CLI::App& app, QuantTexts& q);

// `engine serve`'s own settings (the profile's [server] table).
struct ServerSettings {
    std::string host = "127.0.0.1";  // --host: address to listen on
    int32_t port = 8080;             // --port: TCP port (0 picks a free one)
    int32_t queue = 64;              // --queue: requests that may wait for a free sequence
    double drain_timeout_s = 30;     // --drain-timeout: seconds running requests get after SIGINT/SIGTERM
    std::string model_name;          // --model-name: the id /v1/models lists (empty: the model folder's name)
};
void add_server_options(CLI::App& app, ServerSettings& s);

struct RunOptions;
// --prefix-cache, --prefix-stride, --prefix-cache-dir (serve and plan).
void add_prefix_cache_options(CLI::App& app, RunOptions& o);

struct RunOptions {
    std::string profile;     // --profile: the TOML file the other fields were read from (empty: none)
    std::string backend = "cpu";
    std::string model_dir;  // empty = the built-in demo model
    std::string plugin_dir;
    int32_t threads = 0;
    int32_t device = -1;
    std::string device_name;
    std::string moe_weighting = "unbiased";
    int64_t context = 4096;
    bool context_auto = false;  // context = "auto": the largest context the memory budget holds (the plan picks it)
    int32_t sequences = 1;      // --parallel: sequences run at once (KDA state slots); serve defaults to 4
    int32_t chunk = 512;
    std::string cache_dtype = "f32";
    std::string kda_form = "auto";
    std::string mla_form = "auto";
    std::string placement[ops::kMemoryUseCount];
    // Memory budget per placement name ("heap" -> bytes): the plan must fit min(budget, what the device reports).
    std::map<std::string, uint64_t> budget;  // --memory-budget NAME=SIZE, the profile's [budget]
    bool quiet = false;
    bool check = false;       // re-run every op on the reference and stop at the first that diverges
    bool validation = false;  // driver validation layers (Vulkan: VK_LAYER_KHRONOS_validation)
    bool warm_up = false;     // size the plugin's temporaries with one full step at load (ModelOptions::warm_up)
    QuantTexts quantize;      // load-time quantization of a float checkpoint
    // Prefix reuse (serve; `engine plan` shows it): the most bytes of KDA state snapshots the prefix cache holds
    // (0: no cache), prompt tokens between snapshots, and the folder the cache is saved to when the server stops
    // and loaded from when it starts (empty: not kept). The profile's [prefix_cache] table.
    uint64_t prefix_cache = uint64_t(2) << 30;  // --prefix-cache SIZE
    int64_t prefix_stride = 2048;               // --prefix-stride N
    std::string prefix_cache_dir;               // --prefix-cache-dir DIR
    bool use_prefix_cache = false;              // set by the commands that keep one (serve, plan): model_options
                                                // then plans prefix_cache bytes of snapshots
    ServerSettings server;    // serve only
    // Where each field that was set came from, by profile key ("threads", "placement.weights", "budget.heap",
    // "server.port"): the switch ("--threads") or "threads in configs/x.toml line 7". Defaults have no entry.
    // Filled by apply_profile; read it through source_of().
    std::map<std::string, std::string> origin;
};

// Adds the switches of every RunOptions field (but the [server] ones) to `app`, with the fields' values as defaults.
void add_run_options(CLI::App& app, RunOptions& o);

// After parsing: reads o.profile (when set) and fills every field whose switch was not given on `app`'s command line
// from it, checking each value with its switch's rule; records o.origin. Every command that takes run options calls
// this first. Throws std::runtime_error naming the file, line and key (and the nearest valid key) for a profile it
// cannot use.
void apply_profile(RunOptions& o, const CLI::App& app);

// Where the field of profile key `key` ("placement.weights", "budget.heap", "context") came from, for an error
// sentence: "--weights-placement" when the switch was given, "placement.weights in configs/x.toml line 12" when the
// profile set it, or the switch that would set it (e.g. "--memory-budget heap=SIZE") when it has its default.
std::string source_of(const RunOptions& o, const std::string& key);

// Whether the field of profile key `key` was set by a switch or by the profile (not left at its default).
bool is_set(const RunOptions& o, const std::string& key);

// Throws unless every placement named by o.placement and by o.budget is one of `device`'s; the sentence names the
// source of the bad name (source_of) and lists the valid names. Called once the plugin is loaded.
void check_placements(const RunOptions& o, const ops::DeviceInfo& device);

// A memory size: whole bytes ("1000000") or a number with a unit, e.g. "96 GiB", "1.5GB", "512 MiB": B, KB, MB, GB,
// TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024), in any letter case. Nothing when the text is not one or
// the size does not fit 64 bits.
std::optional<uint64_t> parse_size(std::string_view text);

// Tokens per MLA cache page (shorter contexts take one page of their length); context = "auto" moves in pages.
constexpr int64_t kCachePageTokens = 256;

// The model options the run options ask for (placements, sizes, forms, quantization); `sequences` KDA state slots.
ModelOptions model_options(const RunOptions& o, int32_t sequences);

// Digits only (no sign, no spaces) and fits 64 bits, or nothing.
std::optional<uint64_t> parse_decimal(std::string_view s);

// CLI11 validators: a non-empty value; an unsigned decimal integer that fits 64 bits; a --context value (a token
// count or "auto"); a --memory-budget item (NAME=SIZE).
extern const CLI::Validator kNonEmpty;
// CLI11 validators whose sentences name the allowed values: a whole number in [lo, hi]; a number in [lo, hi]; one
// of `values`.
CLI::Validator whole_number(int64_t lo, int64_t hi);
CLI::Validator number_between(double lo, double hi);
CLI::Validator one_of(std::vector<std::string> values);
extern const CLI::Validator kUnsigned64;
extern const CLI::Validator kContext;
extern const CLI::Validator kBudgetItem;
extern const CLI::Validator kSize;  // a memory size (parse_size), or "off" (0)

}  // namespace halo::cli
