// engine: the Halo command line. `engine --help` lists the commands.
#include <cstdio>
#include <exception>

#include "core/cli/command.h"

int main(int argc, char** argv) {
    CLI::App app{"Halo: an inference engine for Kimi-Linear models.\n"
                 "Without a subcommand it generates tokens (with no --model, on the built-in demo model)."};
    app.set_version_flag("--version", "halo 0.1.0");
    app.require_subcommand(0, 1);
    std::vector<halo::cli::Command> commands;
    commands.push_back(halo::cli::add_logits_command(app));
    commands.push_back(halo::cli::add_backends_command(app));
    commands.push_back(halo::cli::add_bench_command(app));
    for (auto& c : halo::cli::add_tokenizer_commands(app)) commands.push_back(c);
    auto generate = halo::cli::add_generate_options(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& c : commands)
            if (c.app && c.app->parsed()) return c.run();
        return generate();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engine: %s\n", e.what());
        return 1;
    }
}
