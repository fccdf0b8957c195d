// TOML profiles: every shipped profile reads into the expected run options, a switch overrides its key, bad profiles
// give sentences naming the file, the line, the key and the nearest valid key, and the engine runs the demo profile.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/profile/options.h"
#include "tests/cli/run_tool.h"

namespace {

namespace fs = std::filesystem;
using halo::cli::RunOptions;

const fs::path kConfigs = HALO_CONFIGS_DIR;

// A command's options as `engine` builds them: the run options and serve's own.
struct Parsed {
    RunOptions o;
    CLI::App app{"test"};
};

// Parses `args` like a command line (no program name) and applies the profile; throws what apply_profile throws.
void parse(Parsed& p, std::vector<std::string> args) {
    halo::cli::add_run_options(p.app, p.o);
    halo::cli::add_server_options(p.app, p.o.server);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    p.app.parse(args);
    halo::cli::apply_profile(p.o, p.app);
}

// The 1-based line of `file` that starts with `start` (a key and its '='), or 0.
int line_of(const fs::path& file, const std::string& start) {
    std::ifstream f(file);
    std::string line;
    for (int n = 1; std::getline(f, line); ++n)
        if (line.rfind(start, 0) == 0) return n;
    return 0;
}

// A profile written to a fresh folder; deleted with it.
struct TempProfile {
    fs::path dir, path;
    explicit TempProfile(const std::string& text, const std::string& name = "p.toml") {
        const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
        dir = fs::temp_directory_path() / ("halo_profile_" + std::to_string(::getpid()) + "_" + test->name());
        fs::create_directories(dir);
        path = dir / name;
        std::ofstream(path) << text;
    }
    ~TempProfile() { fs::remove_all(dir); }
};

// The sentence apply_profile throws for `text`, or "" when it reads it.
std::string error_of(const TempProfile& t) {
    Parsed p;
    try {
        parse(p, {"--profile", t.path.string()});
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// ---- the shipped profiles --------------------------------------------------------------------------------------

TEST(ShippedProfiles, DemoReadsIntoTheRunOptions) {
    const fs::path file = kConfigs / "demo.toml";
    Parsed p;
    parse(p, {"--profile", file.string()});
    const RunOptions& o = p.o;
    EXPECT_EQ(o.backend, "cpu");
    EXPECT_EQ(o.model_dir, "");  // the built-in demo model
    EXPECT_EQ(o.threads, 0);
    EXPECT_EQ(o.context, 2048);
    EXPECT_FALSE(o.context_auto);
    EXPECT_EQ(o.sequences, 1);
    EXPECT_EQ(o.chunk, 256);
    EXPECT_EQ(o.cache_dtype, "f32");
    EXPECT_EQ(o.moe_weighting, "unbiased");
    EXPECT_EQ(o.placement[0], "mmap");
    EXPECT_EQ(o.placement[1], "heap");
    EXPECT_EQ(o.placement[2], "heap");
    EXPECT_EQ(o.placement[3], "heap");
    EXPECT_TRUE(o.budget.empty());
    EXPECT_EQ(o.quantize.experts, "none");
    EXPECT_EQ(o.quantize.group, 32);
    EXPECT_EQ(o.server.host, "127.0.0.1");
    EXPECT_EQ(o.server.port, 8080);
    EXPECT_EQ(o.server.queue, 8);
    EXPECT_EQ(o.server.drain_timeout_s, 5.0);
    EXPECT_EQ(o.server.model_name, "demo");
    EXPECT_EQ(o.prefix_cache, uint64_t(16) << 20);
    EXPECT_EQ(o.prefix_stride, 256);
    EXPECT_EQ(o.prefix_cache_dir, "");
    EXPECT_EQ(halo::cli::source_of(o, "prefix_cache.size"),
              "prefix_cache.size in " + file.string() + " line " + std::to_string(line_of(file, "size =")));
    // Where each value came from, for later error sentences.
    EXPECT_EQ(halo::cli::source_of(o, "prefill_chunk"),
              "prefill_chunk in " + file.string() + " line " + std::to_string(line_of(file, "prefill_chunk =")));
    EXPECT_EQ(halo::cli::source_of(o, "placement.weights"),
              "placement.weights in " + file.string() + " line " + std::to_string(line_of(file, "weights =")));
    EXPECT_EQ(halo::cli::source_of(o, "device"), "--device");  // not in the profile: the switch that would set it
    EXPECT_FALSE(halo::cli::is_set(o, "device"));
    EXPECT_TRUE(halo::cli::is_set(o, "context"));
}

TEST(ShippedProfiles, RealModelProfilesCarryTheirStrategy) {
    const fs::path models = (kConfigs / ".." / "models" / "Kimi-Linear-48B-A3B-Instruct").lexically_normal();
    {
        Parsed p;
        parse(p, {"--profile", (kConfigs / "reviewer-cpu.toml").string()});
        EXPECT_EQ(p.o.backend, "cpu");
        EXPECT_EQ(p.o.model_dir, models.string());  // relative to the profile's folder
        EXPECT_EQ(p.o.context, 32768);
        EXPECT_EQ(p.o.sequences, 2);
        EXPECT_EQ(p.o.cache_dtype, "f16");
        EXPECT_EQ(p.o.placement[0], "mmap");
        EXPECT_EQ(p.o.budget, (std::map<std::string, uint64_t>{{"heap", 16ull << 30}}));
        EXPECT_EQ(p.o.quantize.experts, "int4");
        EXPECT_EQ(p.o.quantize.attention, "none");
    }
    {
        Parsed p;
        parse(p, {"--profile", (kConfigs / "gtt.toml").string()});
        EXPECT_EQ(p.o.backend, "vulkan");
        EXPECT_EQ(p.o.model_dir, models.string());
        EXPECT_TRUE(p.o.context_auto);
        EXPECT_EQ(p.o.sequences, 4);
        EXPECT_EQ(p.o.device, -1);
        EXPECT_EQ(p.o.placement[0], "host-import");
        for (int u = 1; u < 4; ++u) EXPECT_EQ(p.o.placement[u], "host-visible");
        EXPECT_EQ(p.o.budget, (std::map<std::string, uint64_t>{{"host-visible", 100ull << 30}, {"host-import", 100ull << 30}}));
        EXPECT_EQ(p.o.quantize.experts, "int4");
    }
    {
        Parsed p;
        parse(p, {"--profile", (kConfigs / "uma-pinned.toml").string()});
        EXPECT_EQ(p.o.backend, "hip");
        EXPECT_EQ(p.o.context, 131072);
        EXPECT_FALSE(p.o.context_auto);
        EXPECT_EQ(p.o.sequences, 4);
        EXPECT_EQ(p.o.chunk, 1024);
        for (int u = 0; u < 4; ++u) EXPECT_EQ(p.o.placement[u], "device");
        EXPECT_EQ(p.o.budget, (std::map<std::string, uint64_t>{{"device", 92ull << 30}}));
    }
}

// Every profile in configs/ (also ones added later) reads, and every key in it is explained by a comment: on its
// line, or at the head of the block of lines it stands in.
TEST(ShippedProfiles, EveryProfileReadsAndEveryKeyIsCommented) {
    int profiles = 0;
    const std::regex key_line(R"(^\s*[A-Za-z0-9_"-]+\s*=.*)");
    for (const auto& entry : fs::directory_iterator(kConfigs)) {
        if (entry.path().extension() != ".toml") continue;
        ++profiles;
        Parsed p;
        EXPECT_NO_THROW(parse(p, {"--profile", entry.path().string()})) << entry.path();
        EXPECT_FALSE(p.o.origin.empty()) << entry.path();
        std::ifstream f(entry.path());
        std::vector<std::string> lines;
        for (std::string line; std::getline(f, line);) lines.push_back(line);
        for (size_t i = 0; i < lines.size(); ++i) {
            if (!std::regex_match(lines[i], key_line) || lines[i].find('#') != std::string::npos) continue;
            bool commented = false;
            for (size_t j = i; j-- > 0 && lines[j].find_first_not_of(" \t") != std::string::npos;)
                if (lines[j].find_first_not_of(" \t") == lines[j].find('#')) {
                    commented = true;
                    break;
                }
            EXPECT_TRUE(commented) << entry.path() << " line " << i + 1 << " has no comment: " << lines[i];
        }
    }
    EXPECT_GE(profiles, 4);
    for (const char* name : {"uma-pinned.toml", "gtt.toml", "reviewer-cpu.toml", "demo.toml"})
        EXPECT_TRUE(fs::exists(kConfigs / name)) << name;
}

// ---- switches override keys ------------------------------------------------------------------------------------

TEST(ProfileOverrides, ASwitchWinsOverItsKey) {
    const fs::path file = kConfigs / "demo.toml";
    Parsed p;
    parse(p, {"--profile", file.string(), "--threads", "3", "--weights-placement", "heap", "--context", "100",
              "--parallel", "2", "--port", "9000", "--quantize-experts", "int8", "--memory-budget", "heap=1GiB"});
    EXPECT_EQ(p.o.threads, 3);
    EXPECT_EQ(p.o.placement[0], "heap");
    EXPECT_EQ(p.o.placement[1], "heap");  // from the profile
    EXPECT_EQ(p.o.context, 100);
    EXPECT_EQ(p.o.sequences, 2);
    EXPECT_EQ(p.o.server.port, 9000);
    EXPECT_EQ(p.o.server.model_name, "demo");  // from the profile
    EXPECT_EQ(p.o.quantize.experts, "int8");
    EXPECT_EQ(p.o.chunk, 256);  // from the profile
    EXPECT_EQ(p.o.budget.at("heap"), 1ull << 30);
    EXPECT_EQ(halo::cli::source_of(p.o, "threads"), "--threads");
    EXPECT_EQ(halo::cli::source_of(p.o, "placement.weights"), "--weights-placement");
    EXPECT_EQ(halo::cli::source_of(p.o, "budget.heap"), "--memory-budget");
    EXPECT_EQ(halo::cli::source_of(p.o, "budget.mmap"), "--memory-budget mmap=SIZE");
}

TEST(ProfileOverrides, BudgetsMergeByPlacementName) {
    TempProfile t("[budget]\nheap = \"2 GiB\"\nmmap = 1000000\n");
    Parsed p;
    parse(p, {"--profile", t.path.string(), "--memory-budget", "heap=512MiB"});
    EXPECT_EQ(p.o.budget.at("heap"), 512ull << 20);  // the switch
    EXPECT_EQ(p.o.budget.at("mmap"), 1000000u);     // the profile
    EXPECT_EQ(halo::cli::source_of(p.o, "budget.mmap"), "budget.mmap in " + t.path.string() + " line 3");
}

TEST(ProfileOverrides, MemoryBudgetTakesRepeatsAndCommaLists) {
    Parsed p;
    parse(p, {"--memory-budget", "heap=1GB,mmap=2 KiB", "--memory-budget", "device-local=3"});
    EXPECT_EQ(p.o.budget, (std::map<std::string, uint64_t>{{"heap", 1000000000}, {"mmap", 2048}, {"device-local", 3}}));
}

TEST(ProfileOverrides, ContextAutoFromTheProfileOrTheSwitch) {
    TempProfile t("context = \"auto\"\n");
    {
        Parsed p;
        parse(p, {"--profile", t.path.string()});
        EXPECT_TRUE(p.o.context_auto);
    }
    {
        Parsed p;
        parse(p, {"--profile", t.path.string(), "--context", "64"});
        EXPECT_FALSE(p.o.context_auto);
        EXPECT_EQ(p.o.context, 64);
    }
    {
        Parsed p;
        parse(p, {"--context", "auto"});
        EXPECT_TRUE(p.o.context_auto);
        EXPECT_EQ(halo::cli::source_of(p.o, "context"), "--context");
    }
}

TEST(ProfileOverrides, ServeKeepsItsDefaultParallelUnlessAsked) {
    TempProfile none("threads = 1\n", "none.toml"), two("parallel = 2\n", "two.toml");
    {
        Parsed p;
        p.o.sequences = 4;  // serve's default
        parse(p, {"--profile", none.path.string()});
        EXPECT_EQ(p.o.sequences, 4);
    }
    {
        Parsed p;
        p.o.sequences = 4;
        parse(p, {"--profile", two.path.string()});
        EXPECT_EQ(p.o.sequences, 2);
    }
}

TEST(ProfileOverrides, PathsAreRelativeToTheProfileFolder) {
    TempProfile t("model = \"m/kimi\"\nplugin_dir = \"/opt/halo/plugins\"\n");
    Parsed p;
    parse(p, {"--profile", t.path.string()});
    EXPECT_EQ(p.o.model_dir, (t.dir / "m" / "kimi").string());
    EXPECT_EQ(p.o.plugin_dir, "/opt/halo/plugins");
}

// ---- bad profiles --------------------------------------------------------------------------------------------

TEST(BadProfiles, UnknownKeyNamesTheNearestValidOne) {
    TempProfile t("backend = \"cpu\"\nthread = 4\n");
    EXPECT_EQ(error_of(t), t.path.string() + " line 2: unknown key 'thread'; did you mean 'threads'?");
}

TEST(BadProfiles, UnknownKeyInATableLooksInThatTable) {
    TempProfile t("[placement]\nweights = \"mmap\"\nscrach = \"heap\"\n");
    EXPECT_EQ(error_of(t), t.path.string() + " line 3: unknown key 'scrach' in [placement]; did you mean 'scratch'?");
    TempProfile u("[quantize]\nexpert = \"int4\"\n", "u.toml");
    EXPECT_EQ(error_of(u), u.path.string() + " line 2: unknown key 'expert' in [quantize]; did you mean 'experts'?");
}

TEST(BadProfiles, KeyInTheWrongTableSaysWhereItBelongs) {
    TempProfile t("weights = \"mmap\"\n");
    EXPECT_EQ(error_of(t), t.path.string() + " line 1: unknown key 'weights'; did you mean 'weights' in [placement]?");
    TempProfile u("[server]\nthreads = 2\n", "u.toml");
    EXPECT_EQ(error_of(u), u.path.string() +
                               " line 2: unknown key 'threads' in [server]; did you mean 'threads' at the top (before any [table])?");
}

TEST(BadProfiles, UnknownTable) {
    TempProfile t("threads = 1\n\n[placements]\nweights = \"mmap\"\n");
    EXPECT_EQ(error_of(t), t.path.string() + " line 3: unknown table 'placements'; did you mean 'placement'?");
}

TEST(BadProfiles, WrongType) {
    TempProfile t("threads = \"4\"\n");
    EXPECT_EQ(error_of(t), t.path.string() + " line 1: key 'threads' must be an integer, not a string");
    TempProfile u("\n[placement]\nweights = 3\n", "u.toml");
    EXPECT_EQ(error_of(u), u.path.string() + " line 3: key 'placement.weights' must be a string, not an integer");
    TempProfile v("placement = \"heap\"\n", "v.toml");
    EXPECT_EQ(error_of(v), v.path.string() + " line 1: 'placement' must be a table ([placement]), not a string");
    TempProfile w("[budget]\nheap = true\n", "w.toml");
    EXPECT_EQ(error_of(w), w.path.string() +
                               " line 2: key 'budget.heap' must be a size (an integer of bytes or a string like \"96 GiB\"), "
                               "not true or false");
    TempProfile x("context = 4096.0\n", "x.toml");
    EXPECT_EQ(error_of(x), x.path.string() + " line 1: key 'context' must be an integer or \"auto\", not a floating-point number");
}

TEST(BadProfiles, BadValuesFollowTheSwitchRules) {
    TempProfile a("threads = -1\n", "a.toml");
    EXPECT_EQ(error_of(a), a.path.string() + " line 1: key 'threads': '-1' is not a whole number from 0 to 4096");
    TempProfile b("cache_dtype = \"f8\"\n", "b.toml");
    EXPECT_EQ(error_of(b), b.path.string() + " line 1: key 'cache_dtype': 'f8' is not one of f32, f16, bf16");
    TempProfile c("context = \"big\"\n", "c.toml");
    EXPECT_EQ(error_of(c), c.path.string() +
                               " line 1: key 'context': 'big' is not a context length; give a number of tokens from 1 to "
                               "4294967296, or auto");
    TempProfile d("[budget]\nheap = \"96 GB2\"\n", "d.toml");
    EXPECT_EQ(error_of(d), d.path.string() +
                               " line 2: key 'budget.heap': '96 GB2' is not a size; give bytes or a number with a unit (B, "
                               "KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 96GiB");
    TempProfile e("[budget]\nheap = 0\n", "e.toml");
    EXPECT_EQ(error_of(e), e.path.string() + " line 2: key 'budget.heap': a budget of 0 bytes holds nothing; give a size above 0");
    TempProfile f("[server]\nport = 70000\n", "f.toml");
    EXPECT_EQ(error_of(f), f.path.string() + " line 2: key 'server.port': '70000' is not a whole number from 0 to 65535");
    TempProfile g("[quantize]\nexperts = \"int3\"\n", "g.toml");
    EXPECT_EQ(error_of(g), g.path.string() + " line 2: key 'quantize.experts': 'int3' is not one of int4, int8, none");
    TempProfile i("[prefix_cache]\nsize = \"lots\"\n", "i.toml");
    EXPECT_EQ(error_of(i), i.path.string() +
                               " line 2: key 'prefix_cache.size': 'lots' is not a size; give bytes or a number with a unit "
                               "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 4GiB, or off");
    TempProfile j("[prefix_cache]\nstride = 100\n", "j.toml");
    EXPECT_EQ(error_of(j), j.path.string() +
                               " line 2: key 'prefix_cache.stride': '100' is not a multiple of 64 (the KDA chunk) from 64 "
                               "to 2147483648");
    TempProfile h("parallel = 0\n", "h.toml");
    EXPECT_EQ(error_of(h), h.path.string() + " line 1: key 'parallel': '0' is not a whole number from 1 to 4096");
    // A bad value is an error even where a switch overrides it: the file itself is wrong.
    Parsed p;
    EXPECT_THROW(parse(p, {"--profile", a.path.string(), "--threads", "2"}), std::runtime_error);
}

TEST(BadProfiles, SyntaxErrorsNameTheFileAndLine) {
    TempProfile t("threads = 1\ncontext = \n");
    const std::string e = error_of(t);
    EXPECT_EQ(e.rfind(t.path.string() + " line 2: not valid TOML: ", 0), 0u) << e;
    TempProfile u("threads = 1\nthreads = 2\n", "u.toml");
    const std::string e2 = error_of(u);
    EXPECT_EQ(e2.rfind(u.path.string() + " line 2: not valid TOML: ", 0), 0u) << e2;
}

TEST(BadProfiles, MissingOrUnreadableFile) {
    TempProfile t("threads = 1\n");
    Parsed p;
    const std::string missing = (t.dir / "nope.toml").string();
    try {
        parse(p, {"--profile", missing});
        ADD_FAILURE() << "a missing profile was read";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "--profile " + missing + ": the file does not exist; give a TOML profile such as configs/demo.toml");
    }
    Parsed q;
    try {
        parse(q, {"--profile", t.dir.string()});
        ADD_FAILURE() << "a folder was read as a profile";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("--profile " + t.dir.string() + " is a folder", 0), 0u) << e.what();
    }
}

// ---- sizes and placements ---------------------------------------------------------------------------------------

TEST(Sizes, UnitsAreDecimalOrBinary) {
    using halo::cli::parse_size;
    EXPECT_EQ(parse_size("96 GiB"), 96ull << 30);
    EXPECT_EQ(parse_size("96GiB"), 96ull << 30);
    EXPECT_EQ(parse_size("1.5GB"), 1500000000ull);
    EXPECT_EQ(parse_size("0.5 KiB"), 512ull);
    EXPECT_EQ(parse_size("512 mib"), 512ull << 20);
    EXPECT_EQ(parse_size("2 TB"), 2000000000000ull);
    EXPECT_EQ(parse_size("1 TiB"), 1ull << 40);
    EXPECT_EQ(parse_size("7 kb"), 7000ull);
    EXPECT_EQ(parse_size("1000"), 1000ull);
    EXPECT_EQ(parse_size("1000 B"), 1000ull);
    EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
    for (const char* bad : {"", "GiB", "-1", "1.5", "1.5 B", "1 GiBs", "1 G", "1e9", "17000000 TiB", "18446744073709551616",
                            " 1", "1..5 GB", "99999999999999999999999 B"})
        EXPECT_FALSE(parse_size(bad).has_value()) << bad;
}

halo::ops::DeviceInfo cpu_like_device() {
    halo::ops::DeviceInfo d;
    d.name = "Test CPU";
    d.placements.push_back({"heap", "", 0, 0, true, false, ""});
    d.placements.push_back({"mmap", "", 0, 0, true, true, ""});
    return d;
}

TEST(Placements, NamesAreCheckedAgainstTheDevice) {
    TempProfile t("[placement]\nweights = \"mmap\"\ncache = \"haep\"\n[budget]\nheap = \"1 GiB\"\n");
    Parsed p;
    parse(p, {"--profile", t.path.string()});
    try {
        halo::cli::check_placements(p.o, cpu_like_device());
        ADD_FAILURE() << "a bad placement passed";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "placement.cache in " + t.path.string() +
                                             " line 3: 'haep' is not a placement of the cpu device Test CPU; its "
                                             "placements are heap, mmap (did you mean 'heap'? `engine backends` "
                                             "describes them)");
    }
    Parsed q;
    parse(q, {"--profile", t.path.string(), "--cache-placement", "heap", "--memory-budget", "device=1GiB"});
    try {
        halo::cli::check_placements(q.o, cpu_like_device());
        ADD_FAILURE() << "a bad budget name passed";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("--memory-budget: 'device' is not a placement of the cpu device", 0), 0u)
            << e.what();
    }
    Parsed r;
    parse(r, {"--profile", t.path.string(), "--cache-placement", "heap"});
    EXPECT_NO_THROW(halo::cli::check_placements(r.o, cpu_like_device()));
}

// ---- the engine with a profile ----------------------------------------------------------------------------------

TEST(EngineWithProfile, DemoProfileGeneratesAsTheSameSwitchesDo) {
    const std::string demo = (kConfigs / "demo.toml").string();
    const auto with_profile = halo::test::run_tool(HALO_ENGINE_EXE, {"--profile", demo, "--max-tokens", "8", "--json"});
    ASSERT_EQ(with_profile.code, 0) << with_profile.err;
    const auto with_switches = halo::test::run_tool(
        HALO_ENGINE_EXE, {"--max-tokens", "8", "--json", "--context", "2048", "--chunk", "256", "--cache-dtype", "f32",
                          "--weights-placement", "mmap"});
    ASSERT_EQ(with_switches.code, 0) << with_switches.err;
    const auto a = nlohmann::json::parse(with_profile.out), b = nlohmann::json::parse(with_switches.out);
    EXPECT_EQ(a["ids"].size(), 8u);
    EXPECT_EQ(a["ids"], b["ids"]);
}

TEST(EngineWithProfile, TheEngineUsesTheProfileAndItsSwitches) {
    TempProfile t("threads = 1\n[placement]\nweights = \"heap\"\n");
    const auto r = halo::test::run_tool(HALO_ENGINE_EXE, {"--profile", t.path.string(), "--max-tokens", "2"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("(1 threads"), std::string::npos) << r.err;            // threads from the profile
    EXPECT_NE(r.err.find("(heap)"), std::string::npos) << r.err;                // weights copied to the heap
    EXPECT_EQ(r.err.find("in place"), std::string::npos) << r.err;
    const auto s = halo::test::run_tool(HALO_ENGINE_EXE,
                                        {"--profile", t.path.string(), "--max-tokens", "2", "--weights-placement", "mmap"});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_NE(s.err.find("(mmap, in place)"), std::string::npos) << s.err;  // the switch won
}

TEST(EngineWithProfile, EveryCommandRefusesABadProfileWithTheSentence) {
    TempProfile t("backend = \"cpu\"\nthread = 4\n");
    const std::string sentence = t.path.string() + " line 2: unknown key 'thread'; did you mean 'threads'?";
    halo::test::expect_clear_error(halo::test::run_tool(HALO_ENGINE_EXE, {"--profile", t.path.string()}), {sentence},
                                   "generate");
    halo::test::expect_clear_error(
        halo::test::run_tool(HALO_ENGINE_EXE, {"serve", "--profile", t.path.string(), "--port", "0"}, {}, 30), {sentence},
        "serve");
    halo::test::expect_clear_error(
        halo::test::run_tool(HALO_ENGINE_EXE, {"logits", "--profile", t.path.string(), "--prompt-ids", "1", "--out",
                                               (t.dir / "l.npy").string()}),
        {sentence}, "logits");
}

TEST(EngineWithProfile, LogitsRunWithTheDemoProfile) {
    TempProfile t("");
    const std::string out = (t.dir / "l.npy").string();
    const auto r = halo::test::run_tool(
        HALO_ENGINE_EXE, {"logits", "--profile", (kConfigs / "demo.toml").string(), "--prompt-ids", "1,2,3", "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out));
}

}  // namespace
