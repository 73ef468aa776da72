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

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include "detail/frame_allocator.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"

#ifndef CORIO_TRAMPOLINE_DESCENT
#if !defined(__OPTIMIZE__) || defined(CORIO_DETAIL_ASAN)
#define CORIO_TRAMPOLINE_DESCENT 1
#else
#define CORIO_TRAMPOLINE_DESCENT 0
#endif
#endif

namespace corio {

template <class T = void>
class task;

namespace detail {

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
    outcome state() const noexcept {
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
        // cancelled at once do not keep a million of them alive (and state()
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
                  "corio awaitables can only be awaited from a corio coroutine (corio::task, corio::async_generator)");
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

template <class T>
struct task_promise final : promise_base {
    // The scheduler, sleeps and spawned tasks find a frame's promise from the
    // frame address as if it were a promise_base; both compilers place a
    // promise of alignment <= 16 at that same offset.
    static_assert(alignof(T) <= 2 * sizeof(void*),
                  "corio: task<T> does not support over-aligned T; return it in a std::unique_ptr");

    task_promise() noexcept {}
    ~task_promise() {
        if (has_value_) std::destroy_at(ptr());
    }

    task<T> get_return_object() noexcept;

    void return_value(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) { emplace(std::move(v)); }
    void return_value(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) { emplace(v); }
    template <class U>
        requires(!std::is_same_v<std::remove_cvref_t<U>, T> && std::is_constructible_v<T, U &&>)
    void return_value(U&& v) {
        emplace(std::forward<U>(v));
    }

    T take() {
        rethrow_if_failed();
        return std::move(*ptr());
    }

private:
    template <class... A>
    void emplace(A&&... a) {
        ::new (static_cast<void*>(storage_)) T(std::forward<A>(a)...);
        has_value_ = true;
    }
    T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(storage_)); }
    alignas(T) unsigned char storage_[sizeof(T)];
    bool has_value_ = false;
};

template <class T>
struct task_promise<T&> final : promise_base {
    task<T&> get_return_object() noexcept;
    void return_value(T& v) noexcept { ref_ = std::addressof(v); }
    T& take() {
        rethrow_if_failed();
        return *ref_;
    }

private:
    T* ref_ = nullptr;
};

template <>
struct task_promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() { rethrow_if_failed(); }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : h_(h) {}
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
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
    explicit operator bool() const noexcept { return valid(); }

    struct awaiter {
        handle_type h;
        bool await_ready() const noexcept { return false; }
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
        T await_resume() { return h.promise().take(); }
    };

    awaiter operator co_await() & { return awaiter{checked()}; }
    awaiter operator co_await() && { return awaiter{checked()}; }

    /// Gives up ownership of the frame (used by spawn and combinators).
    handle_type release() noexcept { return std::exchange(h_, {}); }
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

/// The value type a task<T> or other awaitable yields.
template <class T>
struct task_traits;
template <class T>
struct task_traits<task<T>> {
    using value_type = T;
};

}  // namespace corio
