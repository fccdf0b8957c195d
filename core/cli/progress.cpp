#include "core/cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

namespace halo::cli {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), terminal_(enabled && stderr_is_terminal()) {}

Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total, const std::string& text) {
    if (!enabled_) return;
    if (terminal_) {
        std::fprintf(stderr, "\rengine: %s %s", label_.c_str(), text.c_str());
        std::fflush(stderr);
        line_open_ = true;
        return;
    }
    const int step = total == 0 ? 10 : int(10 * done / total);
    if (step == last_step_) return;
    last_step_ = step;
    std::fprintf(stderr, "engine: %s %s\n", label_.c_str(), text.c_str());
}

void Progress::finish() {
    if (line_open_) std::fputc('\n', stderr);
    line_open_ = false;
}

}  // namespace halo::cli
