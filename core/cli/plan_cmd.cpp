// engine plan (being written).
#include <stdexcept>

#include "core/cli/command.h"

namespace halo::cli {

Command add_plan_command(CLI::App& app) {
    CLI::App* sub = app.add_subcommand("plan", "(not yet available)");
    return {sub, [] () -> int { throw std::runtime_error("engine plan is not available yet"); }};
}

}  // namespace halo::cli
