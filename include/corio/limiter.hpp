// corio/limiter.hpp: limiter, a token-bucket rate limiter on the loop's clock.
//
// - limiter(rate, burst): tokens refill at `rate` per second up to `burst`
//   (the bucket starts full). `co_await lim.acquire(n)` takes n tokens
//   (default 1), waiting until they have accrued; `try_acquire(n)` -> bool
//   never suspends. Over any window of length T at most burst + rate*T tokens
//   are granted.
// - Driven by the running loop's clock and timer heap (no Asio timer per
//   wait), so under run_options{.virtual_time = true} it is exact: with rate
//   10/s and burst 1, the second acquire returns exactly 100 ms after the
//   first. Internally one token costs 1 s / rate rounded UP to whole
//   nanoseconds, so the limiter never exceeds its rate (rates dividing 1e9
//   are exact).
// - Fair (FIFO, no barging): while anyone waits, new acquires queue behind
//   them even if enough tokens have accrued for a smaller request; only the
//   oldest waiter has a deadline armed on the loop's timer heap.
// - Suspends: acquire(), when the tokens are not there yet. An acquire that
//   can be served at once never suspends (and may complete inside a
//   cancelled scope). acquire(0) returns at once.
// - Cancellation: acquire() is a cancellation point. A cancelled waiter
//   takes no tokens (the next waiter may be served earlier); a waiter that
//   was granted its tokens and is cancelled before it resumes gives them back
//   and throws cancelled_error.
// - Bad input: rate <= 0 (or not finite), burst < 1, or acquire/try_acquire
//   of n > burst throw std::invalid_argument.
// - Single loop; constructible anywhere without a loop (the clock is read
//   only when tokens are taken). try_acquire() reads the running loop's
//   clock and throws invalid_state_error when no loop runs on this thread.
#pragma once

#include <chrono>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "detail/scheduler.hpp"
#include "detail/wait_list.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

/// A token-bucket rate limiter on the loop clock (see the header comment).
class limiter {
public:
    class acquire_awaiter;

    /// `rate` tokens per second, at most `burst` stored.
    limiter(double rate, std::size_t burst) : burst_(burst) {
        if (!(rate > 0) || !std::isfinite(rate))
            throw std::invalid_argument("corio: limiter rate must be a positive number of tokens per second, got " +
                                        std::to_string(rate));
        if (burst < 1) throw std::invalid_argument("corio: limiter burst must be >= 1, got 0");
        long double ns = std::ceil(1e9L / static_cast<long double>(rate));
        if (ns >
            static_cast<long double>(std::numeric_limits<std::int64_t>::max() / 2) / static_cast<long double>(burst))
            throw std::invalid_argument("corio: limiter rate " + std::to_string(rate) + " is too small for burst " +
                                        std::to_string(burst));
        interval_ = clock::duration(static_cast<clock::rep>(ns < 1 ? 1 : ns));
    }
    limiter(const limiter&) = delete;
    limiter& operator=(const limiter&) = delete;

    /// Takes n tokens, waiting (FIFO) until they have accrued. Cancellation point.
    [[nodiscard]] inline acquire_awaiter acquire(std::size_t n = 1);

    /// Takes n tokens if they are there and nobody waits; never suspends.
    bool try_acquire(std::size_t n = 1) {
        check(n, "try_acquire");
        clock::time_point t = current_loop().now();
        if (!waiters_.empty() || ready_at(n) > t) return false;
        charge(n, t);
        return true;
    }

    /// The tokens available now (fractional part dropped); reads the running loop's clock.
    std::size_t available() const {
        clock::time_point t = current_loop().now();
        if (full_at_ <= t) return burst_;
        auto debt = (full_at_ - t).count();
        auto missing = (debt + interval_.count() - 1) / interval_.count();
        return missing >= static_cast<decltype(missing)>(burst_) ? 0 : burst_ - static_cast<std::size_t>(missing);
    }

    /// The bucket's capacity: tokens that can be taken at once after an idle period.
    std::size_t burst() const noexcept { return burst_; }
    /// The cost of one token (1 s / rate, rounded up to whole nanoseconds).
    clock::duration interval() const noexcept { return interval_; }
    /// Tasks waiting for tokens.
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    friend class acquire_awaiter;

    void check(std::size_t n, const char* what) const {
        if (n > burst_)
            throw std::invalid_argument("corio: limiter::" + std::string(what) + "(" + std::to_string(n) +
                                        ") asks for more tokens than the burst (" + std::to_string(burst_) +
                                        "): it could never be served");
    }

    /// The earliest time n tokens are there: the bucket is full at full_at_
    /// and each token taken pushes that by interval_.
    clock::time_point ready_at(std::size_t n) const noexcept {
        if (full_at_ == clock::time_point::min()) return clock::time_point::min();
        return full_at_ - interval_ * static_cast<clock::rep>(burst_ - n);
    }
    void charge(std::size_t n, clock::time_point t) noexcept {
        clock::time_point base = full_at_ > t ? full_at_ : t;
        full_at_ = base + interval_ * static_cast<clock::rep>(n);
    }
    void refund(std::size_t n) noexcept { full_at_ -= interval_ * static_cast<clock::rep>(n); }

    /// Serves waiters whose tokens are there; arms the oldest one's deadline.
    inline void pump(detail::scheduler& sched) noexcept;

    clock::duration interval_{};
    std::size_t burst_;
    clock::time_point full_at_ = clock::time_point::min();  // min(): full, never used
    detail::wait_list waiters_;
};

/// What acquire() returns: waits (FIFO) until the tokens are available and takes them.
class [[nodiscard]] limiter::acquire_awaiter : detail::parked, detail::wake_timer {
public:
    /// An acquire of `n` tokens from `l`.
    acquire_awaiter(limiter& l, std::size_t n) noexcept : l_(&l), n_(n) {}
    /// Movable until the await starts.
    acquire_awaiter(acquire_awaiter&&) = default;  // movable until started (parked asserts it)
    acquire_awaiter& operator=(const acquire_awaiter&) = delete;
    ~acquire_awaiter() {
        // Only when the waiting frame is destroyed while suspended.
        if (queued()) ch->sched->remove_timer(this);
        if (linked()) {
            bool head = l_->waiters_.front() == this;
            unlink();  // before the pump below looks at the list
            if (head && !l_->waiters_.empty()) l_->pump(*ch->sched);
        } else if (state_ == state::granted) {
            l_->refund(n_);
            if (!l_->waiters_.empty()) l_->pump(*ch->sched);
        }
    }

    /// Awaiter protocol: ready at once for 0 tokens.
    bool await_ready() const noexcept { return n_ == 0; }

    /// Awaiter protocol: takes the tokens now if possible, else parks until they accrue.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        ch = detail::chain_of(caller);
        detail::scheduler& sched = *ch->sched;
        clock::time_point t = sched.now();
        if (l_->waiters_.empty() && l_->ready_at(n_) <= t) {
            l_->charge(n_, t);  // served at once: no suspension
            return false;
        }
        wake_timer::notify = &on_fire;
        if (!park_on(caller, l_->waiters_, &on_cancel)) {
            state_ = state::cancelled;
            return false;
        }
        if (l_->waiters_.front() == this) l_->pump(sched);
        return true;
    }

    /// Awaiter protocol: returns once the tokens were taken; cancelled_error when cancelled.
    void await_resume() {
        if (state_ == state::granted) {
            state_ = state::done;
            if (ch->cancel_requested()) {
                // Granted, cancelled before resuming: give the tokens back.
                l_->refund(n_);
                if (!l_->waiters_.empty()) l_->pump(*ch->sched);
                throw cancelled_error{};
            }
        }
        if (state_ == state::cancelled) throw cancelled_error{};
    }

private:
    friend class limiter;
    enum class state : std::uint8_t { waiting, granted, done, cancelled };

    static void on_fire(detail::wakeable* t) noexcept {
        auto* self = static_cast<acquire_awaiter*>(static_cast<detail::wake_timer*>(t));
        self->l_->pump(*self->ch->sched);
    }
    static void on_cancel(detail::waiter_base* w) noexcept {
        auto* self = static_cast<acquire_awaiter*>(static_cast<detail::parked*>(w));
        detail::scheduler& sched = *self->ch->sched;
        if (self->queued()) sched.remove_timer(self);
        bool head = self->l_->waiters_.front() == self;
        self->l_->waiters_.erase(self);
        self->state_ = state::cancelled;
        sched.schedule(self->h);
        if (head && !self->l_->waiters_.empty()) self->l_->pump(sched);
    }

    limiter* l_;
    std::size_t n_;
    state state_ = state::waiting;
};

inline limiter::acquire_awaiter limiter::acquire(std::size_t n) {
    check(n, "acquire");
    return acquire_awaiter(*this, n);
}

inline void limiter::pump(detail::scheduler& sched) noexcept {
    clock::time_point t = sched.now();
    while (detail::wait_node* n = waiters_.front()) {
        auto* w = static_cast<acquire_awaiter*>(static_cast<detail::parked*>(n));
        clock::time_point due = ready_at(w->n_);
        if (due <= t) {
            if (w->queued()) sched.remove_timer(w);
            waiters_.erase(w);
            charge(w->n_, t);
            w->state_ = acquire_awaiter::state::granted;
            w->wake();
            continue;
        }
        if (!w->queued() || w->deadline != due) {
            if (w->queued()) sched.remove_timer(w);
            w->deadline = due;
            sched.add_timer(w);
        }
        return;
    }
}

}  // namespace corio
