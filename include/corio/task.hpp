// corio/task.hpp: task<T>, the coroutine type every corio async function returns.
//
// - Lazy: calling a task-returning function allocates its frame and runs
//   nothing. The body starts when the task is awaited (inline, in the
//   awaiter's chain and cancel scopes: no queue hop) or spawned.
// - Move-only; awaiting consumes the result. Awaiting an empty (moved-from)
//   task, or one that was already awaited, throws invalid_state_error.
// - T may be void or an lvalue reference; over-aligned T (alignas > 16) is
//   rejected at compile time.
// - Awaiting a task is not itself a suspension point: the child runs until it
//   suspends somewhere, and its value (or exception) comes back through
//   `co_await`. Stack use, exactly:
//   * A sequence of awaits (a loop of `co_await child()`) never grows the
//     stack, at any optimisation level: a finishing frame returns to the
//     scheduler's trampoline instead of resuming its parent from inside itself.
//   * Nested awaits (a recursion d deep) do not grow it either on the way up
//     (same trampoline). On the way down each level starts its child by
//     symmetric transfer, which is a tail call in optimised builds without
//     sanitizers (g++ -O2 and above, clang++ -O1 and above). Where it is not
//     (unoptimised builds, where g++ overflows an 8 MiB stack near 1,000,000
//     levels, and AddressSanitizer builds, near 100,000 at any level), corio
//     defines CORIO_TRAMPOLINE_DESCENT and the child is started by the
//     trampoline too: no stack per level. g++ -O1 is optimised but does no
//     tail calls: define CORIO_TRAMPOLINE_DESCENT=1 yourself for deep
//     recursion there. Cost: a few instructions per await, so it is off in
//     optimised builds.
// - A task<T> can only be awaited from a corio coroutine (task, generator):
//   the frame needs the awaiter's chain for cancellation and scheduling.
// - Frames come from a per-thread recycling slab allocator.
//
// GCC PR 100611: a lambda with non-trivial captures used as a temporary
// inside a co_await expression is destroyed twice. Name the lambda first:
// `auto f = [&]{...}; co_await f();`.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "detail/scheduler.hpp"
#include "detail/task_promise.hpp"
#include "errors.hpp"

#ifndef CORIO_TRAMPOLINE_DESCENT
#if !defined(__OPTIMIZE__) || defined(CORIO_DETAIL_ASAN)
#define CORIO_TRAMPOLINE_DESCENT 1
#else
#define CORIO_TRAMPOLINE_DESCENT 0
#endif
#endif

namespace corio {

/// The lazy coroutine type every corio async function returns (see the header comment).
template <class T>
class [[nodiscard]] task {
public:
    /// The coroutine's promise.
    using promise_type = detail::task_promise<T>;
    /// The coroutine handle the promise makes.
    using handle_type = std::coroutine_handle<promise_type>;
    /// The type `co_await` of the task yields.
    using value_type = T;

    task() noexcept = default;
    /// Takes ownership of a task coroutine (what the promise returns).
    explicit task(handle_type h) noexcept : h_(h) {}
    /// Takes over `other`'s coroutine; `other` becomes empty.
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    /// Destroys this task's coroutine, then takes over `other`'s.
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { reset(); }

    /// True when this task holds a coroutine that was not awaited yet.
    bool valid() const noexcept { return h_ && !h_.promise().link && !h_.done(); }
    /// valid().
    explicit operator bool() const noexcept { return valid(); }

    /// What `co_await task` uses: starts the task inline by symmetric transfer.
    struct awaiter {
        /// The task being awaited.
        handle_type h;
        /// Awaiter protocol: a task always starts by suspending the caller.
        bool await_ready() const noexcept { return false; }
        /// Awaiter protocol: links the task to the caller's chain and transfers to it.
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
            promise_type& p = h.promise();
            p.link = reinterpret_cast<std::uintptr_t>(parent.address());
            p.ch = detail::chain_of(parent);
#if CORIO_TRAMPOLINE_DESCENT
            // The scheduler's loop resumes the child: no stack per level of nesting.
            p.ch->sched->next_ = h;
            return std::noop_coroutine();
#else
            return h;  // symmetric transfer: a tail call in optimised builds
#endif
        }
        /// Awaiter protocol: the task's value, or rethrows its exception.
        T await_resume() { return h.promise().take(); }
    };

    /// Runs the task to its end (invalid_state_error if it is empty).
    awaiter operator co_await() & { return awaiter{checked()}; }
    /// Runs the task to its end (invalid_state_error if it is empty).
    awaiter operator co_await() && { return awaiter{checked()}; }

    /// Gives up ownership of the frame (used by spawn and combinators).
    handle_type release() noexcept { return std::exchange(h_, {}); }
    /// corio internals: the coroutine handle.
    handle_type handle() const noexcept { return h_; }

private:
    handle_type checked() const {
        // A task that was awaited has its continuation set (it stays set), so
        // one check covers "already awaited" whether or not it finished.
        if (!h_) [[unlikely]]
            throw invalid_state_error("corio: co_await on an empty task (moved-from or default-constructed)");
        if (h_.promise().link) [[unlikely]]
            throw invalid_state_error("corio: co_await on a task that was already awaited");
        return h_;
    }
    void reset() noexcept {
        if (h_) h_.destroy();
        h_ = {};
    }

    handle_type h_{};
};

/// @cond
/// (corio internals: the promises' out-of-line members)
namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
    return task<T&>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
}  // namespace detail
/// @endcond

/// The value type a task<T> or other awaitable yields.
template <class T>
struct task_traits;
/// task_traits of task<T>.
template <class T>
struct task_traits<task<T>> {
    /// The type `co_await` of the task yields.
    using value_type = T;
};

}  // namespace corio
