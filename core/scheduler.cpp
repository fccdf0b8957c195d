#include "core/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "core/input/excerpt.h"
#include "core/input/utf8.h"
#include "core/tokenizer/stream_decoder.h"

namespace halo {

namespace {

constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::stop: return "stop";
        case FinishReason::length: return "length";
        case FinishReason::cancelled: return "cancelled";
        case FinishReason::error: return "error";
    }
    return "error";
}

void Histogram::observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    ++counts[i];
    sum += seconds;
    ++count;
}

// ---- GenerationStream --------------------------------------------------------------------------------------------

GenerationStream::~GenerationStream() = default;

bool GenerationStream::next(GenerationEvent& ev, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (delivered_final_) return false;
    if (!cv_.wait_for(lock, timeout, [&] { return has_pending_; })) return false;
    ev = std::move(pending_);
    pending_ = GenerationEvent{};
    has_pending_ = false;
    delivered_final_ = ev.finished;
    return true;
}

void GenerationStream::cancel() { cancelled_.store(true); }

void GenerationStream::push(GenerationEvent&& ev) {
    {
        std::lock_guard lock(mu_);
        pending_.ids.insert(pending_.ids.end(), ev.ids.begin(), ev.ids.end());
        pending_.text += ev.text;
        pending_.finished = ev.finished;
        pending_.finish_reason = ev.finish_reason;
        pending_.error = std::move(ev.error);
        pending_.stop_string = std::move(ev.stop_string);
        pending_.prompt_tokens = ev.prompt_tokens;
        pending_.prompt_done = ev.prompt_done;
        pending_.cached_tokens = ev.cached_tokens;
        pending_.completion_tokens = ev.completion_tokens;
        has_pending_ = true;
    }
    cv_.notify_all();
}

// ---- one admitted request ----------------------------------------------------------------------------------------

struct Scheduler::Active {
    GenerationRequest request;
    std::weak_ptr<GenerationStream> stream;
    Clock::time_point submitted, last_token;
    Sequence seq;
    Sampler sampler;
    std::optional<tok::StreamDecoder> decoder;
    int64_t fed = 0;              // prompt tokens fed to the model
    int32_t next_token = -1;      // sampled, to be fed at the next step (-1: still reading the prompt)
    int64_t generated = 0;        // tokens sampled
    std::vector<int32_t> output;  // the tokens sampled, in order (for the snapshot of the finished turn)
    int64_t cached = 0;           // prompt tokens resumed from the prefix cache
    std::vector<float> resume_logits;  // the whole prompt came from the cache: the logits of its last token
    bool failed = false;          // a step of this request failed: its state is not worth keeping
    int32_t booked = 0;           // pages promised at admission
    std::string held;             // decoded text not sent yet: it may be the start of a stop string
    bool done = false;

    Active(GenerationRequest&& r, const SamplingParams& s) : request(std::move(r)), sampler(s) {}
    bool reading_prompt() const { return fed < int64_t(request.prompt.size()); }
};

// ---- Scheduler ---------------------------------------------------------------------------------------------------

Scheduler::Scheduler(Model& model, const tok::Tokenizer* tokenizer, const SchedulerOptions& options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
    const ModelOptions& mo = model.options();
    context_ = mo.max_context;
    step_tokens_ = options.step_tokens > 0 ? std::min(options.step_tokens, mo.max_step_rows) : mo.max_step_rows;
    // Prompt chunks start at multiples of the KDA chunk when the step has room for a few of them, so a prompt is cut
    // at the same kind of boundary alone or batched.
    align_ = mo.kda_chunk > 0 && mo.kda_chunk * 2 <= step_tokens_ ? mo.kda_chunk : 1;
    prefill_cap_ = options.prefill_tokens_while_decoding > 0 ? options.prefill_tokens_while_decoding
                                                             : std::max(align_, step_tokens_ / 4);
    prefill_cap_ = std::max(align_, prefill_cap_ / align_ * align_);
    if (options_.max_queue < 0) options_.max_queue = 0;
    const StatePool& pool = model.pool();
    stats_.slots_total = pool.total_slots();
    stats_.pages_total = pool.total_pages();
    stats_.page_size = pool.page_size();
    if (options_.prefix_cache) stats_.prefix = options_.prefix_cache->stats();
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(mu_);
        accepting_ = false;
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::shared_ptr<GenerationStream> Scheduler::submit(GenerationRequest r) {
    const int64_t vocab = model_.config().vocab_size;
    const int64_t n = int64_t(r.prompt.size());
    if (n == 0) throw RequestError("the prompt is empty; give at least one token", "prompt");
    for (int64_t i = 0; i < n; ++i)
        if (r.prompt[size_t(i)] < 0 || r.prompt[size_t(i)] >= vocab)
            throw RequestError("prompt token " + std::to_string(i) + " is id " + std::to_string(r.prompt[size_t(i)]) +
                                   ", outside the vocabulary (0.." + std::to_string(vocab - 1) + ")",
                               "prompt");
    if (n > context_)
        throw RequestError("the prompt is " + std::to_string(n) + " tokens, longer than the context of " +
                               std::to_string(context_) + " tokens; shorten it or start the server with a larger --context",
                           "messages");
    if (r.max_tokens < 0) throw RequestError("max_tokens must be 0 or more", "max_tokens");
    if (r.max_tokens > context_)
        throw RequestError("max_tokens " + std::to_string(r.max_tokens) + " is more than the context of " +
                               std::to_string(context_) + " tokens",
                           "max_tokens");
    try {
        Sampler check(r.sampling);
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        throw RequestError(what, what.rfind("temperature", 0) == 0 ? "temperature"
                                 : what.rfind("top_k", 0) == 0     ? "top_k"
                                                                   : "top_p");
    }
    for (int32_t id : r.stop_ids)
        if (id < 0 || id >= vocab) throw RequestError("stop token id " + std::to_string(id) + " is outside the vocabulary", "stop");
    if (r.stop_strings.size() > kMaxStopStrings)
        throw RequestError("at most " + std::to_string(kMaxStopStrings) + " stop strings are allowed, not " +
                               std::to_string(r.stop_strings.size()),
                           "stop");
    for (const std::string& s : r.stop_strings) {
        if (s.empty() || s.size() > kMaxStopBytes)
            throw RequestError("a stop string must be 1.." + std::to_string(kMaxStopBytes) + " bytes long", "stop");
        if (!input::is_valid_utf8(s)) throw RequestError("stop string " + input::quote(s) + " is not valid UTF-8", "stop");
    }
    if (!r.stop_strings.empty() && !tokenizer_)
        throw RequestError("stop strings need the model's tokenizer, which this model directory lacks", "stop");
    // A request needs at most this many cache pages; more than the pool holds could never run.
    const int64_t need_tokens = std::min<int64_t>(n + r.max_tokens, context_);
    const int64_t need_pages = (need_tokens + model_.pool().page_size() - 1) / model_.pool().page_size();
    if (need_pages > stats_.pages_total)
        throw RequestError("the request needs " + std::to_string(need_pages) + " cache pages but the cache holds " +
                               std::to_string(stats_.pages_total),
                           "max_tokens");

    auto stream = std::shared_ptr<GenerationStream>(new GenerationStream(n));
    {
        std::lock_guard lock(mu_);
        if (!accepting_) throw Overloaded("the server is shutting down and takes no new requests", options_.retry_after_s);
        const int32_t waiting = int32_t(queue_.size());
        const int32_t free_now = stats_.slots_total - stats_.running;
        if (waiting >= free_now + options_.max_queue)
            throw Overloaded("too many requests: " + std::to_string(stats_.running) + " running and " +
                                 std::to_string(waiting) + " waiting (the queue holds " +
                                 std::to_string(options_.max_queue) + "); retry later",
                             options_.retry_after_s);
        queue_.push_back(Waiting{std::move(r), stream, Clock::now()});
        stats_.queued = int32_t(queue_.size());
    }
    wake_.notify_all();
    return stream;
}

int Scheduler::drain(std::chrono::milliseconds grace) {
    std::unique_lock lock(mu_);
    accepting_ = false;
    stats_.accepting = false;
    const auto idle = [&] { return queue_.empty() && stats_.running == 0; };
    if (wake_.wait_for(lock, grace, idle)) return 0;
    // Out of time: cancel everything still queued or running.
    int cancelled = int(queue_.size()) + stats_.running;
    for (Waiting& w : queue_)
        if (auto s = w.stream.lock()) s->cancel();
    cancel_all_ = true;
    lock.unlock();
    wake_.notify_all();
    lock.lock();
    wake_.wait(lock, idle);
    return cancelled;
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

void Scheduler::loop() {
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
        if (stopping_) {
            for (Waiting& w : queue_)
                if (auto s = w.stream.lock()) s->cancel();
            cancel_all_ = true;
        }
        admit(lock);
        if (active_.empty()) {
            if (stopping_) break;
            continue;
        }
        lock.unlock();
        run_step();
        lock.lock();
        // Publish what the step changed.
        const StatePool& pool = model_.pool();
        stats_.running = int32_t(active_.size());
        stats_.slots_used = pool.total_slots() - pool.free_slots();
        stats_.pages_booked = pages_booked_;
        stats_.queued = int32_t(queue_.size());
        if (options_.prefix_cache) stats_.prefix = options_.prefix_cache->stats();
        stats_.pages_used = pool.total_pages() - pool.free_pages() - stats_.prefix.pages_idle;
        ++stats_.steps;
        stats_.prompt_tokens += step_prompt_tokens_;
        stats_.generated_tokens += step_generated_tokens_;
        for (double s : step_ttft_) stats_.time_to_first_token.observe(s);
        for (double s : step_itl_) stats_.inter_token_latency.observe(s);
        for (size_t i = 0; i < step_finished_.size(); ++i) stats_.finished[i] += step_finished_[i];
        step_prompt_tokens_ = step_generated_tokens_ = 0;
        step_ttft_.clear();
        step_itl_.clear();
        step_finished_ = {};
        if (active_.empty() && queue_.empty()) wake_.notify_all();  // drain() waits for this
    }
    stats_.running = 0;
    wake_.notify_all();
}

// Moves waiting requests into free slots, first come first served, while their pages fit. Called with mu_ held.
void Scheduler::admit(std::unique_lock<std::mutex>& lock) {
    StatePool& pool = model_.pool();
    while (!queue_.empty()) {
        Waiting& w = queue_.front();
        std::shared_ptr<GenerationStream> stream = w.stream.lock();
        if (!stream || stream->cancelled_.load()) {  // gone before it started
            if (stream) {
                GenerationEvent ev;
                ev.finished = true;
                ev.finish_reason = FinishReason::cancelled;
                ev.prompt_tokens = int64_t(w.request.prompt.size());
                stream->push(std::move(ev));
            }
            ++stats_.finished[size_t(FinishReason::cancelled)];
            queue_.pop_front();
            continue;
        }
        const int64_t n = int64_t(w.request.prompt.size());
        const int64_t need_tokens = std::min<int64_t>(n + w.request.max_tokens, context_);
        const int32_t need_pages = int32_t((need_tokens + pool.page_size() - 1) / pool.page_size());
        if (int32_t(active_.size()) >= pool.total_slots() || pages_booked_ + need_pages > pool.total_pages()) break;
        const SamplingParams sampling = w.request.sampling;
        auto a = std::make_unique<Active>(std::move(w.request), sampling);
        a->stream = w.stream;
        a->submitted = w.submitted;
        a->booked = need_pages;
        if (tokenizer_) a->decoder.emplace(*tokenizer_, a->request.skip_special);
        queue_.pop_front();
        pages_booked_ += need_pages;
        model_.begin_sequence(a->seq);
        if (options_.prefix_cache) {
            const bool need_logits = a->request.max_tokens > 0;
            a->cached = options_.prefix_cache->resume(a->seq, a->request.prompt, need_logits, &a->resume_logits);
            a->fed = a->cached;
        }
        active_.push_back(std::move(a));
    }
    stats_.queued = int32_t(queue_.size());
    stats_.running = int32_t(active_.size());
    (void)lock;
}

void Scheduler::run_step() {
    // Requests cancelled or dropped since the last step end now.
    for (auto& a : active_) {
        auto s = a->stream.lock();
        if (!s || s->cancelled_.load() || cancel_all_) finish(*a, FinishReason::cancelled);
    }
    std::erase_if(active_, [](const std::unique_ptr<Active>& a) { return a->done; });
    // Requests whose whole prompt came from the prefix cache start without a step.
    for (auto& a : active_)
        if (!a->done && !a->reading_prompt() && a->next_token < 0 && a->generated == 0) start_resumed(*a);
    std::erase_if(active_, [](const std::unique_ptr<Active>& a) { return a->done; });
    if (active_.empty()) return;

    // Decode tokens first: one per sequence past its prompt. Then prompt chunks, oldest request first.
    std::vector<StepItem>& items = step_items_;  // kept between steps: a decode step allocates nothing here
    std::vector<Active*>& owners = step_owners_;
    items.clear();
    owners.clear();
    int32_t budget = step_tokens_;
    int32_t decoding = 0;
    for (auto& a : active_)
        if (!a->reading_prompt() && budget > 0) {
            items.push_back({&a->seq, std::span<const int32_t>(&a->next_token, 1), LogitRows::last});
            owners.push_back(a.get());
            --budget;
            ++decoding;
        }
    // Prompt tokens beside decode tokens: a long prompt gets what keeps the step within decode_slowdown of a
    // decode-only one; a short prompt (one chunk at most) is read whole, within a chunk per step for all of them,
    // so new requests join the running ones quickly (throughput) and only long prompts are spread out.
    int32_t long_budget = decoding > 0 ? std::min(budget, prefill_tokens_beside_decode()) : budget;
    int64_t long_rows = 0;
    int32_t short_budget = decoding > 0 ? std::min(budget, prefill_cap_) : budget;
    for (auto& a : active_) {
        if (!a->reading_prompt() || budget <= 0) continue;
        // What is left to read decides (a prompt resumed from the prefix cache is short when its new part is).
        const bool short_prompt = int64_t(a->request.prompt.size()) - a->cached <= prefill_cap_;
        int32_t& allowed = short_prompt ? short_budget : long_budget;
        const int64_t left = int64_t(a->request.prompt.size()) - a->fed;
        int64_t take = std::min<int64_t>({left, allowed, budget});
        if (take < left && take >= align_) take = take / align_ * align_;  // a chunk that is not the prompt's last ends on the grid
        if (const int64_t stride = options_.prefix_cache ? options_.prefix_cache->stride() : 0; stride > 0) {
            const int64_t next = (a->fed / stride + 1) * stride;  // the next snapshot point ends the chunk
            take = std::min(take, next - a->fed);
        }
        if (take <= 0) continue;
        // The prompt's last token gives the first sampled one (none when max_tokens is 0).
        const bool sample = take == left && a->request.max_tokens > 0;
        items.push_back({&a->seq, std::span<const int32_t>(a->request.prompt.data() + a->fed, size_t(take)),
                         sample ? LogitRows::last : LogitRows::none});
        owners.push_back(a.get());
        allowed -= int32_t(take);
        budget -= int32_t(take);
        if (!short_prompt) long_rows += take;
    }
    if (items.empty()) return;

    // Items [0, decoding) are decode tokens, the rest prompt chunks.
    const int64_t prompt_rows = int64_t(step_tokens_ - decoding) - budget;
    const Clock::time_point step_start = Clock::now();
    logits_.clear();
    try {
        model_.submit_step(items);
        // While the backend runs the step: prompt bookkeeping and progress, which need no logits.
        for (size_t i = size_t(decoding); i < items.size(); ++i) {
            Active& a = *owners[i];
            a.fed += int64_t(items[i].tokens.size());
            step_prompt_tokens_ += items[i].tokens.size();
            if (!a.reading_prompt()) continue;
            if (auto st = a.stream.lock()) {
                GenerationEvent ev;
                ev.prompt_tokens = int64_t(a.request.prompt.size());
                ev.prompt_done = a.fed;
                ev.cached_tokens = a.cached;
                st->push(std::move(ev));
            }
        }
        model_.collect_step(logits_);
        learn_step_time(seconds_between(step_start, Clock::now()), decoding, prompt_rows, long_rows);
    } catch (const std::exception& e) {
        // The step failed as a whole (a backend error): the requests in it cannot go on; the others can.
        const std::string why = input::one_line(e.what());
        std::fprintf(stderr, "engine: a step of %zu sequences failed: %s\n", items.size(), why.c_str());
        for (Active* a : owners) {
            a->failed = true;
            finish(*a, FinishReason::error, why);
        }
        std::erase_if(active_, [](const std::unique_ptr<Active>& a) { return a->done; });
        return;
    }

    const int64_t vocab = model_.config().vocab_size;
    PrefixCache* cache = options_.prefix_cache;
    size_t row = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        Active& a = *owners[i];
        const bool prompt_chunk = i >= size_t(decoding);
        const std::span<const int32_t> read(a.request.prompt.data(), size_t(a.fed));
        if (items[i].logits == LogitRows::none) {  // a prompt chunk with more to come, or max_tokens 0
            if (cache && prompt_chunk && (!a.reading_prompt() || (cache->stride() && a.fed % cache->stride() == 0)))
                cache->save(a.seq, read);
            if (!a.reading_prompt()) finish(a, FinishReason::length);
            continue;
        }
        const float* row_logits = logits_.data() + row * size_t(vocab);
        ++row;
        // The end of a prompt: a snapshot with the logits its first token is sampled from.
        if (cache && prompt_chunk) cache->save(a.seq, read, std::span<const float>(row_logits, size_t(vocab)));
        int32_t id;
        try {
            id = a.sampler.sample(row_logits, vocab);
        } catch (const std::exception& e) {
            finish(a, FinishReason::error, input::one_line(e.what()));
            continue;
        }
        emit(a, id);
    }
    std::erase_if(active_, [](const std::unique_ptr<Active>& a) { return a->done; });
}

// Sizing long-prompt chunks beside running streams. A step's cost is not linear in its rows (kernels work on groups
// of rows), so the chunk is steered by what steps cost: smaller by a quarter when a step with one came out slower
// than decode_slowdown times a decode-only step, larger by a quarter when it was within and used its whole allowance.
// Every 9th step of a long prompt is decode-only, so the comparison follows the running sequences' growing contexts.
void Scheduler::learn_step_time(double seconds, int32_t decoding, int64_t prompt_rows, int64_t long_rows) {
    constexpr double kWeight = 0.2;  // of the newest decode-only step
    if (decoding == 0) return;
    if (prompt_rows == 0) {
        decode_step_s_ = decode_step_s_ < 0 ? seconds : decode_step_s_ + kWeight * (seconds - decode_step_s_);
        steps_since_decode_only_ = 0;
        return;
    }
    if (long_rows == 0 || long_rows != prompt_rows || decode_step_s_ < 0) return;  // short prompts: not steered
    ++steps_since_decode_only_;
    if (seconds > options_.decode_slowdown * decode_step_s_)
        long_chunk_ = std::max(1, long_chunk_ * 3 / 4);
    else if (long_rows >= long_chunk_)
        long_chunk_ = std::min(prefill_cap_, long_chunk_ + std::max(1, long_chunk_ / 4));
}

// Prompt tokens of long prompts the next step may take beside its decode tokens.
int32_t Scheduler::prefill_tokens_beside_decode() const {
    if (options_.decode_slowdown <= 1) return prefill_cap_;
    if (decode_step_s_ >= 0 && steps_since_decode_only_ >= 8) return 0;  // decode-only: measure it again
    return std::min(long_chunk_, prefill_cap_);
}

// A token was sampled for `a`: send it (and the text it completes), then decide whether the request goes on.
void Scheduler::emit(Active& a, int32_t id) {
    const Clock::time_point now = Clock::now();
    if (a.generated == 0)
        step_ttft_.push_back(seconds_between(a.submitted, now));
    else
        step_itl_.push_back(seconds_between(a.last_token, now));
    a.last_token = now;
    ++a.generated;
    a.output.push_back(id);
    ++step_generated_tokens_;

    GenerationEvent ev;
    ev.ids.push_back(id);
    const auto& stops = a.request.stop_ids;
    const bool stop_id = std::find(stops.begin(), stops.end(), id) != stops.end();
    std::optional<FinishReason> end;
    if (stop_id) end = FinishReason::stop;
    if (!stop_id && a.decoder && id < tokenizer_->vocab_size()) a.held += a.decoder->push(id);
    if (!end && a.generated >= a.request.max_tokens) end = FinishReason::length;
    // The cache holds `context_` tokens; the sampled token would be the next one fed.
    if (!end && a.seq.n_tokens + 1 > context_) end = FinishReason::length;
    if (end && a.decoder) a.held += a.decoder->finish();

    // Stop strings: the earliest match ends the text; otherwise hold back what could still become one.
    size_t send = a.held.size();
    for (const std::string& s : a.request.stop_strings) {
        const size_t at = a.held.find(s);
        if (at != std::string::npos && (ev.stop_string.empty() || at < send)) {
            send = at;
            ev.stop_string = s;
        }
    }
    if (!ev.stop_string.empty()) {
        end = FinishReason::stop;
    } else if (!end) {
        for (const std::string& s : a.request.stop_strings)
            for (size_t k = std::min(s.size() - 1, a.held.size()); k > 0; --k)
                if (a.held.compare(a.held.size() - k, k, s, 0, k) == 0) {
                    send = std::min(send, a.held.size() - k);
                    break;
                }
    }
    ev.text = a.held.substr(0, send);
    a.held.erase(0, end ? a.held.size() : send);
    ev.prompt_tokens = int64_t(a.request.prompt.size());
    ev.prompt_done = ev.prompt_tokens;
    ev.cached_tokens = a.cached;
    ev.completion_tokens = a.generated;
    if (end) {
        ev.finished = true;
        ev.finish_reason = *end;
        a.done = true;
        release(a);
        ++step_finished_[size_t(*end)];
    } else {
        a.next_token = id;
    }
    if (auto s = a.stream.lock()) s->push(std::move(ev));
}

void Scheduler::finish(Active& a, FinishReason reason, std::string error) {
    if (a.done) return;
    GenerationEvent ev;
    if (a.decoder && reason != FinishReason::error) ev.text = a.held + a.decoder->finish();
    ev.finished = true;
    ev.finish_reason = reason;
    ev.error = std::move(error);
    ev.prompt_tokens = int64_t(a.request.prompt.size());
    ev.prompt_done = a.fed;
    ev.cached_tokens = a.cached;
    ev.completion_tokens = a.generated;
    a.done = true;
    release(a);
    ++step_finished_[size_t(reason)];
    if (auto s = a.stream.lock()) s->push(std::move(ev));
}

void Scheduler::start_resumed(Active& a) {
    if (a.request.max_tokens == 0) {
        finish(a, FinishReason::length);
        return;
    }
    int32_t id;
    try {
        id = a.sampler.sample(a.resume_logits.data(), model_.config().vocab_size);
    } catch (const std::exception& e) {
        finish(a, FinishReason::error, input::one_line(e.what()));
        return;
    }
    a.resume_logits.clear();
    emit(a, id);
}

void Scheduler::release(Active& a) {
    // The end of a turn: a snapshot of everything the sequence read (the prompt and the tokens fed back), for the
    // next request of the conversation.
    PrefixCache* cache = options_.prefix_cache;
    const int64_t n = int64_t(a.request.prompt.size());
    if (cache && !a.failed && a.seq.slot >= 0 && a.seq.n_tokens > n && a.seq.n_tokens - n <= int64_t(a.output.size())) {
        std::vector<int32_t> tokens(a.request.prompt);
        tokens.insert(tokens.end(), a.output.begin(), a.output.begin() + (a.seq.n_tokens - n));
        cache->save(a.seq, tokens);
    }
    model_.end_sequence(a.seq);
    pages_booked_ -= a.booked;
    a.booked = 0;
}

}  // namespace halo
