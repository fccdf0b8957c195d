// A multi-turn agent conversation replayed at the token level against one Scheduler: every turn re-sends the whole
// conversation so far (the previous prompt, the previous reply, a few hundred new tokens) and generates a greedy
// reply. Run once with a prefix cache (reuse) and again, for some turns, without one (cold), on the same prompts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/scheduler.h"

namespace halo::bench {

struct ReplaySettings {
    int64_t first = 300;       // tokens of turn 1's prompt (the system prompt)
    int64_t fresh = 300;       // new tokens each later turn appends after the previous reply
    int32_t reply = 32;        // tokens generated per turn (greedy; no stop ids, so always this many)
    int64_t max_tokens = 32768;  // a turn runs only when its prompt plus its reply fit this
    int32_t turns = 0;         // at most this many turns (0: until max_tokens)
    int32_t cold_every = 8;    // cold turns: the first, the last and every k-th (0: only the first and the last)
    uint64_t seed = 1;
    int32_t id_limit = 0;      // random ids are drawn from [0, id_limit): below the model's special tokens
};

// One request's outcome, timed from submit() to the first generated token (TTFT) and to the last (total). On a
// shared machine the wall time grows with other processes' load; the CPU seconds this process spent until the first
// token (every thread, user and system) much less so, and the load average says how busy the machine was.
struct Timed {
    double ttft_s = 0, total_s = 0;
    double ttft_cpu_s = 0;  // process CPU time from submit() to the first token
    double load_1m = 0;     // the 1-minute load average when it was submitted
    int64_t cached_tokens = 0;
    std::vector<int32_t> ids;
    std::string error;  // empty when it finished with its `reply` tokens
};

struct Turn {
    int32_t number = 0;             // from 1
    std::vector<int32_t> prompt;
    Timed reuse;                    // with the prefix cache
    PrefixCacheStats prefix;        // the cache after the turn (its end snapshot taken)
    bool cold_measured = false;
    Timed cold;                     // without a cache, same prompt
    int64_t prompt_tokens() const { return int64_t(prompt.size()); }
    int64_t new_read() const { return prompt_tokens() - reuse.cached_tokens; }
};

// Submits one request and waits for it; then waits until the engine has published the step that ended it (so that
// stats() includes its end snapshot).
Timed run_request(Scheduler& sched, const std::vector<int32_t>& prompt, int32_t max_tokens);

// Called after every turn of run_reuse and run_cold with every turn so far (e.g. to save what was measured).
using AfterTurn = std::function<void(const std::vector<Turn>&)>;

// Turn after turn on `sched` (which has the prefix cache) until the next prompt plus reply would pass
// settings.max_tokens or settings.turns is reached. Prints one progress line per turn to stderr when `progress`.
std::vector<Turn> run_reuse(Scheduler& sched, const ReplaySettings& settings, bool progress, const AfterTurn& after);

// Which turns get a cold measurement (indices into turns).
std::vector<size_t> cold_turns(size_t n_turns, int32_t cold_every);

// Runs the chosen turns' prompts on `sched` (no prefix cache) and fills their cold results.
void run_cold(Scheduler& sched, std::vector<Turn>& turns, const std::vector<size_t>& which, int32_t reply, bool progress,
              const AfterTurn& after);

}  // namespace halo::bench
