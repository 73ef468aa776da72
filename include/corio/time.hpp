// corio/time.hpp: the loop's clock, sleep(), sleep_until() and yield_now().
//
// - now() is the running loop's time: steady_clock::now(), or the virtual
//   clock under run_options::virtual_time.
// - sleep(d) / sleep_until(tp) suspend the calling task on the loop's timer
//   heap (no Asio timer per sleep). Both are cancellation points: in a
//   cancelled scope they throw cancelled_error instead of suspending, and a
//   sleeping task whose scope is cancelled is woken at once with it. A
//   duration <= 0 (or a past time point) is a yield: the task goes to the back
//   of the ready queue. `now() + d` saturates: sleep(duration::max()) sleeps
//   until cancelled. A cancelled sleep leaves nothing in the timer heap.
// - yield_now() lets every other ready task run once; it always checks for
//   cancellation, before suspending and again when resumed.
#pragma once

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstdint>

#include "detail/clock.hpp"
#include "detail/park.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

/// The running loop's time (invalid_state_error when no loop runs here).
inline clock::time_point now() { return current_loop().now(); }

namespace detail {

class sleep_awaiter : wake_timer {
    // 32 bytes: it sits in every sleeping frame. Until suspension,
    // timer_node::deadline holds the requested time point (or the duration,
    // as time since epoch, when `relative`); flags live in
    // timer_node::owner_bits; the one notify function serves both as the
    // timer's and as the chain's waiter (see on_notify).
    static constexpr std::uint8_t relative = 1, cancelled = 2, yielded = 4;

public:
    sleep_awaiter(clock::time_point until, clock::duration d, bool is_relative) noexcept {
        deadline = is_relative ? clock::time_point(d) : until;
        owner_bits = is_relative ? relative : 0;
    }
    /// Movable until started (into a combinator or a task); pinned once
    /// awaited: the timer heap and the chain point at it.
    sleep_awaiter(sleep_awaiter&& o) noexcept : wake_timer(o) {
        assert(!o.h_ && "corio: a sleep was moved after it started (awaiters are pinned once awaited)");
    }
    sleep_awaiter& operator=(sleep_awaiter&&) = delete;

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        chain* ch;
        if (!begin_park(caller, ch)) {
            owner_bits |= cancelled;
            return false;
        }
        scheduler& sched = *ch->sched;
        clock::time_point now = sched.now();
        clock::time_point due = (owner_bits & relative) ? saturating_add(now, deadline.time_since_epoch()) : deadline;
        if (due <= now) {
            h_ = caller;
            owner_bits |= yielded;  // a zero sleep is a yield
            sched.schedule(caller);
            return true;
        }
        deadline = due;
        if (due != clock::time_point::max()) sched.add_timer(this);
        finish_park(ch, this, &on_notify, h_, caller);
        return true;
    }

    void await_resume() const {
        if ((owner_bits & cancelled) || ((owner_bits & yielded) && chain_of_frame()->cancel_requested()))
            throw cancelled_error{};
    }

private:
    /// The deadline came (the heap popped the node: no longer queued), or
    /// the chain's scope was cancelled (still queued, or never armed).
    static void on_notify(wakeable* w) noexcept {
        auto* self = static_cast<sleep_awaiter*>(static_cast<wake_timer*>(w));
        chain* ch = self->chain_of_frame();
        if (!self->deadline_came()) {
            ch->sched->remove_timer(self);
            self->owner_bits |= cancelled;
        } else {
            ch->unpark();
        }
        ch->sched->schedule(self->h_);
    }

    /// The sleeping frame's chain, read from its promise instead of being
    /// stored here: this awaiter sits in every sleeping frame, and corio task
    /// promises are at the offset a promise_base would have.
    chain* chain_of_frame() const noexcept { return promise_of(h_).ch; }

    std::coroutine_handle<> h_{};
};

static_assert(sizeof(void*) != 8 || sizeof(sleep_awaiter) == 32, "corio: sleep_awaiter sits in every sleeping frame");

struct yield_awaiter {
    chain* ch = nullptr;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        ch = chain_of(caller);
        if (ch->cancel_requested()) return false;
        ch->sched->schedule(caller);
        return true;
    }
    void await_resume() const {
        if (ch->cancel_requested()) throw cancelled_error{};
    }
};

}  // namespace detail

/// Suspends the calling task for `d` of loop time. Cancellation point.
template <class Rep, class Period>
detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return detail::sleep_awaiter({}, detail::to_clock_duration(d), true);
}

/// Suspends the calling task until the loop's clock reaches `tp`. Cancellation point.
inline detail::sleep_awaiter sleep_until(clock::time_point tp) noexcept { return detail::sleep_awaiter(tp, {}, false); }

/// Lets every other ready task run once. Always a cancellation point.
inline detail::yield_awaiter yield_now() noexcept { return {}; }

}  // namespace corio
