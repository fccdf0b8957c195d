// Continuous batching: one engine thread owns the Model and runs it step after step. Each step holds the decode
// token of every running sequence plus chunks of waiting prompts, up to a token budget (chunked prefill), so a
// long prompt never stalls the streams already running. Any thread may submit requests and read their output.
//
//   Scheduler sched(model, &tokenizer, {});
//   GenerationRequest req;
//   req.prompt = tokenizer.encode("Once upon a time");
//   req.max_tokens = 64;
//   std::shared_ptr<GenerationStream> s = sched.submit(std::move(req));   // throws RequestError, Overloaded
//   GenerationEvent ev;
//   while (s->next(ev)) { std::cout << ev.text; if (ev.finished) break; }
//
// Admission takes a free KDA state slot and books the MLA cache pages the request can ever need (prompt +
// max_tokens, capped at the context), so a running request never runs out of pages; pages are taken from the pool
// as tokens arrive and returned when the request ends. Requests that cannot be admitted yet wait in a bounded
// queue, first come first served; a full queue makes submit() throw Overloaded. A cancelled request (cancel(), or
// its stream dropped) is removed at the next step and frees its slot and pages.
//
// Under greedy sampling a request's output does not depend on what else runs beside it: prompt chunks start at
// multiples of the model's KDA chunk, so every sequence is cut the same way alone or batched.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/model.h"
#include "core/prefix_cache.h"
#include "core/sampler.h"
#include "core/tokenizer/tokenizer.h"

namespace halo {

// A request that can never run (bad token id, prompt longer than the context, bad sampling values). what() is one
// sentence naming the field; param() the request field it is about (e.g. "max_tokens"), empty if none.
class RequestError : public std::runtime_error {
public:
    RequestError(const std::string& message, std::string param = {})
        : std::runtime_error(message), param_(std::move(param)) {}
    const std::string& param() const { return param_; }

private:
    std::string param_;
};

// The queue is full, or the scheduler is shutting down: try again later (HTTP 503 with Retry-After).
class Overloaded : public std::runtime_error {
public:
    Overloaded(const std::string& message, int retry_after_s) : std::runtime_error(message), retry_after_s_(retry_after_s) {}
    int retry_after_s() const { return retry_after_s_; }

private:
    int retry_after_s_;
};

enum class FinishReason {
    stop,       // a stop id or a stop string was generated
    length,     // max_tokens reached, or the context is full
    cancelled,  // cancel() or shutdown
    error,      // the engine failed while running this request (GenerationEvent::error says why)
};
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerationRequest {
    std::vector<int32_t> prompt;           // token ids; at least one
    int32_t max_tokens = 16;               // new tokens at most (>= 0; 0 finishes right after the prompt is read)
    SamplingParams sampling;               // checked at submit (RequestError naming temperature, top_p or top_k)
    std::vector<int32_t> stop_ids;         // generation stops after one of these; it is counted but not in the text
    std::vector<std::string> stop_strings; // generation stops when the text contains one; the text ends before it.
                                           // At most 16, each 1..256 bytes (needs a tokenizer)
    bool skip_special = true;              // text leaves out special and reserved tokens (tool-call markers stay)
};

// What the stream has to say since the last next(): new tokens and the text they complete, and whether the
// request has finished. Text is never a partial UTF-8 sequence, and text that might be the start of a stop string
// is held back until it is known not to be.
struct GenerationEvent {
    std::vector<int32_t> ids;  // new token ids (including a final stop id)
    std::string text;          // new text
    bool finished = false;
    FinishReason finish_reason = FinishReason::stop;
    std::string error;          // set when finish_reason == error
    std::string stop_string;    // the stop string that ended the request, if one did
    int64_t prompt_tokens = 0;  // the request's counts so far
    int64_t prompt_done = 0;    // prompt tokens read so far (prefill progress), cached ones included
    int64_t cached_tokens = 0;  // prompt tokens taken from the prefix cache instead of being read
    int64_t completion_tokens = 0;
};

class Scheduler;

// The output side of one request. Thread-safe. Dropping it cancels the request (the engine keeps only a weak
// reference).
class GenerationStream {
public:
    ~GenerationStream();
    // Waits until there is something new (or `timeout` passes: returns false, ev untouched), then moves everything
    // new into ev and returns true. After the event with finished = true, returns false at once.
    bool next(GenerationEvent& ev, std::chrono::milliseconds timeout = std::chrono::hours(24));
    // Asks the engine to stop this request; it finishes with FinishReason::cancelled at the next step (unless it
    // finished before). Safe to call any number of times, from any thread.
    void cancel();
    int64_t prompt_tokens() const { return prompt_tokens_; }

private:
    friend class Scheduler;
    explicit GenerationStream(int64_t prompt_tokens) : prompt_tokens_(prompt_tokens) {}
    void push(GenerationEvent&& ev);  // engine thread: merges into pending_ and wakes the reader

    const int64_t prompt_tokens_;
    std::atomic<bool> cancelled_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    GenerationEvent pending_;
    bool has_pending_ = false, delivered_final_ = false;
};

// Latency histogram with fixed bucket bounds (seconds): counts[i] = observations in (bounds[i-1], bounds[i]] (not
// cumulative; Prometheus buckets are the running sums);
// the last count is +Inf.
struct Histogram {
    static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1,     2.5,  5,     10,  30};
    std::array<uint64_t, kBounds.size() + 1> counts{};
    double sum = 0;
    uint64_t count = 0;
    void observe(double seconds);
};

struct SchedulerStats {
    int32_t queued = 0;         // submitted, not yet admitted
    int32_t running = 0;        // admitted (prefilling or decoding)
    int32_t slots_total = 0, slots_used = 0;
    // MLA cache pages: held by running sequences now / promised to running ones (pages only the prefix cache holds
    // are free for requests: prefix.pages_idle)
    int32_t pages_total = 0, pages_used = 0, pages_booked = 0;
    int32_t page_size = 0;
    uint64_t prompt_tokens = 0;     // totals since start
    uint64_t generated_tokens = 0;
    uint64_t steps = 0;
    std::array<uint64_t, 4> finished{};  // by FinishReason
    PrefixCacheStats prefix;             // the prefix cache's counters (enabled = false without one)
    Histogram time_to_first_token;       // submit -> first generated token
    Histogram inter_token_latency;       // between consecutive generated tokens of one request
    bool accepting = true;
};

struct SchedulerOptions {
    int32_t max_queue = 64;    // requests waiting beyond the running ones; more -> Overloaded
    int32_t step_tokens = 0;   // tokens per step (decode + prefill chunks); 0 = the model's max_step_rows
    // Prompt tokens per step at most while other sequences are decoding; 0 = a quarter of the step, at least one
    // KDA chunk.
    int32_t prefill_tokens_while_decoding = 0;
    // While sequences decode, prompt chunks are sized from measured step times so that a step takes at most about
    // this many times a decode-only step: the running streams' inter-token latency stays within it while a long
    // prompt is read (which then takes longer). <= 1 turns the timing off (chunks of prefill_tokens_while_decoding).
    double decode_slowdown = 1.5;
    int32_t retry_after_s = 1; // advice given with Overloaded
    // Prefix reuse (null: none). Owned by the caller, used by the engine thread only while the scheduler lives; it
    // must outlive the scheduler (the caller may save it to disk after the scheduler is gone).
    PrefixCache* prefix_cache = nullptr;
};

class Scheduler {
public:
    // Starts the engine thread. `tokenizer` may be null (then requests carry no stop strings and get no text).
    // The model and tokenizer must outlive the scheduler.
    Scheduler(Model& model, const tok::Tokenizer* tokenizer, const SchedulerOptions& options = {});
    // Cancels whatever still runs and joins the engine thread.
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Checks the request (RequestError: empty prompt, ids outside the vocabulary, prompt + 1 longer than the context,
    // bad sampling values or stop strings) and queues it (Overloaded when the queue is full or shutdown began).
    std::shared_ptr<GenerationStream> submit(GenerationRequest request);

    // Stops accepting (submit throws Overloaded), lets running and queued requests finish for up to `grace`, then
    // cancels the rest and returns once the engine is idle. Returns how many requests were cancelled.
    int drain(std::chrono::milliseconds grace);

    SchedulerStats stats() const;
    int64_t context_tokens() const { return context_; }  // tokens per sequence (prompt + output)
    const Model& model() const { return model_; }
    const tok::Tokenizer* tokenizer() const { return tokenizer_; }

private:
    struct Active;
    void loop();
    void admit(std::unique_lock<std::mutex>& lock);
    void run_step();
    void finish(Active& a, FinishReason reason, std::string error = {});
    void emit(Active& a, int32_t id);
    void release(Active& a);  // returns the slot and pages (after a snapshot of the finished turn)
    void start_resumed(Active& a);  // a request whose whole prompt came from the prefix cache
    void learn_step_time(double seconds, int32_t decoding, int64_t prompt_rows, int64_t long_rows);

    Model& model_;
    const tok::Tokenizer* tokenizer_;
    SchedulerOptions options_;
    int64_t context_;
    int32_t step_tokens_;
    int32_t align_;
    int32_t prefill_cap_;
    // Engine thread: moving average of a decode-only step's seconds (< 0: unknown); the long-prompt tokens a step
    // may take beside decodes, steered by how much slower such steps turn out; steps since the last decode-only one.
    double decode_step_s_ = -1;
    int32_t long_chunk_ = 16;
    int32_t steps_since_decode_only_ = 0;
    int32_t prefill_tokens_beside_decode() const;

    mutable std::mutex mu_;
    std::condition_variable wake_;
    struct Waiting {
        GenerationRequest request;
        std::weak_ptr<GenerationStream> stream;
        std::chrono::steady_clock::time_point submitted;
    };
    std::deque<Waiting> queue_;
    bool accepting_ = true, stopping_ = false;
    SchedulerStats stats_;  // guarded by mu_

    std::vector<std::unique_ptr<Active>> active_;  // engine thread only
    int32_t pages_booked_ = 0;                     // engine thread only (copied into stats_)
    std::atomic<bool> cancel_all_{false};          // drain() ran out of time, or shutdown: cancel everything
    std::vector<float> logits_;                    // engine thread: the step's logits
    std::vector<StepItem> step_items_;             // engine thread: run_step's, kept between steps
    std::vector<Active*> step_owners_;
    // What the current step did, added to stats_ under mu_ after it.
    uint64_t step_prompt_tokens_ = 0, step_generated_tokens_ = 0;
    std::vector<double> step_ttft_, step_itl_;
    std::array<uint64_t, 4> step_finished_{};
    std::thread thread_;
};

}  // namespace halo
