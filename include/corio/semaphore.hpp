// corio/semaphore.hpp: semaphore, bounded_semaphore and semaphore::permit.
//
// - semaphore(n) holds n permits. `auto p = co_await sem.acquire();` takes
//   one and returns a move-only RAII `semaphore::permit` that gives it back
//   when destroyed (or at `p.release()`). `try_acquire()` never suspends and
//   returns `std::optional<permit>`. `release()` adds a permit by hand (for
//   manual protocols that do not use the RAII permit).
// - Suspends: acquire(), only when no permit is free. An uncontended acquire
//   completes without suspending and allocates nothing; it may then complete
//   even inside a cancelled scope (only suspending operations must throw).
// - Fair (strict FIFO, no barging): a release while tasks wait hands the permit
//   straight to the oldest waiter, so available() stays 0 and nobody that
//   arrives later can take it first. locked() is true when available() is 0.
// - Cancellation: acquire() is a cancellation point. In a cancelled scope it
//   throws cancelled_error instead of suspending; a waiter whose scope is
//   cancelled is woken at once with cancelled_error and takes nothing. A
//   waiter that was handed a permit but is cancelled before it resumes gives
//   that permit to the next waiter (or back to the count) and throws
//   cancelled_error: permits are conserved.
// - bounded_semaphore(n) throws std::logic_error from release() when the count
//   would rise above n. A negative initial value throws std::invalid_argument.
//   (A permit's own release is never checked: it gives back what it took.)
// - Single loop: a semaphore is used from the thread of one event loop. It can
//   be constructed anywhere, without a running loop.
// - Waiter nodes live in the awaiter, i.e. in the waiting coroutine's frame:
//   waiting allocates nothing.
//
// This header also holds detail::wait_list, the intrusive FIFO list every corio
// primitive (sync.hpp, queue.hpp, limiter.hpp) keeps its waiters in.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail/scheduler.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

/// An async counting semaphore, FIFO fair (asyncio.Semaphore; see the header comment).
class semaphore {
public:
    class permit;
    class acquire_awaiter;

    /// A semaphore holding `initial` permits (std::invalid_argument when negative).
    explicit semaphore(std::ptrdiff_t initial) : semaphore(initial, std::numeric_limits<std::ptrdiff_t>::max()) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    /// Takes a permit, waiting in FIFO order when none is free. Cancellation point.
    [[nodiscard]] acquire_awaiter acquire() noexcept;

    /// Takes a permit only if one is free and nobody waits; never suspends.
    [[nodiscard]] std::optional<permit> try_acquire() noexcept;

    /// Gives a permit back by hand: to the oldest waiter if any, else to the
    /// count. std::logic_error when the count would exceed the semaphore's bound.
    void release() {
        if (waiters_.empty() && count_ >= max_) throw_over_release();
        release_one();
    }

    /// Free permits (0 while anyone waits).
    std::ptrdiff_t available() const noexcept { return count_; }
    /// No permit can be taken without waiting.
    bool locked() const noexcept { return count_ == 0 || !waiters_.empty(); }
    /// Tasks waiting in acquire().
    std::size_t waiters() const noexcept { return waiters_.size(); }

protected:
    /// corio internals: a semaphore whose count may not exceed `max` (bounded_semaphore).
    semaphore(std::ptrdiff_t initial, std::ptrdiff_t max) : count_(initial), max_(max) {
        if (initial < 0)
            throw std::invalid_argument("corio: semaphore initial value must be >= 0, got " + std::to_string(initial));
    }

private:
    friend class permit;
    friend class acquire_awaiter;

    [[noreturn]] void throw_over_release() const {
        if (max_ == std::numeric_limits<std::ptrdiff_t>::max())
            throw std::logic_error("corio: semaphore::release() would overflow the permit count");
        throw std::logic_error(
            "corio: bounded_semaphore released too many times (count would exceed its initial value " +
            std::to_string(max_) + ")");
    }

    /// Unchecked release: hand to the oldest waiter, or count it.
    inline void release_one() noexcept;

    std::ptrdiff_t count_;
    std::ptrdiff_t max_;
    detail::wait_list waiters_;
};

/// A semaphore whose release() throws std::logic_error above its initial value.
class bounded_semaphore : public semaphore {
public:
    /// A semaphore of `initial` permits that may never hold more.
    explicit bounded_semaphore(std::ptrdiff_t initial) : semaphore(initial, initial) {}
};

/// One permit of a semaphore; gives it back when destroyed. Move-only.
class [[nodiscard]] semaphore::permit {
public:
    permit() noexcept = default;
    /// Takes over `o`'s permit; `o` becomes empty.
    permit(permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Releases this permit, then takes over `o`'s.
    permit& operator=(permit&& o) noexcept {
        if (this != &o) {
            release();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    permit(const permit&) = delete;
    permit& operator=(const permit&) = delete;
    ~permit() { release(); }

    /// Gives the permit back now (no-op when empty or already released).
    void release() noexcept {
        if (semaphore* s = std::exchange(s_, nullptr)) s->release_one();
    }
    /// Keeps the permit taken but stops managing it (manual protocol: call
    /// semaphore::release() later).
    semaphore* detach() noexcept { return std::exchange(s_, nullptr); }

    /// True while it holds a permit (not released or moved from).
    bool owns_permit() const noexcept { return s_ != nullptr; }
    /// owns_permit().
    explicit operator bool() const noexcept { return s_ != nullptr; }
    /// The semaphore of the permit, or null when empty.
    semaphore* get_semaphore() const noexcept { return s_; }

private:
    friend class semaphore;
    friend class semaphore::acquire_awaiter;
    explicit permit(semaphore& s) noexcept : s_(&s) {}
    semaphore* s_ = nullptr;
};

/// What acquire() returns: waits (FIFO) for a permit and yields it.
class [[nodiscard]] semaphore::acquire_awaiter : public detail::parked {
public:
    /// An acquire on `s`.
    explicit acquire_awaiter(semaphore& s) noexcept : s_(&s) {}
    /// Movable until the await starts.
    acquire_awaiter(acquire_awaiter&&) = default;  // movable until started (parked asserts it)
    acquire_awaiter& operator=(const acquire_awaiter&) = delete;
    ~acquire_awaiter() {
        // Only when the waiting frame is destroyed while suspended (a waiter
        // still in the list unlinks itself: its hook).
        if (!linked() && state_ == state::granted) s_->release_one();
    }

    /// Awaiter protocol: takes a free permit at once when there is one.
    bool await_ready() noexcept {
        if (s_->count_ > 0) {  // no waiter can exist while permits are free
            --s_->count_;
            state_ = state::taken;
            return true;
        }
        return false;
    }

    /// Awaiter protocol: parks the caller in FIFO order.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (park_on(caller, s_->waiters_, &on_cancel)) return true;
        state_ = state::cancelled;
        return false;
    }

    /// Awaiter protocol: the permit; cancelled_error when cancelled.
    permit await_resume() {
        if (state_ == state::granted) {
            ch->unpark();  // still parked since the hand-off (see release_one)
            state_ = state::taken;
        } else if (state_ == state::cancelled) {
            if (handed_) ch->unpark();
            throw cancelled_error{};
        }
        return permit(*s_);
    }

private:
    friend class semaphore;
    enum class state : std::uint8_t { waiting, granted, taken, cancelled };

    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<acquire_awaiter*>(w);
        self->s_->waiters_.erase(self);
        self->state_ = state::cancelled;
        self->ch->sched->schedule(self->h);
    }
    /// Cancelled after the hand-off, before resuming (already scheduled):
    /// the permit goes to the next waiter, this one throws.
    static void on_cancel_handed(detail::waiter_base* w) noexcept {
        auto* self = static_cast<acquire_awaiter*>(w);
        self->state_ = state::cancelled;
        self->s_->release_one();
    }

    semaphore* s_;
    state state_ = state::waiting;
    bool handed_ = false;
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept { return acquire_awaiter(*this); }

inline std::optional<semaphore::permit> semaphore::try_acquire() noexcept {
    if (count_ == 0) return std::nullopt;
    --count_;
    return std::optional<permit>(permit(*this));
}

inline void semaphore::release_one() noexcept {
    if (detail::wait_node* n = waiters_.pop_front()) {
        // The waiter stays parked until it resumes, with a cancel handler
        // that passes the permit on: a cancellation in that window reaches
        // it without a scope walk in await_resume.
        auto* w = static_cast<acquire_awaiter*>(static_cast<detail::parked*>(n));
        w->state_ = acquire_awaiter::state::granted;
        w->handed_ = true;
        w->notify = &acquire_awaiter::on_cancel_handed;
        w->ch->sched->schedule(w->h);
    } else {
        ++count_;
    }
}

}  // namespace corio
