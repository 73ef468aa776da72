// corio/task_group.hpp: with_task_group() and task_group (Trio's nursery,
// asyncio's TaskGroup).
//
//   auto r = co_await corio::with_task_group([&](corio::task_group& tg) -> corio::task<R> {
//       auto h = tg.spawn(child(), "name");   // join_handle<T>
//       ...
//       co_return value;
//   });
//
// - The body runs inline in the calling task, inside the group's cancel
//   scope; children are spawned tasks (they start at the loop's next turn)
//   whose root scopes live under the group's scope. with_task_group returns
//   only when the body and every child have finished, whatever happens, so
//   children may reference the caller's locals. Children may spawn more
//   children while the group waits; a body that returns normally does not
//   start shutdown.
// - The first child (or the body) to fail with an error cancels the group's
//   scope: the body and every sibling get cancelled_error at their next
//   suspension. After all have finished the group throws
//   corio::exception_group holding every error that is not a cancellation,
//   in the order they happened: always wrapped, even a single error and even
//   a non-std exception. An inner group's exception_group is one error of the
//   outer group. Errors a group collected are not reported as unobserved.
// - Cancellation from outside reaches the body and every child through the
//   scope tree; the group then throws cancelled_error (unless some child or
//   the body failed with an error: then exception_group wins). A cancellation
//   that arrives while the group is aborting is kept: it belongs to the
//   caller's scope, so the caller's next suspension throws cancelled_error.
// - tg.cancel() cancels the group's scope (Trio's nursery.cancel_scope.cancel()):
//   the body and all children are cancelled and the group returns normally.
//   A non-void body cut short by it has no value: the group then throws
//   cancelled_error. A body that returns its value without suspending again
//   keeps it.
// - tg.spawn() after shutdown began (an error was recorded, tg.cancel(), the
//   body ended with an exception, the group's scope is cancelled or the group
//   finished) throws invalid_state_error; the task passed in is destroyed
//   without running.
// - Cancellation point: with_task_group in a cancelled scope still runs the
//   body, whose first suspension throws.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/child_chain.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace corio {

class task_group;

namespace detail {

template <class R>
struct body_value {
    std::optional<R> v;
    void set(R&& r) { v.emplace(std::move(r)); }
    R take() { return std::move(*v); }
};
template <class R>
struct body_value<R&> {
    R* p = nullptr;
    void set(R& r) { p = std::addressof(r); }
    R& take() { return *p; }
};
template <>
struct body_value<void> {};

template <class F>
using body_result_t = typename std::invoke_result_t<F&, task_group&>::value_type;

template <class F>
task<body_result_t<F>> run_task_group(F body);

}  // namespace detail

/// A nursery (asyncio.TaskGroup): children spawned into it all finish before with_task_group() returns.
class task_group {
public:
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    /// Starts `t` as a child of the group (at the loop's next turn).
    /// invalid_state_error once the group is shutting down (`t` is then
    /// destroyed without running).
    template <class T>
    join_handle<T> spawn(task<T> t, std::string_view name = {}) {
        if (closing_ || detail::scope_cancel_requested(&scope_, *sched_))
            throw invalid_state_error("corio: task_group::spawn after the group began shutting down");
        auto* node = new child_node;
        detail::spawn_state* s;
        try {
            s = detail::loop_access::start(detail::loop_access::loop_of(*sched_), std::move(t), name, &scope_);
        } catch (...) {
            delete node;
            throw;
        }
        node->group = this;
        node->state = s;
        node->fn = &on_child_done;
        s->add_observer(node);
        ++live_;
        return detail::loop_access::make_handle<T>(s);
    }

    /// Spawns any other awaitable (moved or copied into an adapter task), or
    /// a callable returning one (invoked inside the task, which keeps it alive).
    template <class A>
    requires(!detail::is_task<std::remove_cvref_t<A>>::value) auto spawn(A&& aw, std::string_view name = {}) {
        return spawn(detail::to_task(std::forward<A>(aw)), name);
    }

    /// Cancels the body and every child; the group then ends normally.
    void cancel() noexcept {
        closing_ = true;
        detail::cancel_scope_node(&scope_, ch_);
    }

    /// tg.cancel() was called, or the group is aborting after an error.
    bool cancel_called() const noexcept { return scope_.cancel_called; }
    /// Children that have not finished yet.
    std::size_t live() const noexcept { return live_; }

private:
    explicit task_group(detail::chain* c) noexcept : ch_(c), sched_(c->sched) {}

    template <class F>
    friend task<detail::body_result_t<F>> detail::run_task_group(F body);

    struct child_node : detail::observer, detail::pooled {
        task_group* group = nullptr;
        detail::spawn_state* state = nullptr;
    };

    void add_error(std::exception_ptr e) {
        errors_.push_back(std::move(e));
        closing_ = true;
        detail::cancel_scope_node(&scope_, ch_);
    }

    static void on_child_done(detail::observer* o) noexcept {
        auto* n = static_cast<child_node*>(o);
        task_group* g = n->group;
        detail::spawn_state* s = n->state;
        delete n;
        if (s->status == detail::task_status::failed) {
            s->error_observed = true;          // the group delivers it: never report it as unobserved
            g->add_error(s->promise().error);  // bad_alloc here terminates: noexcept
        } else if (s->status == detail::task_status::cancelled) {
            g->any_cancelled_ = true;
        }
        if (--g->live_ == 0 && g->waiter_) g->sched_->schedule(std::exchange(g->waiter_, {}));
    }

    /// `co_await children_done{g}` waits for every child; not interruptible
    /// (cancellation reaches the children through the scope tree instead).
    struct children_done {
        task_group& g;
        bool await_ready() const noexcept { return g.live_ == 0; }
        void await_suspend(std::coroutine_handle<> h) noexcept {
            g.waited_ = true;
            g.waiter_ = h;
        }
        void await_resume() const noexcept {}
    };

    detail::inner_scope scope_;
    detail::chain* ch_;  // the chain that runs the body (and entered scope_)
    detail::scheduler* sched_;
    std::vector<std::exception_ptr> errors_;
    std::size_t live_ = 0;
    std::coroutine_handle<> waiter_{};
    bool closing_ = false;
    bool waited_ = false;
    bool any_cancelled_ = false;
};

namespace detail {

template <class F>
task<body_result_t<F>> run_task_group(F body) {
    using R = body_result_t<F>;
    chain* c = co_await this_chain{};
    task_group tg(c);
    c->enter(&tg.scope_);
    std::exception_ptr body_error;
    bool body_cancelled = false;
    body_value<R> value;
    try {
        if constexpr (std::is_void_v<R>) co_await body(tg);
        else value.set(co_await body(tg));
    } catch (...) {
        body_cancelled = current_exception_is_cancellation();
        body_error = std::current_exception();
    }
    // Whether the group's own cancellation (tg.cancel(), an error) could have cut the body short.
    const bool own_cancel = tg.scope_.cancel_called;
    if (body_error) {
        // The body ending with an exception starts shutdown; a real error is
        // the group's, in the order it happened.
        if (!body_cancelled) tg.errors_.push_back(body_error);
        tg.closing_ = true;
        // Only children can see the group's scope cancelled now (no spawn is
        // accepted any more): with none left, the scope is just left. (A
        // cancellation bumps the epoch that owner lookups memoise under:
        // nested groups unwinding would otherwise cost O(depth) each.)
        if (tg.live_ != 0) cancel_scope_node(&tg.scope_, c);
    }
    co_await task_group::children_done{tg};
    tg.closing_ = true;
    c->leave(&tg.scope_);
    if (!tg.errors_.empty()) throw exception_group(std::move(tg.errors_));
    // Memoised while a cancellation unwinds nested groups: O(1) per level.
    const bool outer_cancelled = cancellation_owner(c->scope, *c->sched, c) != nullptr;
    if (body_cancelled) {
        // External cancellation, or one no scope of ours owns: pass it on.
        if (outer_cancelled || !own_cancel || !std::is_void_v<R>) std::rethrow_exception(body_error);
    } else if (outer_cancelled && (tg.waited_ || tg.any_cancelled_)) {
        throw cancelled_error{};  // the children were cut short by the caller's cancellation
    }
    if constexpr (!std::is_void_v<R>) co_return value.take();
}

}  // namespace detail

/// Runs `body(tg)` and every task it spawns into `tg`; returns the body's
/// value once all have finished. Throws exception_group when any failed,
/// cancelled_error when cancelled from outside. Cancellation point.
/// `body` is taken by value into the group's frame (GCC PR 100611).
template <class F>
requires std::is_invocable_v<F&, task_group&>
auto with_task_group(F body) { return detail::run_task_group(std::move(body)); }

}  // namespace corio
