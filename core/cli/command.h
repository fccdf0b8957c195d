// How the `engine` CLI is put together: each command file adds its CLI11 subcommand (or options) and returns the
// function that runs it after parsing. main.cpp only collects them.
#pragma once

#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

namespace halo::cli {

struct Command {
    CLI::App* app = nullptr;     // the subcommand (parsed when the user named it)
    std::function<int()> run;    // runs it; returns the process exit code
};

Command add_logits_command(CLI::App& app);
Command add_backends_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_serve_command(CLI::App& app);  // server/serve_cmd.cpp
Command add_quantize_command(CLI::App& app);
Command add_plan_command(CLI::App& app);     // plan_cmd.cpp: the memory plan without loading weights
Command add_compare_command(CLI::App& app);  // compare_cmd.cpp: the same tokens through two backends
std::vector<Command> add_tokenizer_commands(CLI::App& app);  // tokenize, detokenize
// The default command (generate) lives on the main app itself.
std::function<int()> add_generate_options(CLI::App& app);

}  // namespace halo::cli
