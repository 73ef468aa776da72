// corio/generator.hpp: async_generator<T>, asyncio's async generator as a
// lazy C++ coroutine; corio::for_each(gen, fn); optional_ref<T>.
//
// - A function returning async_generator<T> may `co_yield` values and
//   `co_await` anything a corio task can await. Calling it runs nothing: the
//   body starts at the first next().
// - `co_await gen.next()` runs the body until its next `co_yield` and returns
//   std::optional<T> holding the yielded value (moved out of the yield; an
//   lvalue `co_yield x` is copied first, so x keeps its value), or an empty
//   optional once the body has returned. A finished generator's next()
//   returns an empty optional again and again. For a reference T = U&, next()
//   returns optional_ref<U>: a nullable reference (std::optional<U&> does not
//   exist in C++20) that refers to the object the body yielded, valid until
//   the next call that resumes the generator.
// - T may be move-only (the body yields it with std::move or as a prvalue)
//   or a reference. T may not be an rvalue reference.
// - The body runs on the consumer's task, like an awaited task<T>: inside
//   the consumer's cancel scopes, on its chain. So next() is a cancellation
//   point exactly where the body suspends on a corio operation: cancelling
//   the consumer while the body waits throws cancelled_error at the body's
//   co_await; handlers and destructors run and the cancellation propagates
//   out of next(). A next() that the body satisfies without suspending on an
//   operation is not a suspension (it may complete in a cancelled scope).
// - An exception leaving the body is thrown by the next() that ran it; the
//   generator is then finished (later next() calls return empty).
// - Destroying the generator (e.g. breaking out of a loop, or an exception in
//   the consumer) destroys its frame at once: locals are destroyed in reverse
//   order, no code after the pending `co_yield` runs, nothing is left behind.
//   There is no aclose(): async cleanup belongs in the body, before it
//   returns. A generator is destroyed only while no next() is pending (a
//   pending next() has a suspended consumer, which cannot destroy it).
// - next() returns a small movable awaiter (it refers to the generator, which
//   must outlive it), so `timeout(d, gen.next())`, `race(gen.next(), ...)`,
//   `gather(gen.next(), ...)` and the other combinators take it as a
//   temporary. A deadline that cuts next() short cancels the body's pending
//   operation, which normally ends the generator (asyncio's wait_for on
//   __anext__ behaves the same); batch() in stream.hpp shows how to wait for
//   items with a deadline without cancelling the pull.
// - Misuse throws invalid_state_error: next() on an empty (moved-from or
//   default-constructed) generator, next() while another next() on the same
//   generator is pending, ++ on an iterator that is already at end().
// - Iteration: `for (auto it = co_await gen.begin(); it != gen.end();
//   co_await ++it) use(*it);` where *it refers to the yielded object in the
//   generator (no copy). `co_await corio::for_each(gen, fn)` calls fn with
//   each item (moved); when fn returns an awaitable (a task), it is awaited
//   before the next item is pulled. for_each takes the generator by
//   reference, or by value when given an rvalue.
// - Cost: a next() that the body answers with a co_yield is two frame
//   switches through the scheduler's trampoline (constant stack at every
//   optimisation level) and one move of the value; no allocation per item.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "detail/awaitable_traits.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"
#include "task.hpp"

// Symmetric transfer is a guaranteed tail call only in optimised builds
// without AddressSanitizer (g++ below -O2 and ASan builds grow the stack on
// every transfer); elsewhere a yield goes through the trampoline.
#ifndef CORIO_GENERATOR_TAIL_CALLS
#if defined(__SANITIZE_ADDRESS__)
#define CORIO_GENERATOR_TAIL_CALLS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_GENERATOR_TAIL_CALLS 0
#endif
#endif
#endif
#ifndef CORIO_GENERATOR_TAIL_CALLS
#if defined(__OPTIMIZE__) && (defined(__clang__) || !defined(__NO_INLINE__))
#define CORIO_GENERATOR_TAIL_CALLS 1
#else
#define CORIO_GENERATOR_TAIL_CALLS 0
#endif
#endif

namespace corio {

/// A nullable reference: what next() returns for async_generator<U&>.
template <class T>
class optional_ref {
public:
    /// The referenced type.
    using value_type = T;
    optional_ref() noexcept = default;
    /// An empty reference.
    optional_ref(std::nullopt_t) noexcept {}
    /// A reference to `r`.
    explicit optional_ref(T& r) noexcept : p_(std::addressof(r)) {}

    /// True when it refers to something.
    bool has_value() const noexcept { return p_ != nullptr; }
    /// True when it refers to something.
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /// The referenced object (undefined when empty).
    T& operator*() const noexcept { return *p_; }
    /// The referenced object's address (undefined when empty).
    T* operator->() const noexcept { return p_; }
    /// The referenced object; std::bad_optional_access when empty.
    T& value() const {
        if (!p_) throw std::bad_optional_access();
        return *p_;
    }
    /// The referenced object's address, or null when empty.
    T* get() const noexcept { return p_; }

private:
    T* p_ = nullptr;
};

template <class T>
class async_generator;

namespace detail {

template <class T>
struct generator_next {
    using type = std::optional<T>;
};
template <class T>
struct generator_next<T&> {
    using type = optional_ref<T>;
};

template <class T>
concept awaitable = requires(T&& a) {
    get_awaiter(static_cast<T&&>(a)).await_ready();
};

template <class T>
struct generator_promise final : promise_base {
    static_assert(!std::is_rvalue_reference_v<T>, "corio: async_generator<T&&> is not supported; yield T by value");
    using stored = std::remove_reference_t<T>;
    static_assert(alignof(stored*) <= 2 * sizeof(void*));

    stored* current = nullptr;           // the object the body yielded last
    std::coroutine_handle<> consumer{};  // the frame awaiting next(), while one is pending

    async_generator<T> get_return_object() noexcept;

    /// Hands control back to the consumer: by symmetric transfer where that
    /// is a guaranteed tail call (optimised builds without ASan), else
    /// through the scheduler's trampoline. Either way a long stream keeps a
    /// constant stack.
    struct yield_awaiter {
        bool await_ready() const noexcept { return false; }
#if CORIO_GENERATOR_TAIL_CALLS
        std::coroutine_handle<> await_suspend(std::coroutine_handle<generator_promise> h) noexcept {
            return h.promise().consumer;
        }
#else
        void await_suspend(std::coroutine_handle<generator_promise> h) noexcept {
            generator_promise& p = h.promise();
            p.ch->sched->next_ = p.consumer;
        }
#endif
        void await_resume() const noexcept {}
    };
    /// An lvalue yield: the body keeps its object, the consumer gets a copy.
    struct copy_yield_awaiter : yield_awaiter {
        stored copy;
        auto await_suspend(std::coroutine_handle<generator_promise> h) noexcept {
            h.promise().current = std::addressof(copy);
            return yield_awaiter::await_suspend(h);
        }
    };

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<generator_promise> h) noexcept {
            generator_promise& p = h.promise();
            p.current = nullptr;
            p.ch->sched->next_ = p.consumer;
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_void() noexcept {}

    yield_awaiter yield_value(stored&& v) noexcept requires(!std::is_reference_v<T>) {
        current = std::addressof(v);
        return {};
    }
    copy_yield_awaiter yield_value(const stored& v) requires(!std::is_reference_v<T> &&
                                                             std::is_copy_constructible_v<stored>) {
        return copy_yield_awaiter{{}, v};
    }
    yield_awaiter yield_value(stored& v) noexcept requires(std::is_reference_v<T>) {
        current = std::addressof(v);
        return {};
    }
};

/// How an advancing await reports: next() gives the value, begin() and ++it
/// give the iterator.
enum class advance_kind { next, iterate };

template <class T, advance_kind K>
class advance_awaiter {
    using promise = generator_promise<T>;
    using handle = std::coroutine_handle<promise>;

public:
    explicit advance_awaiter(handle h) noexcept : h_(h) {}

    bool await_ready() const {
        if (!h_)
            throw invalid_state_error("corio: next() on an empty async_generator (moved-from or default-constructed)");
        if (h_.promise().consumer)
            throw invalid_state_error(
                "corio: next() while a previous next() on the same async_generator is still pending");
        return h_.done();
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
        promise& p = h_.promise();
        p.ch = chain_of(caller);
        p.consumer = caller;
        return h_;
    }
    auto await_resume() {
        promise& p = h_.promise();
        p.consumer = {};
        const bool finished = h_.done();
        if (finished && p.error) std::rethrow_exception(std::exchange(p.error, {}));
        if constexpr (K == advance_kind::iterate) {
            return finished;
        } else if constexpr (std::is_reference_v<T>) {
            return finished ? optional_ref<std::remove_reference_t<T>>()
                            : optional_ref<std::remove_reference_t<T>>(*p.current);
        } else {
            return finished ? std::optional<T>() : std::optional<T>(std::move(*p.current));
        }
    }

private:
    handle h_;
};

}  // namespace detail

/// An async generator: a lazy coroutine that co_yields items and co_awaits anything
/// (asyncio's async generator). Pull items with next(), `for_each()` or the iterator form;
/// move-only; destroying it destroys a suspended body (its locals' destructors run).
template <class T>
class [[nodiscard]] async_generator {
public:
    /// The coroutine's promise.
    using promise_type = detail::generator_promise<T>;
    /// The coroutine handle the promise makes.
    using handle_type = std::coroutine_handle<promise_type>;
    /// The item type without reference or cv-qualification.
    using value_type = std::remove_cvref_t<T>;
    /// What the iterator's operator* gives: `T` itself when `T` is a reference, `T&` otherwise.
    using reference = std::conditional_t<std::is_reference_v<T>, T, T&>;
    /// What next() yields: `std::optional<T>`, or `optional_ref<U>` for `T = U&`.
    using next_type = typename detail::generator_next<T>::type;

    async_generator() noexcept = default;
    /// Takes ownership of a generator coroutine (what the promise returns).
    explicit async_generator(handle_type h) noexcept : h_(h) {}
    /// Takes over `o`'s coroutine; `o` becomes empty.
    async_generator(async_generator&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    /// Destroys this generator's coroutine, then takes over `o`'s.
    async_generator& operator=(async_generator&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    async_generator(const async_generator&) = delete;
    async_generator& operator=(const async_generator&) = delete;
    ~async_generator() { reset(); }

    /// True when this object holds a generator (finished or not).
    bool valid() const noexcept { return static_cast<bool>(h_); }
    /// valid().
    explicit operator bool() const noexcept { return valid(); }
    /// True once the body has returned or thrown.
    bool done() const noexcept { return !h_ || h_.done(); }

    /// Awaitable: the next item, or an empty optional at the end. See the header comment.
    detail::advance_awaiter<T, detail::advance_kind::next> next() noexcept {
        return detail::advance_awaiter<T, detail::advance_kind::next>(h_);
    }

    class iterator;
    class advance_to_iterator;

    /// Awaitable: runs the body to its first item; yields an iterator.
    advance_to_iterator begin() noexcept { return advance_to_iterator(h_); }
    /// The end of the iterator form: an iterator equals it once the body has finished.
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    void reset() noexcept {
        if (h_) h_.destroy();
        h_ = {};
    }
    handle_type h_{};
};

/// The iterator form: `for (auto it = co_await g.begin(); it != g.end(); co_await ++it)`.
template <class T>
class async_generator<T>::iterator {
public:
    /// The item type.
    using value_type = async_generator<T>::value_type;
    /// What operator* gives.
    using reference = async_generator<T>::reference;
    /// Iterator requirement; not meaningful.
    using difference_type = std::ptrdiff_t;

    iterator() noexcept = default;
    /// An iterator over the generator `h` (made by begin()).
    explicit iterator(handle_type h) noexcept : h_(h) {}

    /// The current item (valid until the next advance).
    reference operator*() const noexcept { return static_cast<reference>(*h_.promise().current); }
    /// The current item's address (valid until the next advance).
    std::remove_reference_t<reference>* operator->() const noexcept { return h_.promise().current; }

    /// Awaitable: advances to the next item; yields this iterator.
    advance_to_iterator operator++() {
        if (!h_ || h_.done()) throw invalid_state_error("corio: ++ on an async_generator iterator that is at end()");
        return advance_to_iterator(h_);
    }

    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.h_ || it.h_.done(); }

private:
    handle_type h_{};
};

/// What begin() returns: an awaitable that runs the body to its first item and yields an iterator.
template <class T>
class async_generator<T>::advance_to_iterator {
    using base = detail::advance_awaiter<T, detail::advance_kind::iterate>;

public:
    /// The awaitable of begin() for the generator `h`.
    explicit advance_to_iterator(handle_type h) noexcept : a_(h), h_(h) {}
    /// Awaiter protocol: ready when the generator has nothing to run.
    bool await_ready() const { return a_.await_ready(); }
    /// Awaiter protocol: resumes the generator's body, symmetric transfer.
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
        return a_.await_suspend(caller);
    }
    /// begin() yields a fresh iterator; ++it yields a copy of `it` (both
    /// refer to the same generator).
    iterator await_resume() {
        a_.await_resume();
        return iterator(h_);
    }

private:
    base a_;
    handle_type h_;
};

namespace detail {
template <class T>
async_generator<T> generator_promise<T>::get_return_object() noexcept {
    return async_generator<T>(std::coroutine_handle<generator_promise>::from_promise(*this));
}

}  // namespace detail

/// Calls fn(item) for every item of gen, awaiting fn's result when it is an
/// awaitable. Cancellation point wherever the body or fn suspends.
template <class T, class F>
task<void> for_each(async_generator<T>& gen, F fn) {
    while (auto v = co_await gen.next()) {
        if constexpr (std::is_reference_v<T>) {
            if constexpr (detail::awaitable<std::invoke_result_t<F&, T>>) co_await std::invoke(fn, *v);
            else std::invoke(fn, *v);
        } else {
            if constexpr (detail::awaitable<std::invoke_result_t<F&, T&&>>) co_await std::invoke(fn, std::move(*v));
            else std::invoke(fn, std::move(*v));
        }
    }
}

namespace detail {
template <class T, class F>
task<void> for_each_owned(async_generator<T> gen, F fn) {
    co_await for_each(gen, std::move(fn));
}
}  // namespace detail

/// for_each over a generator given as an rvalue: the returned task owns it.
template <class T, class F>
task<void> for_each(async_generator<T>&& gen, F fn) {
    return detail::for_each_owned(std::move(gen), std::move(fn));
}

}  // namespace corio
