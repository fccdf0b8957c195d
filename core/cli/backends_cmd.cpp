// engine backends: the plugins found, their devices and memory placements, and why any is unusable.
#include <cstdio>
#include <memory>

#include "core/cli/command.h"
#include "core/cli/common.h"

namespace halo::cli {

namespace {

std::string gb(uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GB", double(b) / 1e9);
    return buf;
}

int run_backends(const std::string& plugin_dir, int32_t threads) {
    const auto reports = discover_plugins(plugin_dir);
    if (reports.empty()) {
        std::string where;
        for (const auto& d : plugin_search_dirs(plugin_dir)) where += " " + d.string();
        std::printf("no backend plugins found (looked in:%s)\n", where.c_str());
        return 1;
    }
    for (const PluginReport& r : reports) {
        std::printf("%s: %s\n  file: %s\n", r.name.c_str(), r.usable ? "usable" : "NOT usable", r.path.string().c_str());
        if (!r.usable) {
            std::printf("  reason: %s\n", r.reason.c_str());
            continue;
        }
        if (!r.probe.version.empty()) std::printf("  version: %s\n", r.probe.version.c_str());
        for (const auto& dev : r.probe.devices) std::printf("  found: %s\n", dev.c_str());
        try {
            ops::BackendOptions bo;
            bo.threads = threads;
            auto lb = load_backend(r.name, bo, plugin_dir);
            const ops::DeviceInfo& d = lb->backend().device();
            std::printf("  device: %s (%s%s)\n", d.name.c_str(), d.kind.c_str(), d.unified_memory ? ", unified memory" : "");
            for (const auto& p : d.placements)
                std::printf("    placement %-13s %s; capacity %s, available %s%s\n", p.name.c_str(), p.description.c_str(),
                            p.capacity_bytes ? gb(p.capacity_bytes).c_str() : "unknown",
                            p.budget_bytes ? gb(p.budget_bytes).c_str() : "unknown", p.imports_host ? ", zero-copy import" : "");
            std::printf("    defaults: weights=%s state=%s cache=%s scratch=%s\n", d.default_placement[0].c_str(),
                        d.default_placement[1].c_str(), d.default_placement[2].c_str(), d.default_placement[3].c_str());
            for (const auto& n : d.notes) std::printf("  note: %s\n", n.c_str());
        } catch (const std::exception& e) {
            std::printf("  device: cannot start: %s\n", e.what());
        }
    }
    return 0;
}

}  // namespace

Command add_backends_command(CLI::App& app) {
    auto dir = std::make_shared<std::string>();
    auto threads = std::make_shared<int32_t>(0);
    CLI::App* sub = app.add_subcommand("backends", "List the backend plugins found, their devices, and why any is unusable");
    sub->add_option("--plugin-dir", *dir, "Also look for plugins in this directory");
    sub->add_option("--threads", *threads,
                    "CPU threads to report for the CPU plugin (0 = every CPU this process may use; more than the "
                    "hardware threads is capped)")
        ->check(CLI::Range(0, 4096));
    return {sub, [dir, threads] { return run_backends(*dir, *threads); }};
}

}  // namespace halo::cli
