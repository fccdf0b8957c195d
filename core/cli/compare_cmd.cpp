// engine compare (being written).
#include <stdexcept>

#include "core/cli/command.h"

namespace halo::cli {

Command add_compare_command(CLI::App& app) {
    CLI::App* sub = app.add_subcommand("compare", "(not yet available)");
    return {sub, [] () -> int { throw std::runtime_error("engine compare is not available yet"); }};
}

}  // namespace halo::cli
