#include "server/metrics.h"

#include <cstdio>

namespace halo::server {

namespace {

// A label value escaped as the exposition format requires (\\, \", \n).
std::string label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.17g\n", value);
    out += name + buf;
}

// A metric with one sample.
void single(std::string& out, const char* name, const char* type, const char* help, double value) {
    header(out, name, type, help);
    sample(out, name, value);
}

void histogram(std::string& out, const char* name, const char* help, const Histogram& h) {
    header(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        cumulative += h.counts[i];  // observe() counts each observation in its own bucket; Prometheus sums them
        char le[32];
        std::snprintf(le, sizeof le, "%g", Histogram::kBounds[i]);
        sample(out, std::string(name) + "_bucket{le=\"" + le + "\"}", double(cumulative));
    }
    sample(out, std::string(name) + "_bucket{le=\"+Inf\"}", double(h.count));
    sample(out, std::string(name) + "_sum", h.sum);
    sample(out, std::string(name) + "_count", double(h.count));
}

}  // namespace

std::string endpoint_label(const std::string& method, const std::string& path) {
    static const char* const known[] = {"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/models",
                                        "/health",             "/metrics",        "/tokenize",    "/detokenize"};
    for (const char* k : known)
        if (path == k) return k;
    if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
    return "other";
}

void Metrics::count_request(const std::string& method, const std::string& path, int status) {
    std::lock_guard lock(mu_);
    ++requests_[{endpoint_label(method, path), status}];
}

std::string Metrics::render(const SchedulerStats* s, const std::vector<MemoryHeld>* memory,
                            const std::string& model_name) const {
    std::string out;
    header(out, "halo_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, count] : requests_)
            sample(out, "halo_requests_total{endpoint=\"" + label(key.first) + "\",status=\"" +
                            std::to_string(key.second) + "\"}",
                   double(count));
    }
    header(out, "halo_model_ready", "gauge", "1 when the model is loaded and requests are served.");
    sample(out, "halo_model_ready{model=\"" + label(model_name) + "\"}", s ? 1 : 0);
    if (!s) return out;

    single(out, "halo_prompt_tokens_total", "counter", "Prompt tokens read.", double(s->prompt_tokens));
    single(out, "halo_generated_tokens_total", "counter", "Tokens generated.", double(s->generated_tokens));
    single(out, "halo_engine_steps_total", "counter", "Forward steps run by the engine.", double(s->steps));
    header(out, "halo_requests_finished_total", "counter", "Generation requests finished, by reason.");
    for (int r = 0; r < 4; ++r)
        sample(out, std::string("halo_requests_finished_total{reason=\"") + finish_reason_name(FinishReason(r)) + "\"}",
               double(s->finished[size_t(r)]));
    histogram(out, "halo_time_to_first_token_seconds", "Time from submission to the first generated token.",
              s->time_to_first_token);
    histogram(out, "halo_inter_token_latency_seconds", "Time between consecutive tokens of one request.",
              s->inter_token_latency);
    single(out, "halo_queue_depth", "gauge", "Requests waiting to be admitted.", s->queued);
    single(out, "halo_running_sequences", "gauge", "Requests admitted (prefilling or decoding).", s->running);
    single(out, "halo_kda_slots_used", "gauge", "KDA state slots in use.", s->slots_used);
    single(out, "halo_kda_slots_total", "gauge", "KDA state slots (sequences that can run at once).", s->slots_total);
    single(out, "halo_mla_pages_used", "gauge", "MLA cache pages holding tokens.", s->pages_used);
    single(out, "halo_mla_pages_booked", "gauge", "MLA cache pages promised to running requests.", s->pages_booked);
    single(out, "halo_mla_pages_total", "gauge", "MLA cache pages.", s->pages_total);
    single(out, "halo_mla_page_tokens", "gauge", "Tokens per MLA cache page.", s->page_size);
    single(out, "halo_accepting_requests", "gauge", "1 while new requests are accepted (0 once draining).", s->accepting ? 1 : 0);
    if (const PrefixCacheStats& p = s->prefix; p.enabled) {  // absent when the server runs without a prefix cache
        single(out, "halo_prefix_cache_lookups_total", "counter", "Requests that looked for a cached prompt prefix.",
               double(p.lookups));
        single(out, "halo_prefix_cache_hits_total", "counter", "Requests that resumed from a cached prompt prefix.",
               double(p.hits));
        single(out, "halo_prefix_cache_tokens_reused_total", "counter",
               "Prompt tokens taken from the prefix cache instead of being read.", double(p.tokens_reused));
        single(out, "halo_prefix_cache_snapshots_taken_total", "counter", "Snapshots of sequence state taken.",
               double(p.snapshots_taken));
        single(out, "halo_prefix_cache_evictions_total", "counter",
               "Snapshots evicted (least recently used first) to make room.", double(p.evictions));
        single(out, "halo_prefix_cache_snapshots", "gauge", "Snapshots held.", p.snapshots);
        header(out, "halo_prefix_cache_snapshot_bytes", "gauge",
               "Bytes the held snapshots take: device (KDA state copies) and host (their tokens and kept logits).");
        sample(out, "halo_prefix_cache_snapshot_bytes{memory=\"device\"}", double(p.snapshot_bytes));
        sample(out, "halo_prefix_cache_snapshot_bytes{memory=\"host\"}", double(p.host_bytes));
        single(out, "halo_prefix_cache_pages", "gauge",
               "MLA cache pages the prefix cache holds (shared with running requests or not).", p.pages);
        single(out, "halo_prefix_cache_pages_idle", "gauge",
               "Of those, the pages no request holds (not counted in halo_mla_pages_used: given back when needed).",
               p.pages_idle);
        single(out, "halo_prefix_cache_max_snapshots", "gauge", "Snapshots the prefix cache may hold.",
               p.max_snapshots);
    }
    if (memory) {
        header(out, "halo_memory_bytes", "gauge", "Bytes held, by memory use and placement.");
        for (const MemoryHeld& m : *memory)
            sample(out, "halo_memory_bytes{use=\"" + label(m.use) + "\",placement=\"" + label(m.placement) + "\"}",
                   double(m.bytes));
    }
    return out;
}

}  // namespace halo::server
