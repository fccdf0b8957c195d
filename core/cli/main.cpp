// engine: the Halo command line. `engine --help` lists the commands.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "core/cli/command.h"
#include "core/input/excerpt.h"

namespace {

// `rc`, or 1 when what was written to stdout (a result, help text) could not all be written: a full disk, a closed
// pipe or stdout is an error, not a success.
int printed(int rc) {
    std::cout.flush();
    if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
        std::fprintf(stderr, "engine: could not write the output to standard output: %s\n", std::strerror(errno));
        return 1;
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Halo: an inference engine for Kimi-Linear models.\n"
                 "Without a subcommand it generates tokens (with no --model, on the built-in demo model)."};
    app.set_version_flag("--version", "halo 0.1.0");
    app.require_subcommand(0, 1);
    std::vector<halo::cli::Command> commands;
    commands.push_back(halo::cli::add_logits_command(app));
    commands.push_back(halo::cli::add_backends_command(app));
    commands.push_back(halo::cli::add_bench_command(app));
    commands.push_back(halo::cli::add_serve_command(app));
    commands.push_back(halo::cli::add_quantize_command(app));
    commands.push_back(halo::cli::add_plan_command(app));
    commands.push_back(halo::cli::add_compare_command(app));
    for (auto& c : halo::cli::add_tokenizer_commands(app)) commands.push_back(c);
    auto generate = halo::cli::add_generate_options(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --help-all, --version
        return printed(app.exit(e));
    } catch (const CLI::ParseError& e) {
        // A usage error: one sentence with the engine's prefix, where to find help, and exit status 1.
        std::string where = "engine";
        for (const CLI::App* sub : app.get_subcommands())
            if (sub->parsed()) where += " " + sub->get_name();
        std::fprintf(stderr, "engine: %s; run '%s --help' for the options\n", halo::input::one_line(e.what(), 300).c_str(),
                     where.c_str());
        return 1;
    }
    try {
        int rc = -1;
        for (auto& c : commands)
            if (c.app && c.app->parsed()) {
                // The main command's options (generation) parse before a subcommand's name; a subcommand would
                // silently run without them.
                for (const CLI::Option* opt : app.get_options())
                    if (opt->count() > 0)
                        throw std::runtime_error(opt->get_name() + " was given before '" + c.app->get_name() +
                                                 "', where the '" + c.app->get_name() + "' command does not see it; " +
                                                 "put it after: engine " + c.app->get_name() + " " + opt->get_name() + " ...");
                rc = c.run();
                break;
            }
        if (rc < 0) rc = generate();
        // Output that could not be written (a full disk, a closed pipe) is an error, not a success.
        return rc == 0 ? printed(rc) : rc;  // a command that failed has said why already
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engine: %s\n", halo::input::one_line(e.what()).c_str());
        return 1;
    }
}
