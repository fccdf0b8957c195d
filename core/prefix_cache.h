// Prefix reuse for a hybrid model. A coding agent re-sends the whole conversation every turn; the KDA layers keep a
// fixed-size recurrent state per sequence whatever the context, so the cache keeps copies of it (snapshots) at
// points of a sequence, keyed by a hash of the tokens before that point, together with references to the MLA cache
// pages that hold those tokens. A request whose tokens start with a cached prefix starts from the longest one: its
// KDA state is copied from the snapshot, its first pages are the cached ones (shared, reference-counted; the first
// page it writes into is copied first, see StatePool), and only the rest of the prompt is read.
//
//   PrefixCache cache(model, {.max_snapshots = model.plan().layout.prefix_snapshots, .stride = 2048});
//   SchedulerOptions so;
//   so.prefix_cache = &cache;          // the scheduler snapshots every `stride` prompt tokens, at the end of every
//   Scheduler sched(model, &tok, so);  // prompt and at the end of every generated turn
//
// Snapshots are taken where a step ends: every `stride` tokens of a prompt (a multiple of the KDA chunk, so a
// resumed prompt is cut exactly as a cold one and its logits are bit-for-bit the same), at the end of every prompt
// (with the logits of its last token, so the same prompt again needs no step at all) and at the end of every
// generated turn. Entries are evicted least recently used first: when a new snapshot would exceed max_snapshots,
// when the snapshot's memory cannot be allocated, and when a running sequence needs an MLA page and none is free.
//
// Engine thread only (the scheduler's), except stats() which the scheduler copies out under its own lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/model.h"

namespace halo {

struct PrefixCacheOptions {
    int32_t max_snapshots = 0;  // snapshots held at most (the plan's layout.prefix_snapshots); 0: the cache is off
    int64_t stride = 2048;      // prompt tokens between snapshots (a multiple of the KDA chunk); 0: only ends
};

struct PrefixCacheStats {
    bool enabled = false;
    int32_t max_snapshots = 0;
    int64_t stride = 0;
    uint64_t lookups = 0;        // requests that asked for a prefix
    uint64_t hits = 0;           // ... and resumed from one
    uint64_t tokens_reused = 0;  // prompt tokens not read again thanks to a hit
    uint64_t snapshots_taken = 0;
    uint64_t evictions = 0;
    int32_t snapshots = 0;        // held now
    uint64_t snapshot_bytes = 0;  // their KDA state copies (device memory of the state placement)
    uint64_t host_bytes = 0;      // their token lists and kept logits (host memory)
    int32_t pages = 0;            // MLA cache pages the cache holds (shared with running sequences or not)
    int32_t pages_idle = 0;       // of those, the ones no sequence holds: free for a request that needs them
};

// The engine and model a saved cache belongs to: "engine", "model", "backend", ... -> value. A saved cache is only
// loaded into the same (every key equal); a difference is named.
using CacheFingerprint = std::map<std::string, std::string>;

class PrefixCache {
public:
    // Throws std::invalid_argument when the stride is not a multiple of the model's KDA chunk.
    PrefixCache(Model& model, const PrefixCacheOptions& options);
    ~PrefixCache();  // releases every snapshot and page reference
    PrefixCache(const PrefixCache&) = delete;
    PrefixCache& operator=(const PrefixCache&) = delete;

    bool enabled() const { return options_.max_snapshots > 0; }
    int64_t stride() const { return enabled() ? options_.stride : 0; }  // 0 when off: prompts are cut as usual

    // Starts `seq` (begun: a slot, no tokens) from the longest cached prefix of `prompt` it can use: at most
    // prompt.size() - 1 tokens, or the whole prompt when that entry kept the logits of its last token (copied to
    // *logits) or when `need_logits` is false. Returns the tokens reused; 0 leaves the sequence untouched.
    int64_t resume(Sequence& seq, std::span<const int32_t> prompt, bool need_logits, std::vector<float>* logits);

    // Records the sequence's state after `tokens` (all it has consumed: tokens.size() == seq.n_tokens). `logits`:
    // those of its last token, or empty. A prefix held already is only marked as used (and gains the logits).
    // Never throws for want of memory: it evicts, or takes no snapshot.
    void save(const Sequence& seq, std::span<const int32_t> tokens, std::span<const float> logits = {});

    // Evicts the least recently used entry; false when there is none.
    bool evict_one();
    void clear();
    PrefixCacheStats stats() const;

    // Persistence. save_to writes every entry (least recently used first) to dir (created; replaced atomically:
    // prefix-cache.bin, then manifest.json). load_from reads one back, newest entries first while there is room, and
    // returns how many it loaded; it throws std::runtime_error naming the file and what differs when the directory
    // holds a cache of another engine, model or layout, or a damaged one. No cache there: returns 0.
    struct SaveResult {
        int32_t entries = 0;
        int32_t pages = 0;
        uint64_t bytes = 0;
    };
    SaveResult save_to(const std::filesystem::path& dir, const CacheFingerprint& fingerprint);
    int32_t load_from(const std::filesystem::path& dir, const CacheFingerprint& fingerprint);

private:
    struct Entry {
        std::vector<int32_t> tokens;
        uint64_t hash = 0;
        ops::Buffer* snapshot = nullptr;
        std::vector<int32_t> pages;  // the MLA pages of tokens [0, tokens.size())
        std::vector<float> logits;   // of the last token, or empty
        uint64_t used = 0;           // tick of the last save or resume
    };
    using EntryId = uint64_t;
    Entry* find(std::span<const int32_t> tokens, uint64_t hash);
    void drop(EntryId id);
    void hold_pages(const std::vector<int32_t>& pages, int delta);
    CacheFingerprint full_fingerprint(const CacheFingerprint& f) const;

    Model& model_;
    PrefixCacheOptions options_;
    std::unordered_map<EntryId, Entry> entries_;
    std::unordered_multimap<uint64_t, EntryId> by_hash_;
    std::map<int64_t, int32_t> lengths_;  // entry length -> entries of that length
    std::unordered_map<int32_t, int32_t> page_refs_;  // page -> entries holding it
    EntryId next_id_ = 1;
    uint64_t tick_ = 0;
    PrefixCacheStats stats_;
};

// The hash a prefix is keyed by: a chain over the token ids (hashes[i] covers tokens [0, i)); hashes has
// tokens.size() + 1 entries.
std::vector<uint64_t> prefix_hashes(std::span<const int32_t> tokens);

}  // namespace halo
