// engine logits --model DIR --prompt-ids 1,2,3 --out FILE.npy: float32 logits [T, vocab] at every prompt position.
#include <cstdio>
#include <memory>

#include "core/cli/command.h"
#include "core/cli/common.h"
#include "core/npy.h"

namespace halo::cli {

namespace {

struct LogitsOptions {
    RunOptions run;
    std::string prompt_ids;
    std::string out;
};

int run_logits(LogitsOptions& o, CLI::App& sub) {
    apply_profile(o.run, sub);
    const std::vector<int32_t> prompt = parse_ids(o.prompt_ids, "--prompt-ids");
    if (prompt.empty()) throw std::runtime_error("--prompt-ids is empty; give at least one token id");
    check_output_path(o.out, "--out");
    const ModelConfig config = load_model_config(model_dir_of(o.run));
    check_ids_in_vocab(prompt, config.vocab_size, "--prompt-ids");
    fit_context(o.run, is_set(o.run, "context"), config, int64_t(prompt.size()),
                "the prompt (" + std::to_string(prompt.size()) + " tokens)");
    Engine e = open_engine(o.run, o.run.sequences);
    Sequence seq;
    e.model->begin_sequence(seq);
    const std::vector<float> logits = e.model->prefill(seq, prompt, true);
    const int64_t vocab = e.model->config().vocab_size;
    write_npy_f32(o.out, logits.data(), {int64_t(prompt.size()), vocab});
    if (!o.run.quiet) std::fprintf(stderr, "engine: wrote logits [%zu, %lld] to %s\n", prompt.size(), (long long)vocab, o.out.c_str());
    return 0;
}

}  // namespace

Command add_logits_command(CLI::App& app) {
    auto o = std::make_shared<LogitsOptions>();
    CLI::App* sub = app.add_subcommand("logits", "Write float32 logits [T, vocab] for every prompt position to a .npy file");
    add_run_options(*sub, o->run);
    sub->add_option("--prompt-ids", o->prompt_ids, "Prompt as token ids, e.g. 1,2,3")->required();
    sub->add_option("--out", o->out, "Output .npy file")->required();
    return {sub, [o, sub] { return run_logits(*o, *sub); }};
}

}  // namespace halo::cli
