// corio/detail/promise.hpp: promise_base, what every corio coroutine frame
// (task<T>, async_generator<T>) carries, and the helpers that find it.
//
// - A frame is the chain's outermost exactly when root_bit is set in its
//   `link`; otherwise `link` is the awaiting frame (0 until awaited).
// - The outermost frame's final suspension hands the chain to its owner
//   (scheduler::complete_task for a spawned task, the child's own
//   child_owner for a combinator child: child_root::report_done) and touches nothing after; any other frame stores its
//   continuation in the scheduler's trampoline slot (scheduler::next_).
// - A body that ended with cancelled_error stores the one shared cancellation
//   exception (shared_cancellation): finished_as() recognises a cancellation
//   by identity, and a million cancelled frames keep one exception alive.
// - Every promise is at most 16-byte aligned, so promise_of() finds it from
//   the frame address alone on both compilers.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <typeinfo>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include "../errors.hpp"
#include "frame_allocator.hpp"
#include "scheduler.hpp"

namespace corio::detail {

enum class outcome : unsigned char { none, value, error, cancelled };

/// True when the exception being handled is a cancelled_error.
inline bool current_exception_is_cancellation() noexcept {
#if __has_include(<cxxabi.h>)
    const std::type_info* t = abi::__cxa_current_exception_type();
    return t && *t == typeid(cancelled_error);
#else
    try {
        throw;
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
#endif
}

struct promise_base {
    static const std::exception_ptr& shared_cancellation() noexcept {
        static const std::exception_ptr e = std::make_exception_ptr(cancelled_error{});
        return e;
    }

    /// Bit 0 of `link` marks a chain's outermost frame.
    static constexpr std::uintptr_t root_bit = 1;

    /// The awaiting frame's address (0 until awaited). In a chain's outermost
    /// frame, a word with root_bit set instead: for a combinator child just
    /// the bit, for a spawned task the head of the list of observers waiting
    /// for it (loop.hpp; its links all carry the bit). One word, no flag.
    std::uintptr_t link = 0;
    chain* ch = nullptr;
    std::exception_ptr error{};  // set when the body ended with an exception

    std::coroutine_handle<> continuation() const noexcept {
        return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(link));
    }

    /// How a finished body ended. (Only meaningful once it finished: a frame
    /// that has not finished reads as `value`.) No separate field: every
    /// frame would pay for it.
    outcome finished_as() const noexcept {
        if (!error) return outcome::value;
        return error == shared_cancellation() ? outcome::cancelled : outcome::error;
    }

    static void* operator new(std::size_t n) { return frame_allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_deallocate(p, n); }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class P>
        void await_suspend(std::coroutine_handle<P> h) noexcept {
            promise_base& p = h.promise();
            chain* c = p.ch;
            if (!(p.link & root_bit)) {
                c->sched->next_ = p.continuation();
                return;
            }
            // The chain's outermost frame: its owner decides (and may destroy
            // this frame: touch nothing after).
            chain_root* r = chain_root::from_chain(c);
            if (r->spawned) c->sched->complete_task(r);
            else static_cast<child_root*>(r)->report_done();
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    void unhandled_exception() noexcept {
        // Every cancelled frame shares one exception object: a million tasks
        // cancelled at once do not keep a million of them alive (and finished_as()
        // recognises a cancellation by that identity).
        error = current_exception_is_cancellation() ? shared_cancellation() : std::current_exception();
    }

    void rethrow_if_failed() const {
        if (error) std::rethrow_exception(error);
    }
};

template <class P>
concept corio_promise = std::is_base_of_v<promise_base, P>;

/// The promise of a corio task frame, from the frame alone. Every
/// task_promise<T> is at most 16-byte aligned (checked in task_promise), so
/// both compilers place it where a promise_base would be: whoever holds a
/// frame handle needs no second pointer.
inline promise_base& promise_of(std::coroutine_handle<> frame) noexcept {
    return std::coroutine_handle<promise_base>::from_address(frame.address()).promise();
}

/// The chain a corio coroutine runs on.
template <class P>
chain* chain_of(std::coroutine_handle<P> h) noexcept {
    static_assert(corio_promise<P>,
                  "corio: this awaitable can only be awaited from a corio coroutine (the body of a "
                  "corio::task, corio::async_generator or corio::async_context)");
    return h.promise().ch;
}

/// `co_await detail::this_chain{}` yields the current chain without suspending.
struct this_chain {
    chain* c = nullptr;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        c = chain_of(h);
        return false;
    }
    chain* await_resume() const noexcept { return c; }
};

}  // namespace corio::detail
