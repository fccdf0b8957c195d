#include "core/prefix_cache.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace halo {

namespace {

constexpr char kMagic[8] = {'H', 'A', 'L', 'O', 'P', 'F', 'X', '1'};
constexpr char kEndMagic[8] = {'H', 'A', 'L', 'O', 'E', 'N', 'D', '1'};
constexpr int kFormatVersion = 1;
constexpr const char* kDataFile = "prefix-cache.bin";
constexpr const char* kManifestFile = "manifest.json";

uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

struct Writer {
    std::ofstream out;
    uint64_t bytes = 0;
    std::string path;
    void put(const void* p, uint64_t n) {
        out.write(static_cast<const char*>(p), std::streamsize(n));
        if (!out) throw std::runtime_error("cannot write " + path + " (disk full?)");
        bytes += n;
    }
    template <class T>
    void value(T v) {
        put(&v, sizeof v);
    }
};

struct Reader {
    std::ifstream in;
    std::string path;
    void get(void* p, uint64_t n) {
        in.read(static_cast<char*>(p), std::streamsize(n));
        if (uint64_t(in.gcount()) != n) throw std::runtime_error(path + " is truncated; delete it");
    }
    template <class T>
    T value() {
        T v;
        get(&v, sizeof v);
        return v;
    }
};

}  // namespace

std::vector<uint64_t> prefix_hashes(std::span<const int32_t> tokens) {
    std::vector<uint64_t> h(tokens.size() + 1);
    h[0] = 0x6a09e667f3bcc908ULL;
    for (size_t i = 0; i < tokens.size(); ++i) h[i + 1] = mix(h[i] ^ (uint64_t(uint32_t(tokens[i])) + 0x9e3779b97f4a7c15ULL));
    return h;
}

PrefixCache::PrefixCache(Model& model, const PrefixCacheOptions& options) : model_(model), options_(options) {
    const int32_t chunk = model.options().kda_chunk;
    if (options_.stride < 0 || (options_.stride > 0 && chunk > 0 && options_.stride % chunk != 0))
        throw std::invalid_argument("the prefix cache stride must be a multiple of the KDA chunk (" +
                                    std::to_string(chunk) + " tokens), not " + std::to_string(options_.stride));
    if (options_.max_snapshots < 0) options_.max_snapshots = 0;
    stats_.enabled = enabled();
    stats_.max_snapshots = options_.max_snapshots;
    stats_.stride = options_.stride;
    if (enabled()) model_.pool().set_reclaimer([this] { return evict_one(); });
}

PrefixCache::~PrefixCache() {
    model_.pool().set_reclaimer({});
    clear();
}

PrefixCache::Entry* PrefixCache::find(std::span<const int32_t> tokens, uint64_t hash) {
    auto [lo, hi] = by_hash_.equal_range(hash);
    for (auto it = lo; it != hi; ++it) {
        Entry& e = entries_.at(it->second);
        if (e.tokens.size() == tokens.size() && std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin())) return &e;
    }
    return nullptr;
}

int64_t PrefixCache::resume(Sequence& seq, std::span<const int32_t> prompt, bool need_logits, std::vector<float>* logits) {
    if (!enabled() || prompt.empty()) return 0;
    ++stats_.lookups;
    const int64_t n = int64_t(prompt.size());
    std::vector<uint64_t> h;
    for (auto it = lengths_.rbegin(); it != lengths_.rend(); ++it) {
        const int64_t len = it->first;
        if (len > n) continue;
        if (h.empty()) h = prefix_hashes(prompt);
        Entry* e = find(prompt.first(size_t(len)), h[size_t(len)]);
        if (!e) continue;
        const bool whole = len == n;
        if (whole && need_logits && e->logits.empty()) continue;  // no logits to sample the first token from
        if (seq.slot < 0 || seq.n_tokens != 0 || !seq.pages.empty())
            throw std::logic_error("PrefixCache::resume: the sequence must be begun and empty");
        model_.restore_state(e->snapshot, seq);
        model_.pool().retain(e->pages);
        seq.pages = e->pages;
        seq.n_tokens = len;
        if (whole && need_logits && logits) *logits = e->logits;
        e->used = ++tick_;
        ++stats_.hits;
        stats_.tokens_reused += uint64_t(len);
        return len;
    }
    return 0;
}

void PrefixCache::hold_pages(const std::vector<int32_t>& pages, int delta) {
    for (int32_t p : pages) {
        int32_t& n = page_refs_[p];
        n += delta;
        if (n == 0) page_refs_.erase(p);
    }
}

void PrefixCache::save(const Sequence& seq, std::span<const int32_t> tokens, std::span<const float> logits) {
    if (!enabled() || tokens.empty() || seq.slot < 0) return;
    if (int64_t(tokens.size()) != seq.n_tokens)
        throw std::logic_error("PrefixCache::save: " + std::to_string(tokens.size()) + " tokens for a sequence of " +
                               std::to_string(seq.n_tokens));
    const uint64_t hash = prefix_hashes(tokens).back();
    if (Entry* e = find(tokens, hash)) {
        e->used = ++tick_;
        if (e->logits.empty() && !logits.empty()) {
            e->logits.assign(logits.begin(), logits.end());
            stats_.host_bytes += e->logits.size() * sizeof(float);
        }
        return;
    }
    while (int32_t(entries_.size()) >= options_.max_snapshots)
        if (!evict_one()) return;
    ops::Buffer* snapshot = nullptr;
    if (model_.snapshot_bytes()) {
        for (;;) {
            try {
                snapshot = model_.new_snapshot();
                break;
            } catch (const ops::OutOfMemory&) {
                if (!evict_one()) return;  // no memory for even one snapshot: take none
            }
        }
        model_.save_state(seq, snapshot);
    }
    const int32_t ps = model_.pool().page_size();
    const size_t n_pages = (tokens.size() + size_t(ps) - 1) / size_t(ps);
    Entry e;
    e.tokens.assign(tokens.begin(), tokens.end());
    e.hash = hash;
    e.snapshot = snapshot;
    e.pages.assign(seq.pages.begin(), seq.pages.begin() + std::ptrdiff_t(std::min(n_pages, seq.pages.size())));
    e.logits.assign(logits.begin(), logits.end());
    e.used = ++tick_;
    model_.pool().retain(e.pages);
    hold_pages(e.pages, +1);
    stats_.snapshot_bytes += snapshot ? model_.snapshot_bytes() : 0;
    stats_.host_bytes += e.tokens.size() * sizeof(int32_t) + e.logits.size() * sizeof(float);
    ++stats_.snapshots_taken;
    const EntryId id = next_id_++;
    by_hash_.emplace(hash, id);
    ++lengths_[int64_t(e.tokens.size())];
    entries_.emplace(id, std::move(e));
}

void PrefixCache::drop(EntryId id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    auto [lo, hi] = by_hash_.equal_range(e.hash);
    for (auto h = lo; h != hi; ++h)
        if (h->second == id) {
            by_hash_.erase(h);
            break;
        }
    auto len = lengths_.find(int64_t(e.tokens.size()));
    if (len != lengths_.end() && --len->second == 0) lengths_.erase(len);
    if (e.snapshot) {
        model_.release_snapshot(e.snapshot);
        stats_.snapshot_bytes -= model_.snapshot_bytes();
    }
    hold_pages(e.pages, -1);
    model_.pool().release(e.pages);
    stats_.host_bytes -= e.tokens.size() * sizeof(int32_t) + e.logits.size() * sizeof(float);
    entries_.erase(it);
}

bool PrefixCache::evict_one() {
    if (entries_.empty()) return false;
    auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                   [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
    drop(oldest->first);
    ++stats_.evictions;
    return true;
}

void PrefixCache::clear() {
    while (!entries_.empty()) drop(entries_.begin()->first);
}

PrefixCacheStats PrefixCache::stats() const {
    PrefixCacheStats s = stats_;
    s.snapshots = int32_t(entries_.size());
    s.pages = int32_t(page_refs_.size());
    for (const auto& [page, entries] : page_refs_) s.pages_idle += model_.pool().references(page) == entries ? 1 : 0;
    return s;
}

// ---- persistence -------------------------------------------------------------------------------------------------

CacheFingerprint PrefixCache::full_fingerprint(const CacheFingerprint& f) const {
    CacheFingerprint out = f;
    const MemoryLayout& L = model_.plan().layout;
    out["format"] = std::to_string(kFormatVersion);
    out["vocab"] = std::to_string(model_.config().vocab_size);
    out["page_size"] = std::to_string(L.page_size);
    out["page_bytes"] = std::to_string(model_.page_bytes());
    out["snapshot_bytes"] = std::to_string(model_.snapshot_bytes());
    out["cache_dtype"] = ops::dtype_name(L.cache_dtype);
    return out;
}

PrefixCache::SaveResult PrefixCache::save_to(const std::filesystem::path& dir, const CacheFingerprint& fingerprint) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the prefix cache directory " + dir.string() + ": " + ec.message());
    // Oldest first, so that loading keeps the order of use.
    std::vector<const Entry*> order;
    for (const auto& [id, e] : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->used < b->used; });
    std::map<int32_t, int32_t> page_index;  // pool page -> file page
    std::vector<int32_t> pages;
    for (const Entry* e : order)
        for (int32_t p : e->pages)
            if (page_index.emplace(p, int32_t(pages.size())).second) pages.push_back(p);

    const fs::path data = dir / kDataFile, data_tmp = dir / (std::string(kDataFile) + ".tmp");
    SaveResult r;
    {
        Writer w;
        w.path = data_tmp.string();
        w.out.open(data_tmp, std::ios::binary | std::ios::trunc);
        if (!w.out) throw std::runtime_error("cannot write " + w.path);
        w.put(kMagic, sizeof kMagic);
        w.value<uint32_t>(uint32_t(pages.size()));
        w.value<uint32_t>(uint32_t(order.size()));
        std::vector<uint8_t> buf(std::max(model_.page_bytes(), model_.snapshot_bytes()));
        for (int32_t p : pages) {
            model_.read_page(p, buf.data());
            w.put(buf.data(), model_.page_bytes());
        }
        for (const Entry* e : order) {
            w.value<uint64_t>(e->tokens.size());
            w.put(e->tokens.data(), e->tokens.size() * sizeof(int32_t));
            w.value<uint32_t>(uint32_t(e->pages.size()));
            for (int32_t p : e->pages) w.value<int32_t>(page_index.at(p));
            w.value<uint64_t>(e->logits.size());
            w.put(e->logits.data(), e->logits.size() * sizeof(float));
            w.value<uint8_t>(e->snapshot ? 1 : 0);
            if (e->snapshot) {
                model_.read_snapshot(e->snapshot, buf.data());
                w.put(buf.data(), model_.snapshot_bytes());
            }
        }
        w.put(kEndMagic, sizeof kEndMagic);
        w.out.close();
        if (!w.out) throw std::runtime_error("cannot write " + w.path + " (disk full?)");
        r.bytes = w.bytes;
    }
    r.entries = int32_t(order.size());
    r.pages = int32_t(pages.size());
    nlohmann::json m;
    m["format"] = "halo prefix cache";
    m["fingerprint"] = full_fingerprint(fingerprint);
    m["entries"] = r.entries;
    m["pages"] = r.pages;
    m["bytes"] = r.bytes;
    const fs::path manifest = dir / kManifestFile, manifest_tmp = dir / (std::string(kManifestFile) + ".tmp");
    {
        std::ofstream out(manifest_tmp, std::ios::trunc);
        out << m.dump(2) << "\n";
        out.close();
        if (!out) throw std::runtime_error("cannot write " + manifest_tmp.string());
    }
    // The manifest goes last: a cache whose data was replaced but not its manifest is refused as damaged, never
    // read with the wrong description.
    fs::remove(manifest, ec);
    fs::rename(data_tmp, data, ec);
    if (ec) throw std::runtime_error("cannot replace " + data.string() + ": " + ec.message());
    fs::rename(manifest_tmp, manifest, ec);
    if (ec) throw std::runtime_error("cannot replace " + manifest.string() + ": " + ec.message());
    return r;
}

int32_t PrefixCache::load_from(const std::filesystem::path& dir, const CacheFingerprint& fingerprint) {
    namespace fs = std::filesystem;
    const fs::path manifest = dir / kManifestFile, data = dir / kDataFile;
    if (!fs::exists(manifest) && !fs::exists(data)) return 0;
    if (!fs::exists(manifest))
        throw std::runtime_error(manifest.string() + " is missing (a save was cut short); delete " + dir.string());
    nlohmann::json m;
    {
        std::ifstream in(manifest);
        try {
            m = nlohmann::json::parse(in);
        } catch (const std::exception&) {
            throw std::runtime_error(manifest.string() + " is not valid JSON; delete " + dir.string());
        }
    }
    if (!m.is_object() || m.value("format", "") != "halo prefix cache" || !m.contains("fingerprint") ||
        !m["fingerprint"].is_object())
        throw std::runtime_error(manifest.string() + " is not a Halo prefix cache manifest");
    const CacheFingerprint want = full_fingerprint(fingerprint);
    for (const auto& [key, value] : want) {
        const auto it = m["fingerprint"].find(key);
        const std::string had = it != m["fingerprint"].end() && it->is_string() ? it->get<std::string>() : "(none)";
        if (had != value)
            throw std::runtime_error("the prefix cache in " + dir.string() + " is stale: it was written for " + key +
                                     " '" + had + "', and this server has " + key + " '" + value + "'");
    }
    if (!enabled()) return 0;

    Reader r;
    r.path = data.string();
    r.in.open(data, std::ios::binary);
    if (!r.in) throw std::runtime_error("cannot read " + r.path);
    char magic[8];
    r.get(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof magic) != 0) throw std::runtime_error(r.path + " is not a Halo prefix cache");
    const uint32_t n_pages = r.value<uint32_t>(), n_entries = r.value<uint32_t>();
    const uint64_t file_bytes = fs::file_size(data);
    if (uint64_t(n_pages) * model_.page_bytes() > file_bytes || uint64_t(n_entries) * 21 > file_bytes)
        throw std::runtime_error(r.path + " is damaged (its counts exceed its size); delete it");

    // Pages first, each with one reference of the load's own, dropped at the end (entries hold theirs).
    std::vector<int32_t> pages;
    std::vector<uint8_t> buf(std::max(model_.page_bytes(), model_.snapshot_bytes()));
    StatePool& pool = model_.pool();
    int32_t loaded = 0;
    // Only the newest max_snapshots entries can be kept; skip the older ones.
    const uint32_t skip = n_entries > uint32_t(options_.max_snapshots) ? n_entries - uint32_t(options_.max_snapshots) : 0;
    try {
        for (uint32_t i = 0; i < n_pages; ++i) {
            r.get(buf.data(), model_.page_bytes());
            if (pool.free_pages() == 0) {  // no room for more: the entries that need them are skipped
                pages.push_back(-1);
                continue;
            }
            const int32_t p = pool.take_page();
            model_.write_page(p, buf.data());
            pages.push_back(p);
        }
        const int64_t vocab = model_.config().vocab_size;
        const int32_t ps = pool.page_size();
        for (uint32_t i = 0; i < n_entries; ++i) {
            Entry e;
            const uint64_t n = r.value<uint64_t>();
            if (n == 0 || n * sizeof(int32_t) > file_bytes)
                throw std::runtime_error(r.path + " is damaged (an entry of " + std::to_string(n) + " tokens); delete it");
            // Saved by a server with a longer context: read past it.
            const bool too_long = n > uint64_t(model_.options().max_context);
            e.tokens.resize(n);
            r.get(e.tokens.data(), n * sizeof(int32_t));
            for (int32_t t : e.tokens)
                if (t < 0 || t >= vocab) throw std::runtime_error(r.path + " is damaged (a token outside the vocabulary)");
            const uint32_t np = r.value<uint32_t>();
            if (np != (n + uint64_t(ps) - 1) / uint64_t(ps)) throw std::runtime_error(r.path + " is damaged (a page table)");
            bool complete = true;
            for (uint32_t k = 0; k < np; ++k) {
                const int32_t fp = r.value<int32_t>();
                if (fp < 0 || uint32_t(fp) >= n_pages) throw std::runtime_error(r.path + " is damaged (a page index)");
                e.pages.push_back(pages[size_t(fp)]);
                complete = complete && pages[size_t(fp)] >= 0;
            }
            const uint64_t nl = r.value<uint64_t>();
            if (nl != 0 && nl != uint64_t(vocab)) throw std::runtime_error(r.path + " is damaged (an entry's logits)");
            e.logits.resize(nl);
            r.get(e.logits.data(), nl * sizeof(float));
            const uint8_t has_snapshot = r.value<uint8_t>();
            if (has_snapshot > 1 || (has_snapshot == 0) != (model_.snapshot_bytes() == 0))
                throw std::runtime_error(r.path + " is damaged (an entry's snapshot)");
            if (has_snapshot) r.get(buf.data(), model_.snapshot_bytes());
            if (i < skip || !complete || too_long) continue;
            e.hash = prefix_hashes(e.tokens).back();
            if (find(e.tokens, e.hash)) continue;
            if (has_snapshot) {
                try {
                    e.snapshot = model_.new_snapshot();
                } catch (const ops::OutOfMemory&) {
                    continue;
                }
                model_.write_snapshot(e.snapshot, buf.data());
            }
            e.used = ++tick_;
            pool.retain(e.pages);
            hold_pages(e.pages, +1);
            stats_.snapshot_bytes += e.snapshot ? model_.snapshot_bytes() : 0;
            stats_.host_bytes += e.tokens.size() * sizeof(int32_t) + e.logits.size() * sizeof(float);
            const EntryId id = next_id_++;
            by_hash_.emplace(e.hash, id);
            ++lengths_[int64_t(e.tokens.size())];
            entries_.emplace(id, std::move(e));
            ++loaded;
        }
        char end[8];
        r.get(end, sizeof end);
        if (std::memcmp(end, kEndMagic, sizeof end) != 0) throw std::runtime_error(r.path + " is damaged (no end mark); delete it");
    } catch (...) {
        clear();
        for (int32_t p : pages)
            if (p >= 0) pool.release(std::span<const int32_t>(&p, 1));
        throw;
    }
    for (int32_t p : pages)
        if (p >= 0) pool.release(std::span<const int32_t>(&p, 1));
    return loaded;
}

}  // namespace halo
