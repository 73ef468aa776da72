// corio/detail/thread_pool.hpp: the process-wide asio::thread_pool behind
// to_thread(), and the storage of a value handed across threads.
//
// Invariants: the pool is made on first use (with the size the first user
// asks for) and lives until shutdown_thread_pool() or process exit; after a
// shutdown, get() throws until reset(). The fast path (pool running) is one
// acquire load; the mutex guards creation and shutdown only.
//
// Bounded spinning (docs/design.md, "to_thread's wake-ups"): a pool thread
// that finished a to_thread call stays hot for at most `pool_spin`, polling
// a hand-off slot; a to_thread that finds a hot thread hands its call over
// through that slot (one atomic exchange each side, no Asio post, no futex),
// unless that thread's last poll is stale (it was descheduled). Each
// thread's spin backs off exponentially after spins that found nothing;
// nothing yields the CPU while it polls.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/thread_pool.hpp>

#include "../errors.hpp"

namespace corio::detail {

/// How long a pool thread stays hot after a to_thread call, and how long a
/// loop polls for a pending to_thread result before it sleeps: about one
/// cross-core wake-up from idle on a VM (20-45 us measured here), so a
/// spin that fails costs at most about what blocking would have.
inline constexpr std::chrono::microseconds pool_spin{50};
inline constexpr std::chrono::microseconds loop_spin{50};
/// A thread whose spin found nothing skips its next 1, 2, 4 ... spins (up to
/// this many); a spin that succeeds resets it.
inline constexpr unsigned max_spin_skip = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Polls `done()` for at most `budget`; true once it holds. `beat(now)` is
/// called at each clock check (every 32 pauses, about 2 us). Never yields
/// the CPU: on a loaded machine a sched_yield() costs a whole time slice of
/// another process (milliseconds), which is what blocking avoids.
template <class Pred, class Beat>
bool spin_until(std::chrono::nanoseconds budget, Pred done, Beat beat) noexcept {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (;;) {
        for (int i = 0; i < 32; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        const auto now = clock::now();
        if (now - start >= budget) return done();
        beat(now);
    }
}
template <class Pred>
bool spin_until(std::chrono::nanoseconds budget, Pred done) noexcept {
    return spin_until(budget, done, [](auto) noexcept {});
}

/// Per-thread exponential back-off of a spin site: `should_spin()` before a
/// spin, `record(found)` after it.
class spin_backoff {
public:
    bool should_spin() noexcept {
        if (skip_ == 0) return true;
        --skip_;
        return false;
    }
    void record(bool found) noexcept {
        if (found) {
            backoff_ = 0;
            return;
        }
        backoff_ = backoff_ == 0 ? 1 : std::min(backoff_ * 2, max_spin_skip);
        skip_ = backoff_;
    }

private:
    unsigned skip_ = 0;
    unsigned backoff_ = 0;
};

inline bool spinning_helps() noexcept {
    static const bool multi = std::thread::hardware_concurrency() > 1;
    return multi;
}

/// A call a hot pool thread can run: `run(job)` on the pool thread.
struct hot_job {
    void (*run)(hot_job*) noexcept = nullptr;
};

/// The hand-off slots between to_thread callers and hot pool threads.
/// A slot holds 0 (free), 1 (a hot thread polls it) or the hot_job* handed
/// over, and the time its thread last polled: a thread that stopped polling
/// recently enough was descheduled (the machine is loaded), and a call
/// handed to it would wait for it to run again, so it gets none.
class hot_workers {
public:
    /// Hands `j` to a hot pool thread; false when none is polling.
    bool try_hand(hot_job* j) noexcept {
        if (!spinning_helps()) return false;
        std::int64_t now = -1;
        for (slot& s : slots_) {
            if (s.v.load(std::memory_order_relaxed) != polling) continue;
            if (now < 0) now = ticks(std::chrono::steady_clock::now());
            if (now - s.beat.load(std::memory_order_relaxed) > fresh) continue;
            std::uintptr_t idle = polling;
            if (s.v.compare_exchange_strong(idle, reinterpret_cast<std::uintptr_t>(j), std::memory_order_acq_rel))
                return true;
        }
        return false;
    }

    /// On a pool thread that just ran a to_thread call: polls a slot for at
    /// most pool_spin, runs every call handed over meanwhile, then returns.
    void stay_hot() noexcept {
        static thread_local spin_backoff backoff;
        if (!spinning_helps() || !backoff.should_spin()) return;
        for (;;) {
            slot* s = claim();
            if (!s) return;  // enough threads are hot already
            s->beat.store(ticks(std::chrono::steady_clock::now()), std::memory_order_relaxed);
            bool found = spin_until(
                pool_spin, [s] { return s->v.load(std::memory_order_acquire) != polling; },
                [s](std::chrono::steady_clock::time_point now) {
                    s->beat.store(ticks(now), std::memory_order_relaxed);
                });
            std::uintptr_t v = polling;
            if (!found && s->v.compare_exchange_strong(v, free, std::memory_order_acq_rel)) {
                backoff.record(false);
                return;
            }
            backoff.record(true);
            v = s->v.exchange(free, std::memory_order_acquire);  // the job; the slot is free again
            hot_job* j = reinterpret_cast<hot_job*>(v);
            j->run(j);
        }
    }

private:
    static constexpr std::uintptr_t free = 0;
    static constexpr std::uintptr_t polling = 1;
    // A beat older than this: the polling thread is not running.
    static constexpr std::int64_t fresh = std::chrono::nanoseconds(std::chrono::microseconds(10)).count();
    struct alignas(64) slot {
        std::atomic<std::uintptr_t> v{free};
        std::atomic<std::int64_t> beat{0};  // steady_clock ns of its thread's last poll
    };
    static std::int64_t ticks(std::chrono::steady_clock::time_point t) noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    }

    slot* claim() noexcept {
        for (slot& s : slots_) {
            std::uintptr_t f = free;
            if (s.v.load(std::memory_order_relaxed) == free &&
                s.v.compare_exchange_strong(f, polling, std::memory_order_acq_rel))
                return &s;
        }
        return nullptr;
    }

    slot slots_[4];
};

inline hot_workers& hot_pool_threads() {
    static hot_workers w;
    return w;
}

class thread_pool_registry {
public:
    thread_pool_registry() = default;
    thread_pool_registry(const thread_pool_registry&) = delete;
    thread_pool_registry& operator=(const thread_pool_registry&) = delete;
    ~thread_pool_registry() = default;  // the pool's destructor stops and joins it

    asio::thread_pool& get(std::size_t threads) {
        if (asio::thread_pool* p = fast_.load(std::memory_order_acquire)) return *p;
        std::lock_guard<std::mutex> lock(m_);
        if (shut_down_)
            throw invalid_state_error("corio: to_thread after shutdown_thread_pool(): the thread pool is gone");
        if (!pool_) {
            if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
            pool_ = std::make_unique<asio::thread_pool>(threads);
            size_ = threads;
            fast_.store(pool_.get(), std::memory_order_release);
        }
        return *pool_;
    }

    /// Waits for every queued and running function, then joins the threads.
    void shutdown() {
        std::unique_ptr<asio::thread_pool> p;
        {
            std::lock_guard<std::mutex> lock(m_);
            shut_down_ = true;
            fast_.store(nullptr, std::memory_order_release);
            p = std::move(pool_);
        }
        if (p) p->join();
    }

    void reset() {
        std::lock_guard<std::mutex> lock(m_);
        shut_down_ = false;
    }

    std::size_t size() {
        std::lock_guard<std::mutex> lock(m_);
        return pool_ ? size_ : 0;
    }

private:
    std::mutex m_;
    std::unique_ptr<asio::thread_pool> pool_;
    std::atomic<asio::thread_pool*> fast_{nullptr};
    std::size_t size_ = 0;
    bool shut_down_ = false;
};

inline thread_pool_registry& pool_registry() {
    static thread_pool_registry r;
    return r;
}

/// A value of type R (void, a reference, or an object) or an exception.
template <class R>
class cross_value {
    using stored = std::conditional_t<std::is_void_v<R>, std::monostate,
                                      std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>>;

public:
    template <class F>
    void capture(F&& f) noexcept {
        try {
            if constexpr (std::is_void_v<R>) {
                std::forward<F>(f)();
                v_.emplace();
            } else if constexpr (std::is_reference_v<R>) {
                v_.emplace(std::addressof(std::forward<F>(f)()));
            } else {
                v_.emplace(std::forward<F>(f)());
            }
        } catch (...) {
            e_ = std::current_exception();
        }
    }
    void fail(std::exception_ptr e) noexcept { e_ = std::move(e); }

    R take() {
        if (e_) std::rethrow_exception(e_);
        if constexpr (std::is_void_v<R>) return;
        else if constexpr (std::is_reference_v<R>) return static_cast<R>(**v_);
        else return std::move(*v_);
    }

private:
    std::optional<stored> v_;
    std::exception_ptr e_;
};

}  // namespace corio::detail
