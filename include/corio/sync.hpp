// corio/sync.hpp: mutex (+ guard), event, condition_variable, barrier.
//
// All four are FIFO-fair, single-loop (used from the thread of one event
// loop), constructible anywhere without a running loop, and keep their waiter
// nodes in the awaiters (the waiting coroutines' frames): waiting allocates
// nothing.
//
// mutex
// - `auto g = co_await m.lock();` returns a move-only `mutex::guard` that
//   unlocks exactly once: at g.unlock() or when destroyed (normal exit,
//   exception, cancellation); a moved-from guard does nothing.
//   `auto g = co_await m.try_lock();` returns `std::optional<guard>` and never
//   suspends (it is awaited only to learn which task calls it).
// - Suspends: lock(), only when the mutex is held. An uncontended lock never
//   suspends (and may complete inside a cancelled scope).
// - Ownership is per task (per chain): lock() or try_lock() by the task that
//   already holds the mutex throws invalid_state_error (corio mutexes are not
//   recursive, and a deadlock is reported instead of hanging). Unlocking
//   happens only through the guard. g.unlock() from a task other than the one
//   that locked (the guard was moved there) throws invalid_state_error and
//   leaves the mutex locked; a guard destructor cannot throw, so the same
//   misuse at destruction is an assertion failure (debug builds).
//   condition_variable::wait() checks that the calling task owns the mutex.
// - No barging: unlock while tasks wait hands the mutex to the oldest waiter.
// - Cancellation: lock() is a cancellation point. A cancelled waiter takes
//   nothing; a waiter handed the mutex and cancelled before it resumed hands
//   it on and throws cancelled_error (the mutex is never left unlocked while
//   someone waits).
//
// event
// - set() wakes every waiter and keeps the event set; clear() resets it;
//   is_set(). `co_await ev.wait()` returns at once when set (no suspension),
//   else suspends until set(). Waiters woken by a set() return even if the
//   event is cleared (or their scope cancelled) before they run.
// - wait() is a cancellation point; a cancelled waiter leaves no entry.
//
// condition_variable
// - `co_await cv.wait(g)` atomically unlocks g's mutex and waits for a
//   notification, then re-locks it; `co_await cv.wait(g, pred)` loops until
//   pred() is true (checked before the first wait and after every wake-up;
//   pred is taken by value into the operation's frame). notify_one() wakes
//   the oldest waiter, notify_all() every waiter; notifying needs no lock
//   (like std::condition_variable_any).
// - g must hold its mutex, locked by the calling task; otherwise
//   invalid_state_error.
// - Cancellation: wait() is a cancellation point, and it ALWAYS returns or
//   throws with the mutex re-acquired: a cancelled waiter re-locks the mutex
//   (shielded: that re-lock cannot be cancelled) and only then throws
//   cancelled_error, so the guard owns the mutex in every handler. A waiter
//   that was notified and then cancelled before it resumed passes its
//   notification to the next waiter (no lost wake-up) and throws.
//
// barrier
// - barrier(n) (n >= 1, else std::invalid_argument). `co_await
//   b.arrive_and_wait()` suspends until n tasks have arrived, then releases
//   them all and returns each one a distinct arrival index in 0..n-1 (the
//   last arrival gets n-1 and does not suspend). The barrier then resets for
//   the next round.
// - abort() breaks the barrier: every waiter and every later arrival throws
//   broken_barrier. reset() wakes the current waiters with broken_barrier and
//   makes the barrier usable again (asyncio.Barrier.reset).
// - Cancellation: arrive_and_wait() is a cancellation point; a cancelled
//   waiter withdraws its arrival (the round needs another task in its place).
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail/running_loop.hpp"
#include "detail/scheduler.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

class condition_variable;

// ------------------------------------------------------------------ mutex ---

/// An async mutex, FIFO fair (asyncio.Lock; see the header comment).
class mutex {
public:
    class guard;
    class lock_awaiter;
    class try_lock_awaiter;

    mutex() noexcept = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    /// Locks the mutex, waiting in FIFO order while it is held. Cancellation point.
    [[nodiscard]] lock_awaiter lock() noexcept;
    /// Locks the mutex only if it is free; never suspends.
    [[nodiscard]] try_lock_awaiter try_lock() noexcept;

    /// True while a task holds the mutex.
    bool locked() const noexcept { return owner_ != nullptr; }
    /// Tasks waiting to lock (including condition_variable waiters re-locking).
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    friend class condition_variable;
    friend class guard;
    friend class lock_awaiter;
    friend class try_lock_awaiter;

    /// A task waiting to own the mutex (lock() or a condition_variable re-lock).
    struct lock_waiter : detail::parked {
        bool granted = false;
    };

    /// Hands the mutex to the oldest waiter, or frees it.
    void unlock_internal() noexcept {
        if (detail::wait_node* n = waiters_.pop_front()) {
            auto* w = static_cast<lock_waiter*>(static_cast<detail::parked*>(n));
            owner_ = w->ch;
            w->granted = true;
            w->wake();
        } else {
            owner_ = nullptr;
        }
    }

    /// Internal, uncancellable lock on behalf of `w` (condition_variable
    /// re-lock): owns the mutex at once if free (and schedules w), else queues
    /// w without parking its chain, so cancellation cannot reach it.
    void relock_internal(lock_waiter* w) noexcept {
        if (!owner_) {
            owner_ = w->ch;
            w->granted = true;
            w->ch->sched->schedule(w->h);
        } else {
            waiters_.push_back(w);
        }
    }

    detail::chain* owner_ = nullptr;
    detail::wait_list waiters_;
};

/// Owns a locked mutex; unlocks it exactly once. Move-only.
class [[nodiscard]] mutex::guard {
public:
    guard() noexcept = default;
    /// Takes over `o`'s lock; `o` becomes empty.
    guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), owner_(std::exchange(o.owner_, nullptr)) {}
    /// Unlocks what this guard holds, then takes over `o`'s lock.
    guard& operator=(guard&& o) noexcept {
        if (this != &o) {
            release();
            m_ = std::exchange(o.m_, nullptr);
            owner_ = std::exchange(o.owner_, nullptr);
        }
        return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { release(); }

    /// Unlocks now (no-op when it does not own the mutex any more). Throws
    /// invalid_state_error, and keeps the mutex locked, when called from a
    /// task other than the one that locked it (the guard was moved there).
    void unlock() {
        if (!m_) return;
        if (detail::chain* running = detail::running_chain(); running && running != owner_)
            throw invalid_state_error(
                "corio: mutex::guard::unlock() called from a task that does not own the mutex "
                "(was the guard moved to another task?)");
        release();
    }

    /// True while it holds the lock.
    bool owns_lock() const noexcept { return m_ != nullptr; }
    /// owns_lock().
    explicit operator bool() const noexcept { return m_ != nullptr; }
    /// The mutex held, or null.
    mutex* get_mutex() const noexcept { return m_; }

private:
    friend class mutex;
    friend class condition_variable;
    guard(mutex& m, detail::chain* owner) noexcept : m_(&m), owner_(owner) {}

    /// The destructor's unlock: it cannot throw, so a release from a foreign
    /// task (or of a mutex not held the way it was locked) is an assertion.
    void release() noexcept {
        if (mutex* m = std::exchange(m_, nullptr)) {
            [[maybe_unused]] detail::chain* running = detail::running_chain();
            assert((!running || running == owner_) && "corio: mutex::guard released by a task that does not own it");
            assert(m->owner_ == owner_ && "corio: mutex::guard released while its task does not own the mutex");
            m->unlock_internal();
        }
    }

    mutex* m_ = nullptr;
    detail::chain* owner_ = nullptr;
};

/// What lock() returns: waits (FIFO) for the mutex and yields its guard.
class [[nodiscard]] mutex::lock_awaiter : mutex::lock_waiter {
public:
    /// A lock of `m`.
    explicit lock_awaiter(mutex& m) noexcept : m_(&m) {}
    /// Movable until the await starts.
    lock_awaiter(lock_awaiter&&) = default;  // movable until started (parked asserts it)
    lock_awaiter& operator=(const lock_awaiter&) = delete;
    ~lock_awaiter() {
        // A waiter still in the list unlinks itself (its hook).
        if (!linked() && granted && state_ == state::waiting) m_->unlock_internal();
    }

    /// Awaiter protocol: always goes to await_suspend.
    bool await_ready() const noexcept { return false; }

    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        ch = detail::chain_of(caller);
        if (!m_->owner_) {
            m_->owner_ = ch;  // uncontended: never suspends
            state_ = state::taken;
            return false;
        }
        if (m_->owner_ == ch) {
            state_ = state::relock;
            return false;
        }
        if (park_on(caller, m_->waiters_, &on_cancel)) return true;
        state_ = state::cancelled;
        return false;
    }

    /// Awaiter protocol: the guard of the locked mutex; cancelled_error when cancelled.
    guard await_resume() {
        if (granted && state_ == state::waiting) {
            if (ch->cancel_requested()) {
                // Handed the mutex, cancelled before resuming: pass it on.
                state_ = state::cancelled;
                m_->unlock_internal();
                throw cancelled_error{};
            }
            state_ = state::taken;
        }
        if (state_ == state::relock)
            throw invalid_state_error(
                "corio: mutex::lock() by the task that already holds it (corio mutexes are not recursive)");
        if (state_ == state::cancelled) throw cancelled_error{};
        return guard(*m_, ch);
    }

private:
    enum class state : std::uint8_t { waiting, taken, cancelled, relock };

    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<lock_awaiter*>(static_cast<detail::parked*>(w));
        self->m_->waiters_.erase(self);
        self->state_ = state::cancelled;
        self->ch->sched->schedule(self->h);
    }

    mutex* m_;
    state state_ = state::waiting;
};

/// What try_lock() returns: locks only if the mutex is free.
class [[nodiscard]] mutex::try_lock_awaiter {
public:
    /// A try-lock of `m`.
    explicit try_lock_awaiter(mutex& m) noexcept : m_(&m) {}
    /// Awaiter protocol: always goes to await_suspend.
    bool await_ready() const noexcept { return false; }
    /// Awaiter protocol: takes the mutex when it is free; never parks.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) noexcept {
        ch_ = detail::chain_of(caller);
        if (!m_->owner_) {
            m_->owner_ = ch_;
            got_ = true;
        }
        return false;
    }
    /// Awaiter protocol: the guard, or an empty optional when the mutex was held.
    std::optional<guard> await_resume() {
        if (got_) return std::optional<guard>(guard(*m_, ch_));
        if (m_->owner_ == ch_)
            throw invalid_state_error(
                "corio: mutex::try_lock() by the task that already holds it (corio mutexes are not recursive)");
        return std::nullopt;
    }

private:
    mutex* m_;
    detail::chain* ch_ = nullptr;
    bool got_ = false;
};

inline mutex::lock_awaiter mutex::lock() noexcept { return lock_awaiter(*this); }
inline mutex::try_lock_awaiter mutex::try_lock() noexcept { return try_lock_awaiter(*this); }

// ------------------------------------------------------------------ event ---

/// An async event (asyncio.Event): set wakes every waiter, clear resets it.
class event {
public:
    class wait_awaiter;

    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    /// Sets the event and wakes every waiter.
    inline void set() noexcept;
    /// Resets the event; waiters already woken still return.
    void clear() noexcept { set_ = false; }
    /// True while set.
    bool is_set() const noexcept { return set_; }
    /// Tasks waiting.
    std::size_t waiters() const noexcept { return waiters_.size(); }

    /// Waits until the event is set (returns at once if it is). Cancellation point.
    [[nodiscard]] inline wait_awaiter wait() noexcept;

private:
    bool set_ = false;
    detail::wait_list waiters_;
};

/// What wait() returns.
class [[nodiscard]] event::wait_awaiter : detail::parked {
public:
    /// A wait on `e`.
    explicit wait_awaiter(event& e) noexcept : e_(&e) {}
    /// Movable until the await starts.
    wait_awaiter(wait_awaiter&&) = default;  // movable until started (parked asserts it)
    wait_awaiter& operator=(const wait_awaiter&) = delete;

    /// Awaiter protocol: ready when the event is set.
    bool await_ready() const noexcept { return e_->set_; }
    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (park_on(caller, e_->waiters_, &on_cancel)) return true;
        cancelled_ = true;
        return false;
    }
    /// Awaiter protocol: returns once the operation is done; its error (queue_closed, cancelled_error, ...) is thrown
    /// here.
    void await_resume() const {
        if (cancelled_) throw cancelled_error{};
    }

private:
    friend class event;
    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<wait_awaiter*>(static_cast<detail::parked*>(w));
        self->e_->waiters_.erase(self);
        self->cancelled_ = true;
        self->ch->sched->schedule(self->h);
    }
    static void wake_node(detail::wait_node* n) noexcept {
        static_cast<wait_awaiter*>(static_cast<detail::parked*>(n))->wake();
    }

    event* e_;
    bool cancelled_ = false;
};

inline void event::set() noexcept {
    set_ = true;
    while (detail::wait_node* n = waiters_.pop_front()) wait_awaiter::wake_node(n);
}
inline event::wait_awaiter event::wait() noexcept { return wait_awaiter(*this); }

// ----------------------------------------------------- condition_variable ---

/// An async condition variable over corio::mutex (asyncio.Condition).
class condition_variable {
public:
    class wait_awaiter;

    condition_variable() noexcept = default;
    condition_variable(const condition_variable&) = delete;
    condition_variable& operator=(const condition_variable&) = delete;

    /// Unlocks g's mutex, waits for a notification, re-locks (always, even when
    /// cancelled). Cancellation point.
    [[nodiscard]] inline wait_awaiter wait(mutex::guard& g) noexcept;

    /// Waits until pred() is true (checked first and after every wake-up).
    /// Cancellation point; returns or throws with the mutex held.
    template <class Pred>
    task<void> wait(mutex::guard& g, Pred pred);

    /// Wakes the oldest waiter (it re-locks the mutex before returning).
    inline void notify_one() noexcept;
    /// Wakes every waiter.
    void notify_all() noexcept {
        while (!waiters_.empty()) notify_one();
    }
    /// Tasks waiting.
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    static void check_owner(const mutex::guard& g, detail::chain* c) {
        if (!g.m_ || g.m_->owner_ != c)
            throw invalid_state_error(
                "corio: condition_variable::wait() needs a guard that holds its mutex, locked by the calling task");
    }

    detail::wait_list waiters_;
};

/// What wait(g) returns: unlocks, waits for a notify, re-locks.
class [[nodiscard]] condition_variable::wait_awaiter : mutex::lock_waiter {
public:
    /// A wait on `cv` with the held guard `g`.
    wait_awaiter(condition_variable& cv, mutex::guard& g) noexcept : cv_(&cv), g_(&g) {}
    /// Movable until the await starts.
    wait_awaiter(wait_awaiter&&) = default;  // movable until started (parked asserts it)
    wait_awaiter& operator=(const wait_awaiter&) = delete;
    ~wait_awaiter() {
        // Only when the waiting frame is destroyed while suspended: if the
        // mutex is not ours at this point, the guard must not unlock it.
        if (!linked()) return;
        unlink();  // from the condition's list or the mutex's
        g_->m_ = nullptr;
    }

    /// Awaiter protocol: always goes to await_suspend.
    bool await_ready() const noexcept { return false; }

    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        ch = detail::chain_of(caller);
        if (!g_->m_ || g_->m_->owner_ != ch) {
            error_ = true;
            return false;
        }
        m_ = g_->m_;
        if (!park_on(caller, cv_->waiters_, &on_cancel)) {
            cancelled_ = true;  // never released the mutex
            return false;
        }
        m_->unlock_internal();
        return true;
    }

    /// Awaiter protocol: returns once the operation is done; cancelled_error when cancelled.
    void await_resume() {
        if (error_) condition_variable::check_owner(*g_, ch);
        if (cancelled_) throw cancelled_error{};
        if (ch->cancel_requested()) {
            // Notified, then cancelled before resuming: the wake-up goes to
            // the next waiter; we hold the mutex again and throw.
            cv_->notify_one();
            throw cancelled_error{};
        }
    }

private:
    friend class condition_variable;
    /// Leaves the cv's list and re-acquires the mutex, shielded from cancellation.
    void relock() noexcept { m_->relock_internal(this); }

    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<wait_awaiter*>(static_cast<detail::parked*>(w));
        self->cv_->waiters_.erase(self);
        self->cancelled_ = true;
        self->relock();
    }

    condition_variable* cv_;
    mutex::guard* g_;
    mutex* m_ = nullptr;
    bool cancelled_ = false;
    bool error_ = false;
};

inline condition_variable::wait_awaiter condition_variable::wait(mutex::guard& g) noexcept {
    return wait_awaiter(*this, g);
}

template <class Pred>
task<void> condition_variable::wait(mutex::guard& g, Pred pred) {
    detail::chain* c = co_await detail::this_chain{};
    check_owner(g, c);
    while (!pred()) co_await wait(g);
}

inline void condition_variable::notify_one() noexcept {
    if (detail::wait_node* n = waiters_.pop_front()) {
        auto* w = static_cast<wait_awaiter*>(static_cast<detail::parked*>(n));
        w->ch->unpark();
        w->relock();
    }
}

// ---------------------------------------------------------------- barrier ---

/// An async barrier for a fixed number of parties, reusable round after round.
class barrier {
public:
    class arrive_awaiter;

    /// A barrier for `parties` tasks (std::invalid_argument when < 1).
    explicit barrier(std::ptrdiff_t parties) : parties_(parties) {
        if (parties < 1)
            throw std::invalid_argument("corio: barrier needs at least 1 party, got " + std::to_string(parties));
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;

    /// Arrives and waits for the rest of the round; returns this task's
    /// arrival index (0..parties-1). Cancellation point.
    [[nodiscard]] inline arrive_awaiter arrive_and_wait() noexcept;

    /// Breaks the barrier: waiters and later arrivals throw broken_barrier.
    void abort() noexcept {
        broken_ = true;
        release_all(true);
    }
    /// Wakes current waiters with broken_barrier and makes the barrier usable again.
    void reset() noexcept {
        release_all(true);
        broken_ = false;
    }

    /// The number of parties of a round.
    std::ptrdiff_t parties() const noexcept { return parties_; }
    /// Tasks currently waiting for the round to fill.
    std::size_t n_waiting() const noexcept { return waiters_.size(); }
    /// True after abort() (until reset()).
    bool broken() const noexcept { return broken_; }

private:
    inline void release_all(bool broken) noexcept;

    std::ptrdiff_t parties_;
    bool broken_ = false;
    detail::wait_list waiters_;
};

/// What arrive_and_wait() returns.
class [[nodiscard]] barrier::arrive_awaiter : detail::parked {
public:
    /// An arrival at `b`.
    explicit arrive_awaiter(barrier& b) noexcept : b_(&b) {}
    /// Movable until the await starts.
    arrive_awaiter(arrive_awaiter&&) = default;  // movable until started (parked asserts it)
    arrive_awaiter& operator=(const arrive_awaiter&) = delete;

    /// Awaiter protocol: the last arrival of a round completes it without suspending.
    bool await_ready() noexcept {
        if (b_->broken_) {
            state_ = state::broken;
            return true;
        }
        if (static_cast<std::ptrdiff_t>(b_->waiters_.size()) + 1 >= b_->parties_) {
            index_ = b_->parties_ - 1;  // the last arrival trips the barrier
            state_ = state::released;
            b_->release_all(false);
            return true;
        }
        return false;
    }

    /// Awaiter protocol: parks the caller (FIFO) until it is woken or its scope is cancelled.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (park_on(caller, b_->waiters_, &on_cancel)) return true;
        state_ = state::cancelled;
        return false;
    }

    /// Awaiter protocol: the arrival index; broken_barrier or cancelled_error otherwise.
    std::ptrdiff_t await_resume() const {
        if (state_ == state::cancelled) throw cancelled_error{};
        if (state_ == state::broken) throw broken_barrier{};
        return index_;
    }

private:
    friend class barrier;
    enum class state : std::uint8_t { waiting, released, broken, cancelled };

    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<arrive_awaiter*>(static_cast<detail::parked*>(w));
        self->b_->waiters_.erase(self);  // withdraws the arrival
        self->state_ = state::cancelled;
        self->ch->sched->schedule(self->h);
    }

    barrier* b_;
    std::ptrdiff_t index_ = 0;
    state state_ = state::waiting;
};

inline barrier::arrive_awaiter barrier::arrive_and_wait() noexcept { return arrive_awaiter(*this); }

inline void barrier::release_all(bool broken) noexcept {
    std::ptrdiff_t i = 0;
    while (detail::wait_node* n = waiters_.pop_front()) {
        auto* w = static_cast<arrive_awaiter*>(static_cast<detail::parked*>(n));
        w->index_ = i++;
        w->state_ = broken ? arrive_awaiter::state::broken : arrive_awaiter::state::released;
        w->wake();
    }
}

}  // namespace corio
