// corio/detail/running_loop.hpp: which loop runs on this thread, and which
// chain (task) it is running right now.
//
// - A loop marks itself running for the span of each of its steps (a drain
//   of the ready queue, a timer expiry, a completion handler) with a
//   running_loop_guard; outside those spans running_loop() is null. Guards
//   nest (a loop driven from inside another's step restores the outer one).
// - The thread-local is read through non-inlined functions: a coroutine may
//   resume on another thread (to_thread, loops on several threads), and a
//   compiler caching the thread-local's address across a suspension would
//   read the old thread's slot.
// - running_chain() is the chain of the frame the running scheduler resumed
//   last (scheduler::running_), or null: primitives that must know whether
//   they are called from their own task (sync.hpp) ask it without needing
//   the loop itself.
#pragma once

#include <coroutine>
#include <utility>

#include "promise.hpp"
#include "scheduler.hpp"

namespace corio {
class event_loop;
}  // namespace corio

namespace corio::detail {

/// The loop running on this thread and its scheduler core (both null, or
/// both the same object: an event_loop is a scheduler).
struct running_state {
    event_loop* loop = nullptr;
    scheduler* sched = nullptr;
};

inline thread_local running_state tls_running_state{};

[[gnu::noinline]] inline event_loop* running_loop() noexcept { return tls_running_state.loop; }
[[gnu::noinline]] inline scheduler* running_scheduler() noexcept { return tls_running_state.sched; }
[[gnu::noinline]] inline running_state exchange_running_state(running_state s) noexcept {
    return std::exchange(tls_running_state, s);
}

/// Marks `loop` (whose scheduler core is `sched`) as the one running on this
/// thread for the guard's lifetime.
class running_loop_guard {
public:
    running_loop_guard(event_loop* loop, scheduler* sched) noexcept
        : prev_(exchange_running_state(running_state{loop, sched})) {}
    ~running_loop_guard() { exchange_running_state(prev_); }
    running_loop_guard(const running_loop_guard&) = delete;
    running_loop_guard& operator=(const running_loop_guard&) = delete;

private:
    running_state prev_;
};

/// The chain (task) running right now on this thread's loop, or null outside
/// any task (e.g. while a loop tears down). Every frame a scheduler resumes is
/// a corio task frame, whose promise sits where a promise_base would.
inline chain* running_chain() noexcept {
    scheduler* s = running_scheduler();
    if (!s) return nullptr;
    std::coroutine_handle<> h = s->running_;
    if (!h) return nullptr;
    return promise_of(h).ch;
}

}  // namespace corio::detail
