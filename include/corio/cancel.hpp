// corio/cancel.hpp: cancel scopes, timeouts, shield and cancellation tokens.
//
// The model (Trio's, under asyncio's names):
// - Every spawned task has a root cancel scope; scopes nest. Cancelling a
//   scope is level-triggered: from then on every corio operation inside it
//   that would suspend throws cancelled_error instead, until the scope is left.
//   A suspended operation is woken at once. An operation that completes
//   without suspending may complete. yield_now() always checks.
// - A cancelled_error belongs to the outermost cancelled, unshielded scope
//   around the suspension point. Only that scope absorbs it
//   (cancel_scope::run, move_on_after) or converts it (timeout ->
//   timeout_error); inner scopes let it pass. A scope ends "cancelled caught"
//   only if a cancelled_error reached its boundary: an operand that swallows
//   the cancellation and returns without suspending again keeps its value.
// - shield(aw) runs aw outside every enclosing scope's cancellation; the
//   cancellation is seen again at the first suspension after the shield.
// - Deadlines live on the loop's timer heap (no Asio timer per scope); a
//   deadline removed before it fires leaves nothing behind. `now() + d`
//   saturates; a negative or zero duration is already expired: it cancels at
//   the first suspension, and an operand that never suspends still returns.
// - Owned vs observed: a task<T> operand runs inline in the caller's task
//   and scopes; a join_handle operand is only observed (cancelling the scope
//   interrupts the await, not the task).
// - Operands: any awaitable, passed as a temporary (a primitive's operation
//   is moved in: no frame of its own) or as an lvalue (held by reference),
//   or a callable returning one, called inside a task that keeps it alive.
// - Tokens are for interop and unstructured cases: cancellation_source::
//   cancel() is thread-safe and may be called from any thread; the wake-up of
//   a task under with_token(tok, aw) runs on that task's loop. A token is not
//   a scope: with_token lets cancelled_error propagate, nothing absorbs it.
// - Loop-affine: scopes are used on the loop that runs them; cancel_scope::
//   cancel() must be called on that loop's thread (use a token across threads).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <asio/post.hpp>

#include "detail/awaitable_traits.hpp"
#include "detail/scheduler.hpp"
#include "detail/scope_record.hpp"
#include "detail/scoped.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"
#include "time.hpp"

namespace corio {

/// A cancel scope: `cancel_scope s{deadline}; auto r = co_await s.run(aw);`
/// r is std::optional<T> (bool for void), empty (false) when this scope's own
/// cancellation cut `aw` short; the scope absorbs it. A cancellation that
/// belongs to an outer scope passes through. Runs once. Not movable: it is
/// linked into the scope tree while it runs.
class cancel_scope {
public:
    cancel_scope() noexcept = default;
    /// A scope with an absolute deadline (loop time).
    explicit cancel_scope(clock::time_point deadline) noexcept : rec_(deadline) {}
    cancel_scope(const cancel_scope&) = delete;
    cancel_scope& operator=(const cancel_scope&) = delete;

    /// Runs `aw` inside this scope. A task<T> is owned (runs inline, cancelled
    /// with the scope); a join_handle lvalue is observed.
    template <class A>
    auto run(A&& aw) {
        return detail::scoped<detail::on_own_cancel::absorb, true, detail::stored_operand<detail::operand_t<A>>>(
            &rec_, detail::as_operand(std::forward<A>(aw)));
    }

    /// Cancels the scope (level-triggered). Before run(): it starts cancelled.
    /// After it finished: no effect. Idempotent. Call on the loop's thread.
    void cancel() noexcept {
        if (rec_.current_phase() == detail::scope_record::phase::finished) return;
        detail::cancel_scope_node(&rec_);
    }

    /// Moves the deadline; time_point::max() removes it, a past time cancels
    /// at the next suspension. Before run() it sets the starting deadline.
    /// Throws invalid_state_error once the scope has finished.
    void reschedule(clock::time_point deadline) { rec_.reschedule(deadline); }

    /// The deadline (time_point::max() when none).
    clock::time_point deadline() const noexcept { return rec_.deadline; }
    /// cancel() was called or the deadline expired (while the scope ran).
    bool cancel_called() const noexcept { return rec_.cancel_called; }
    /// The scope absorbed a cancellation at its boundary.
    bool cancelled_caught() const noexcept { return rec_.cancelled_caught; }
    /// True while run() is awaiting the scope's operand.
    bool running() const noexcept { return rec_.current_phase() == detail::scope_record::phase::running; }
    /// True once run() has returned or thrown.
    bool finished() const noexcept { return rec_.current_phase() == detail::scope_record::phase::finished; }

private:
    detail::scope_record rec_;
};

/// Runs `aw` with a deadline `d` from now. Returns its value, or throws
/// timeout_error when this deadline cut it short (after `aw` has finished its
/// cleanup). Cancellation from outside passes through as cancelled_error.
template <class A, class Rep, class Period>
auto timeout(std::chrono::duration<Rep, Period> d, A&& aw) {
    return detail::scoped_for<detail::on_own_cancel::throw_timeout, detail::operand_t<A>>(
        detail::to_clock_duration(d), detail::as_operand(std::forward<A>(aw)));
}

/// timeout() with an absolute deadline.
template <class A>
auto timeout_at(clock::time_point deadline, A&& aw) {
    return detail::scoped_for<detail::on_own_cancel::throw_timeout, detail::operand_t<A>>(
        deadline, false, detail::as_operand(std::forward<A>(aw)));
}

/// Runs `aw` with a deadline `d` from now: std::optional<T> (bool for void),
/// empty (false) when the deadline cut it short.
template <class A, class Rep, class Period>
auto move_on_after(std::chrono::duration<Rep, Period> d, A&& aw) {
    return detail::scoped_for<detail::on_own_cancel::absorb, detail::operand_t<A>>(
        detail::to_clock_duration(d), detail::as_operand(std::forward<A>(aw)));
}

/// move_on_after() with an absolute deadline.
template <class A>
auto move_on_at(clock::time_point deadline, A&& aw) {
    return detail::scoped_for<detail::on_own_cancel::absorb, detail::operand_t<A>>(
        deadline, false, detail::as_operand(std::forward<A>(aw)));
}

/// Runs `aw` unaffected by every enclosing scope's cancellation (for cleanup).
/// The caller waits for it; its value or exception passes through.
template <class A>
auto shield(A&& aw) {
    return detail::scoped_for<detail::on_own_cancel::pass, detail::operand_t<A>>(
        clock::time_point::max(), true, detail::as_operand(std::forward<A>(aw)));
}

// ---------------------------------------------------------------------------
// Tokens

/// A read-only view of a cancellation_source: cheap to copy, thread-safe.
/// A default-constructed token is never cancelled.
class cancellation_token {
public:
    cancellation_token() noexcept = default;
    /// A token observing `t`.
    explicit cancellation_token(std::stop_token t) noexcept : t_(std::move(t)) {}

    /// True once its source was cancelled. Thread-safe.
    bool cancelled() const noexcept { return t_.stop_requested(); }
    /// False for a default-constructed token (no source).
    bool can_be_cancelled() const noexcept { return t_.stop_possible(); }
    /// For std::jthread / std::stop_callback interop.
    const std::stop_token& stop_token() const noexcept { return t_; }

private:
    std::stop_token t_;
};

/// Owns a cancellation state. cancel() is thread-safe and idempotent. A child
/// source made from a parent token is cancelled when the parent is.
class cancellation_source {
public:
    cancellation_source() = default;
    /// A source cancelled with `parent` (and by its own cancel()).
    explicit cancellation_source(const cancellation_token& parent) {
        if (parent.cancelled()) src_.request_stop();
        else if (parent.can_be_cancelled())
            link_ = std::make_unique<std::stop_callback<forward_stop>>(parent.stop_token(), forward_stop{src_});
    }
    /// Takes over `o`'s stop state.
    cancellation_source(cancellation_source&&) = default;
    /// Takes over `o`'s stop state.
    cancellation_source& operator=(cancellation_source&&) = default;

    /// A token observing this source.
    cancellation_token token() const noexcept { return cancellation_token(src_.get_token()); }
    /// Returns true when this call did the cancelling.
    bool cancel() noexcept { return src_.request_stop(); }
    /// True once cancel() was called (here or through a parent). Thread-safe.
    bool cancelled() const noexcept { return src_.stop_requested(); }

private:
    struct forward_stop {
        std::stop_source target;
        void operator()() noexcept { target.request_stop(); }
    };
    std::stop_source src_;
    std::unique_ptr<std::stop_callback<forward_stop>> link_;
};

/// Runs `fn` once when the token is cancelled (at once, on this thread, if it
/// already is; otherwise on the cancelling thread). The destructor
/// deregisters; if `fn` is running on another thread it waits for it, so the
/// state `fn` touches may be destroyed right after.
class cancellation_registration {
public:
    cancellation_registration() noexcept = default;
    /// Calls `fn` once when `tok` is cancelled (at once, on this thread, if it already is),
    /// on the thread that cancels; destroying the registration unregisters it.
    cancellation_registration(const cancellation_token& tok, std::function<void()> fn)
        : cb_(std::make_unique<std::stop_callback<std::function<void()>>>(tok.stop_token(), std::move(fn))) {}

    /// Deregisters now (same guarantee as the destructor).
    void reset() noexcept { cb_.reset(); }

private:
    std::unique_ptr<std::stop_callback<std::function<void()>>> cb_;
};

namespace detail {

/// Shared between a with_token run and the token's callback; the callback may
/// run on any thread, the cancellation is applied on the loop's thread.
struct token_link {
    scope_node* scope = nullptr;  // null once the run left its scope
};

template <class A, class R = await_result_t<A>>
task<R> run_with_token(cancellation_token tok, A aw) {
    scope_record rec;
    chain* ch = co_await this_chain{};
    rec.enter(ch);
    struct leave_on_exit {
        scope_record& r;
        ~leave_on_exit() { r.leave(); }
    } exit{rec};
    auto link = std::make_shared<token_link>();
    link->scope = &rec;
    struct unlink_guard {
        token_link& l;
        ~unlink_guard() { l.scope = nullptr; }
    } unlink{*link};
    if (tok.cancelled()) {
        cancel_scope_node(&rec);
    }
    auto ex = detail::loop_access::loop_of(*ch->sched).get_executor();
    cancellation_registration reg(tok, [link, ex] {
        asio::post(ex, [link] {
            if (link->scope) cancel_scope_node(link->scope);
        });
    });
    co_return co_await static_cast<A&&>(aw);
}

}  // namespace detail

/// Runs `aw` under `tok`: when the token is cancelled (from any thread) `aw`
/// is cancelled and cancelled_error propagates (nothing absorbs it).
template <class A>
auto with_token(cancellation_token tok, A&& aw) {
    return detail::run_with_token<detail::stored_operand<detail::operand_t<A>>>(
        std::move(tok), detail::as_operand(std::forward<A>(aw)));
}

}  // namespace corio
