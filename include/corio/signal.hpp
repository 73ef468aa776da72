// corio/signal.hpp: wait_for_signal() and run()'s cancel-on-signal.
//
// - wait_for_signal(SIGINT, SIGTERM) (variadic; also an initializer_list
//   overload, which g++ 12 rejects inside co_await: prefer the variadic
//   spelling) suspends until one of the signals arrives and returns its
//   number. Cancellation point: cancelled, it stops waiting at once and
//   throws cancelled_error. A signal goes to every task waiting for it; while
//   a task waits for a signal, run()'s cancel-on-signal does not see it.
//   While waiting, the loop is kept alive (no deadlock report).
// - run_options::cancel_on_signals ({SIGINT, SIGTERM} by default) applies to
//   run() and event_loop::run_until_complete(): the first such signal that
//   no waiter takes cancels main's root scope, so every scope unwinds and
//   cleanup (destructors, shielded awaits) runs; run() then throws
//   cancelled_error (a command-line program exits with 128 + signal, e.g.
//   130 for SIGINT, see examples/graceful_shutdown.cpp). A second such signal
//   ends the process at once with exit status 128 + signal, whatever cleanup
//   is still running. `.cancel_on_signals = {}` leaves signals alone.
// - A signal is caught (asio::signal_set on the loop's io_context) only while
//   a waiter or a running main wants it; otherwise it keeps its disposition.
// - Bad input: a number that is not a catchable signal (0, SIGKILL, SIGSTOP,
//   >= NSIG), or no signal at all, throws std::invalid_argument.
#pragma once

#include <coroutine>
#include <csignal>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <asio/executor_work_guard.hpp>

#include "detail/signal_hub.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

namespace detail {

inline std::vector<int> checked_signals(std::vector<int> sigs) {
    if (sigs.empty()) throw std::invalid_argument("corio: wait_for_signal needs at least one signal");
    for (int s : sigs) {
        if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP)
            throw std::invalid_argument("corio: wait_for_signal: " + std::to_string(s) +
                                        " is not a signal that can be caught");
    }
    return sigs;
}

/// The awaiter of wait_for_signal(); movable until awaited.
class signal_wait : signal_waiter {
public:
    explicit signal_wait(std::vector<int> sigs) { wanted = std::move(sigs); }
    signal_wait(signal_wait&& o) noexcept { wanted = std::move(o.wanted); }
    signal_wait& operator=(signal_wait&&) = delete;
    ~signal_wait() {
        if (hub_) hub_->remove_waiter(this);  // the loop tears down while we wait
    }

    bool await_ready() const noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch)) {
            cancelled_ = true;
            return false;
        }
        event_loop& loop = detail::loop_access::loop_of(*ch->sched);
        hub_ = &detail::loop_access::signals(loop);
        hub_->add_waiter(this);
        work_.emplace(loop.get_executor());
        finish_park(ch, this, &on_cancel, h, caller);
        return true;
    }

    int await_resume() {
        leave();
        if (cancelled_) throw cancelled_error{};
        return got;
    }

private:
    void leave() noexcept {
        work_.reset();
        if (signal_hub* hub = std::exchange(hub_, nullptr)) hub->remove_waiter(this);
    }
    static void on_cancel(waiter_base* w) noexcept {
        auto* self = static_cast<signal_wait*>(static_cast<parked*>(w));
        self->leave();
        self->cancelled_ = true;
        self->ch->sched->schedule(self->h);
    }

    signal_hub* hub_ = nullptr;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    bool cancelled_ = false;
};

}  // namespace detail

/// Suspends until one of the signals arrives; returns its number. Cancellation point.
template <class... More>
requires(std::is_convertible_v<More, int>&&...) detail::signal_wait wait_for_signal(int first, More... more) {
    return detail::signal_wait(detail::checked_signals({first, static_cast<int>(more)...}));
}

/// wait_for_signal({SIGINT, SIGTERM}); inside co_await, g++ 12 needs the variadic form.
inline detail::signal_wait wait_for_signal(std::initializer_list<int> sigs) {
    return detail::signal_wait(detail::checked_signals(std::vector<int>(sigs)));
}

}  // namespace corio
