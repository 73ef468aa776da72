// corio/resource.hpp: async_context<T>, with(), async_exit_stack and
// with_exit_stack() — asyncio's @asynccontextmanager and AsyncExitStack.
//
//   corio::async_context<conn> managed(std::string url) {
//       conn c = co_await connect(url);          // acquire
//       corio::context_exit how = co_yield c;    // the body runs here
//       if (!how.error()) co_await c.commit();   // look at how it ended
//       co_await c.close();                      // the finally: always runs
//   }
//   auto f = [](conn& c) -> corio::task<int> { co_return co_await c.query(); };
//   int n = co_await corio::with(managed(url), f);
//
// - async_context<T> is a lazy coroutine that must co_yield its resource
//   exactly once. with(ctx, body) runs it up to the co_yield (the acquire
//   half, in the caller's cancel scopes: a cancellation point like any other
//   code), then awaits body(resource) (a callable returning a task<R>), then
//   resumes the context after its co_yield (the release half) and returns R.
// - co_yield never throws into the context: it evaluates to a context_exit
//   saying how the body ended (error(): its exception_ptr or null;
//   cancelled(): it ended with cancelled_error). The code after co_yield is
//   the finally: it runs exactly once on every path (value, exception,
//   cancellation), shielded from every enclosing scope's cancellation (a
//   context that bounds its own cleanup writes move_on_after(grace, ...));
//   a pending cancellation is seen again at the caller's next suspension.
// - Outcome: the body's value; else the body's exception, after the release
//   finished (a context cannot suppress it). The release throws E2: if the
//   body succeeded or was cancelled, with throws E2; if the body threw E,
//   with throws exception_group{E, E2}.
// - Acquire failing (the context throws before co_yield): the body never
//   runs and the exception reaches the caller. A context that finishes
//   without co_yield: invalid_state_error. A second co_yield throws
//   invalid_state_error at it (inside the release half, so with reports it
//   as a release error) and nothing runs twice.
// - with(aw, body): `aw` is any awaitable whose value has `aclose()`
//   (returning a task<void>): the value is awaited, body runs, aclose() is
//   awaited shielded, under the same rules.
// - with_exit_stack(body): body(async_exit_stack&) may `co_await
//   st.enter(ctx)` (returns the resource; ctx may also be an awaitable of a
//   value with aclose()) and `st.push(f)` (f() or f(const context_exit&)
//   returning a task<void>). When the body ends, every entry is unwound in
//   reverse order of registration, each one even if an earlier one threw,
//   all shielded. Errors: one -> itself, several -> exception_group in
//   unwind order; with a body error E first, as for with().
// - Frames: with(ctx, body) is three coroutine frames (with's own, the
//   context's, the body's task); nothing else allocates.
// - Everything here is a task<T> (or returns one): movable until awaited and
//   usable as a temporary in every combinator.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "cancel.hpp"
#include "detail/awaitable_traits.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace corio {

/// How the body of a with() ended, as seen by the code after a context's co_yield.
class context_exit {
public:
    context_exit() noexcept = default;
    /// An end with the error `e` (null: the body returned); `cancelled` when `e` is a cancelled_error.
    context_exit(std::exception_ptr e, bool cancelled) noexcept : error_(std::move(e)), cancelled_(cancelled) {}

    /// The body's exception (a cancelled_error too), or null when it returned.
    const std::exception_ptr& error() const noexcept { return error_; }
    /// The body ended with cancelled_error.
    bool cancelled() const noexcept { return cancelled_; }
    /// The body returned normally.
    bool ok() const noexcept { return !error_; }

private:
    std::exception_ptr error_{};
    bool cancelled_ = false;
};

template <class T>
class async_context;
class async_exit_stack;

namespace detail {
template <class F, class R>
task<R> with_exit_stack_impl(F body);

struct context_access;

template <class T>
struct context_promise final : promise_base {
    static_assert(std::is_object_v<T>, "corio: async_context<T> yields an object; T must not be a reference");

    async_context<T> get_return_object() noexcept;
    void return_void() noexcept {}

    struct yield_awaiter {
        context_promise* p;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
            // Straight back to with(). Not a trampoline hop: the stack this
            // may nest (where symmetric transfer is no tail call) unwinds when
            // with() finishes, which returns through the trampoline.
            return p->continuation();
        }
        const context_exit& await_resume() const noexcept { return p->how; }
    };

    /// Back to whoever awaits the half that just ended, by symmetric
    /// transfer (see yield_awaiter). A context frame is never a chain's root.
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<context_promise> h) const noexcept {
            return h.promise().continuation();
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    yield_awaiter yield_value(T& r) {
        if (yielded)
            throw invalid_state_error(
                "corio: async_context yielded a second time; a context co_yields its resource exactly once");
        yielded = true;
        resource = std::addressof(r);
        return yield_awaiter{this};
    }
    yield_awaiter yield_value(T&& r) { return yield_value(static_cast<T&>(r)); }

    T* resource = nullptr;
    context_exit how{};
    bool yielded = false;
};

/// Runs the first half of a context: from its start to the co_yield (in
/// the caller's scopes). Not a suspension point of its own.
template <class T>
struct context_enter {
    std::coroutine_handle<context_promise<T>> h;

    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
        auto& p = h.promise();
        p.link = reinterpret_cast<std::uintptr_t>(caller.address());
        p.ch = chain_of(caller);
        return h;
    }
    T& await_resume() const {
        auto& p = h.promise();
        if (!p.yielded) {
            p.rethrow_if_failed();
            throw invalid_state_error(
                "corio: async_context finished without yielding its resource (a context must co_yield exactly once)");
        }
        return *p.resource;
    }
};

/// Runs the second half of a context (after its co_yield) inside a shielded
/// scope of its own: shield() without a deadline's bookkeeping.
template <class T>
struct context_release {
    std::coroutine_handle<context_promise<T>> h;
    inner_scope sc{};
    chain* ch = nullptr;

    explicit context_release(std::coroutine_handle<context_promise<T>> hh) noexcept : h(hh) { sc.shielded = true; }
    context_release(context_release&& o) noexcept : h(o.h) { sc.shielded = true; }  // only before it is awaited
    ~context_release() {
        if (ch) ch->leave(&sc);  // the awaiting frame was destroyed mid-release
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
        auto& p = h.promise();
        p.link = reinterpret_cast<std::uintptr_t>(caller.address());
        ch = p.ch = chain_of(caller);
        ch->enter(&sc);
        return h;
    }
    void await_resume() {
        ch->leave(&sc);
        ch = nullptr;
        h.promise().rethrow_if_failed();
    }
};

struct context_access {
    template <class T>
    static auto checked(async_context<T>& c) {
        if (!c.h_) throw invalid_state_error("corio: with() on an empty async_context (moved-from or already used)");
        if (c.h_.promise().link)
            throw invalid_state_error("corio: an async_context runs once; this one was already entered");
        return c.h_;
    }
    template <class T>
    static context_enter<T> enter(async_context<T>& c) {
        return {checked(c)};
    }
    /// The release half, told how the body ended.
    template <class T>
    static context_release<T> release(async_context<T>& c, const context_exit& how) {
        c.h_.promise().how = how;
        return context_release<T>(c.h_);
    }
    /// The same, for a body whose outcome is in `out` (copies nothing when it returned).
    template <class T, class Out>
    static context_release<T> release_after(async_context<T>& c, const Out& out) {
        if (out.failed()) c.h_.promise().how = out.how();
        return context_release<T>(c.h_);
    }
};

inline std::vector<std::exception_ptr> one_error(std::exception_ptr e) {
    std::vector<std::exception_ptr> v;
    if (e) v.push_back(std::move(e));
    return v;
}

/// The value (or exception) of a body, kept while the release runs.
template <class R>
class body_outcome {
public:
    void set(R&& v) { value_.emplace(static_cast<R&&>(v)); }
    void fail() noexcept {
        cancelled_ = current_exception_is_cancellation();
        error_ = std::current_exception();
    }
    context_exit how() const noexcept { return context_exit(error_, cancelled_); }
    bool failed() const noexcept { return static_cast<bool>(error_); }

    /// The result when the release threw `released` (or nothing).
    R conclude_one(std::exception_ptr& released) {
        if (!released && !error_) [[likely]]
            return static_cast<R&&>(*value_);
        return conclude(one_error(std::move(released)));
    }

    /// The result of the whole with(): see the header comment.
    R conclude(std::vector<std::exception_ptr> release_errors) {
        raise(release_errors);
        return static_cast<R&&>(*value_);
    }

    void raise(std::vector<std::exception_ptr>& release_errors) {
        if (error_ && !cancelled_ && !release_errors.empty()) {
            release_errors.insert(release_errors.begin(), error_);
            throw exception_group(std::move(release_errors));
        }
        if (release_errors.size() == 1) std::rethrow_exception(release_errors.front());
        if (!release_errors.empty()) throw exception_group(std::move(release_errors));
        if (error_) std::rethrow_exception(error_);
    }

private:
    using stored = std::conditional_t<std::is_reference_v<R>, std::reference_wrapper<std::remove_reference_t<R>>, R>;
    std::optional<stored> value_;
    std::exception_ptr error_{};
    bool cancelled_ = false;
};

template <>
class body_outcome<void> : public body_outcome<int> {
public:
    void conclude(std::vector<std::exception_ptr> release_errors) { raise(release_errors); }
    void conclude_one(std::exception_ptr& released) {
        if (!released && !failed()) [[likely]]
            return;
        conclude(one_error(std::move(released)));
    }
};

template <class T>
concept closeable = requires(T& t) {
    get_awaiter(t.aclose());
};

template <class A>
struct is_async_context : std::false_type {};
template <class T>
struct is_async_context<async_context<T>> : std::true_type {};

template <class F, class T>
using with_result_t = await_result_t<std::invoke_result_t<F&, T&>>;

/// Awaits body(r) into `out`; never throws.
template <class R, class F, class T>
task<void> run_body(body_outcome<R>& out, F& body, T& r) {
    try {
        if constexpr (std::is_void_v<R>) co_await body(r);
        else out.set(co_await body(r));
    } catch (...) {
        out.fail();
    }
}

}  // namespace detail

/// A context-manager coroutine: acquires, co_yields its resource exactly
/// once, releases. Lazy and move-only; run it with with() or
/// async_exit_stack::enter().
template <class T>
class [[nodiscard]] async_context {
public:
    /// The coroutine's promise (a function returning async_context<T> is a context manager).
    using promise_type = detail::context_promise<T>;
    /// The coroutine handle the promise makes.
    using handle_type = std::coroutine_handle<promise_type>;
    /// The resource type the context co_yields.
    using value_type = T;

    async_context() noexcept = default;
    /// Takes ownership of a context coroutine (what the promise returns).
    explicit async_context(handle_type h) noexcept : h_(h) {}
    /// Takes over `o`'s coroutine; `o` becomes empty.
    async_context(async_context&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    /// Destroys this context's coroutine if it never ran, then takes over `o`'s.
    async_context& operator=(async_context&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~async_context() {
        if (h_) h_.destroy();
    }

    /// Holds a context that has not been entered yet.
    bool valid() const noexcept { return h_ && !h_.promise().link; }

private:
    friend struct detail::context_access;
    handle_type h_{};
};

template <class T>
async_context<T> detail::context_promise<T>::get_return_object() noexcept {
    return async_context<T>(std::coroutine_handle<context_promise>::from_promise(*this));
}

/// Runs body(resource) between the acquire and release halves of `ctx` and
/// returns its value; see the header comment for every exit path.
template <class T, class F, class R = detail::with_result_t<F, T>>
task<R> with(async_context<T> ctx, F body) {
    T& r = co_await detail::context_access::enter(ctx);
    detail::body_outcome<R> out;
    try {
        if constexpr (std::is_void_v<R>) co_await body(r);
        else out.set(co_await body(r));
    } catch (...) {
        out.fail();
    }
    std::exception_ptr released;
    try {
        co_await detail::context_access::release_after(ctx, out);
    } catch (...) {
        released = std::current_exception();
    }
    co_return out.conclude_one(released);
}

/// Awaits `aw` (a value with aclose()), runs body(value), then awaits
/// value.aclose() shielded; same rules as with(ctx, body).
template <class A, class F, class V = detail::await_result_t<A>,
          class R = detail::with_result_t<F, std::remove_reference_t<V>>>
requires(!detail::is_async_context<std::remove_cvref_t<A>>::value &&
         detail::closeable<std::remove_reference_t<V>>) task<R> with(A aw, F body) {
    decltype(auto) obj = co_await static_cast<A&&>(aw);
    detail::body_outcome<R> out;
    co_await detail::run_body(out, body, obj);
    std::exception_ptr released;
    try {
        co_await shield(obj.aclose());
    } catch (...) {
        released = std::current_exception();
    }
    co_return out.conclude(detail::one_error(std::move(released)));
}

/// contextlib.AsyncExitStack: async cleanups unwound in LIFO order when the
/// with_exit_stack() body ends. Made only by with_exit_stack().
class async_exit_stack {
public:
    async_exit_stack(const async_exit_stack&) = delete;
    async_exit_stack& operator=(const async_exit_stack&) = delete;

    /// Enters `ctx` (runs it up to its co_yield) and returns its resource;
    /// its release runs when the stack unwinds. An awaitable of a value
    /// with aclose() is accepted too: the value is kept in the stack.
    template <class T>
    task<T&> enter(async_context<T> ctx) {
        auto e = std::make_unique<context_entry<T>>(std::move(ctx));
        entries_.reserve(entries_.size() + 1);
        T& r = co_await detail::context_access::enter(e->ctx);
        entries_.push_back(std::move(e));
        co_return r;
    }
    /// Awaits `aw` (an awaitable whose value has aclose()) and registers that value's aclose()
    /// to run when the stack closes; returns a reference to the value, owned by the stack.
    template <class A, class V = std::remove_cvref_t<detail::await_result_t<A>>>
    requires(!detail::is_async_context<std::remove_cvref_t<A>>::value && detail::closeable<V>) task<V&> enter(A aw) {
        entries_.reserve(entries_.size() + 1);
        auto e = std::make_unique<closeable_entry<V>>(co_await static_cast<A&&>(aw));
        V& r = e->value;
        entries_.push_back(std::move(e));
        co_return r;
    }

    /// Registers an async callback: f() or f(const context_exit&), returning
    /// a task<void> (or any awaitable of void).
    template <class F>
    void push(F f) {
        entries_.push_back(std::make_unique<callback_entry<F>>(std::move(f)));
    }

    /// Entries registered and not unwound yet.
    std::size_t size() const noexcept { return entries_.size(); }

private:
    template <class F, class R>
    friend task<R> detail::with_exit_stack_impl(F body);

    async_exit_stack() = default;

    struct entry {
        virtual ~entry() = default;
        virtual task<void> exit(const context_exit& how) = 0;
    };
    template <class T>
    struct context_entry final : entry {
        explicit context_entry(async_context<T> c) : ctx(std::move(c)) {}
        task<void> exit(const context_exit& how) override { co_await detail::context_access::release(ctx, how); }
        async_context<T> ctx;
    };
    template <class V>
    struct closeable_entry final : entry {
        explicit closeable_entry(V&& v) : value(std::move(v)) {}
        task<void> exit(const context_exit&) override { co_await value.aclose(); }
        V value;
    };
    template <class F>
    struct callback_entry final : entry {
        explicit callback_entry(F fn) : f(std::move(fn)) {}
        task<void> exit(const context_exit& how) override {
            if constexpr (std::is_invocable_v<F&, const context_exit&>) co_await f(how);
            else co_await f();
        }
        F f;
    };

    /// Unwinds every entry, newest first, collecting their errors.
    task<void> unwind(context_exit how, std::vector<std::exception_ptr>& errors) {
        while (!entries_.empty()) {
            try {
                co_await entries_.back()->exit(how);
            } catch (...) {
                errors.push_back(std::current_exception());
            }
            entries_.pop_back();
        }
    }

    std::vector<std::unique_ptr<entry>> entries_;
};

namespace detail {
template <class F, class R>
task<R> with_exit_stack_impl(F body) {
    async_exit_stack st;
    detail::body_outcome<R> out;
    co_await detail::run_body(out, body, st);
    std::vector<std::exception_ptr> errors;
    co_await shield(st.unwind(out.how(), errors));
    co_return out.conclude(std::move(errors));
}
}  // namespace detail

/// Runs body(stack) and then unwinds the stack; see async_exit_stack.
template <class F, class R = detail::with_result_t<F, async_exit_stack>>
task<R> with_exit_stack(F body) {
    return detail::with_exit_stack_impl<F, R>(std::move(body));
}

}  // namespace corio
