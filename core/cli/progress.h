// Progress of a long operation on stderr. On a terminal one line is rewritten in place (\r); on a pipe or a log file
// each report is a plain line, at most one per 10% step, so logs stay one event per line.
#pragma once

#include <cstdint>
#include <string>

namespace halo::cli {

class Progress {
public:
    // `label` starts each report, e.g. "prefill"; nothing is printed when `enabled` is false.
    Progress(std::string label, bool enabled);
    ~Progress();  // ends an open terminal line (also when an error unwinds past it)

    // Reports `done` of `total`; `text` is the amount as the reader should see it, e.g. "1024/4096 tokens".
    void update(uint64_t done, uint64_t total, const std::string& text);
    // Ends the terminal line, if one is open.
    void finish();

private:
    std::string label_;
    bool enabled_;
    bool terminal_;
    bool line_open_ = false;
    int last_step_ = -1;  // last 10% step printed as a plain line
};

// True when stderr is a terminal.
bool stderr_is_terminal();

}  // namespace halo::cli
