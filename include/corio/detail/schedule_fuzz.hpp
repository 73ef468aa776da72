// corio/detail/schedule_fuzz.hpp: the ready-queue shuffler behind
// run_options::schedule_seed (a test-only option; see loop.hpp).
//
// Invariants:
// - Entries arrive in *batches*: everything one step (one resumption, one
//   timer expiry, one Asio handler) made ready. A batch keeps its internal
//   order: that is where a primitive states its wake order (an event's set(),
//   a cancellation waking tasks oldest first, a task's joiners, the spawns of
//   one step). Which batch goes next is a seeded random pick: the interleaving
//   of unrelated steps is not a contract.
// - A picked batch may instead be deferred (moved behind every other batch,
//   its order kept): like a yield_now() injected at the suspension point its
//   tasks are waking from, but without the cancellation check a real
//   yield_now() makes, so no operation gains a cancellation point it does not
//   document.
// - Deterministic: the same seed and the same program give the same order
//   (splitmix64; no clock, no address is ever hashed).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "ready_queue.hpp"

namespace corio::detail {

class schedule_fuzzer {
public:
    explicit schedule_fuzzer(std::uint64_t seed) noexcept : state_(seed) {}

    bool empty() const noexcept { return pool_.empty(); }
    std::size_t size() const noexcept { return pool_.size(); }

    /// splitmix64: a full-period, well-mixed 64-bit sequence.
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    /// Moves whatever `q` holds (made ready by one step) in as one batch.
    void absorb(ready_queue& q) {
        if (q.empty()) return;
        const std::uint64_t b = ++batches_;
        while (!q.empty()) pool_.push_back({q.pop(), b});
    }

    /// The next entry to run, or null when this turn deferred a batch
    /// (one in `defer_one_in` picks is deferred; 0: never).
    void* pick(unsigned defer_one_in) {
        std::size_t i = static_cast<std::size_t>(next() % pool_.size());
        while (i > 0 && pool_[i - 1].batch == pool_[i].batch) --i;  // the batch's oldest entry
        if (defer_one_in != 0 && next() % defer_one_in == 0) {
            defer(i);
            return nullptr;
        }
        void* e = pool_[i].entry;
        pool_.erase(pool_.begin() + static_cast<std::ptrdiff_t>(i));
        return e;
    }

    std::uint64_t deferrals() const noexcept { return deferrals_; }

private:
    struct slot {
        void* entry;
        std::uint64_t batch;
    };

    /// Moves the batch starting at `i` behind every other one, as a new batch.
    void defer(std::size_t i) {
        const std::uint64_t old = pool_[i].batch, b = ++batches_;
        std::size_t end = i;
        while (end < pool_.size() && pool_[end].batch == old) pool_[end++].batch = b;
        std::rotate(pool_.begin() + static_cast<std::ptrdiff_t>(i), pool_.begin() + static_cast<std::ptrdiff_t>(end),
                    pool_.end());
        ++deferrals_;
    }

    std::vector<slot> pool_;
    std::uint64_t state_;
    std::uint64_t batches_ = 0;
    std::uint64_t deferrals_ = 0;
};

}  // namespace corio::detail
