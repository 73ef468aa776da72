// corio/detail/park.hpp: the one parking prologue every suspending awaiter
// runs (begin_park, then finish_park), whatever it waits on: a wait_list
// (parked::park_on in wait_list.hpp), a timer, a task, a thread, Asio.
//
// - begin_park is the cancellation point: in a cancelled scope it says "do
//   not suspend", and the awaiter throws cancelled_error from await_resume
//   without having touched what it waits on. Awaiters with a fast path that
//   never suspends (a free mutex, a finished task, tokens at hand) take it
//   before begin_park, so that path is no cancellation point.
// - finish_park is the suspension: the chain's waiter is the awaiter, and
//   cancelling the chain's scope calls the awaiter's notify (see
//   wakeable.hpp), which must unlink it and queue the chain, never resume
//   inline. Nothing may throw after it (a stale waiter would be notified).
// - An awaiter whose cancellation does not end the wait (a crew join: it
//   cancels the children and keeps waiting) parks all the same; it reads the
//   cancelled case from begin_park and suspends without finish_park.
#pragma once

#include <coroutine>

#include "promise.hpp"
#include "scheduler.hpp"

namespace corio::detail {

/// Step one: the caller's chain into `ch`; false in a cancelled scope (do not
/// suspend: the awaiter throws cancelled_error from await_resume).
template <class P>
[[gnu::always_inline]] inline bool begin_park(std::coroutine_handle<P> caller, chain*& ch) {
    static_assert(corio_promise<P>,
                  "corio: this awaitable can only be awaited from a corio coroutine (the body of a "
                  "corio::task, corio::async_generator or corio::async_context)");
    ch = caller.promise().ch;
    return !ch->cancel_requested();
}

/// Step two: the chain is parked on `w` until it is woken (which resumes
/// `caller`, remembered in `h`) or its scope is cancelled (which calls
/// `on_cancel`, see waiter_base).
inline void finish_park(chain* ch, waiter_base* w, void (*on_cancel)(waiter_base*) noexcept, std::coroutine_handle<>& h,
                        std::coroutine_handle<> caller) noexcept {
    h = caller;
    w->notify = on_cancel;
    ch->park(w);
}

}  // namespace corio::detail
