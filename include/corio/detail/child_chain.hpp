// corio/detail/child_chain.hpp: running task<T>s as child chains of the
// awaiting chain (the engine under gather, gather_settled, gather_limited and
// race), plus the awaitable-to-task adapters those combinators share.
//
// Invariants:
// - A child_slot is one child chain. Its scope_node is linked under the
//   caller's innermost scope while the child runs and unlinked when it
//   finishes, so cancelling the caller reaches the child, and cancelling the
//   child's own node (the first failure, a race winner) reaches only it.
// - The frames stay owned by the combinator's task<T> objects; a finished
//   child stays suspended at final_suspend until its result is taken.
// - combinator::remaining counts unfinished children plus one held by the
//   launching await_suspend, so a child finishing synchronously while the
//   children are being started never resumes the parent before it suspended.
// - Children are started inline (nested scheduler::resume: a trampoline) in
//   argument order. A child started later (gather_limited) or the parent
//   resumed after the last child finished goes through scheduler::next_, never
//   a recursive resume: a run of synchronously finishing children does not
//   grow the stack.
// - No child outlives the await: the parent is resumed only when every
//   started child has finished; children not started yet when the combinator
//   stops (first failure, race winner) are never started, their frames are
//   destroyed with the combinator.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <variant>

#include "../errors.hpp"
#include "awaitable_traits.hpp"
#include "promise.hpp"
#include "scheduler.hpp"
#include "task_promise.hpp"
#include "to_task.hpp"

namespace corio {
// Public types the adapters below name; their headers (loop.hpp, result.hpp)
// define them before any of these templates is instantiated.
template <class T>
class join_handle;
template <class T>
class result;
}  // namespace corio

namespace corio::detail {

struct combinator;

struct child_slot : child_root {
    bool running = false;

    promise_base& promise() const noexcept { return promise_of(frame); }
};

enum class combine_mode : unsigned char {
    all,      // gather: the first failure (error or cancellation) stops the rest
    settled,  // gather_settled: every child runs to its end
    race,     // race: the first to finish, whatever its outcome, stops the rest
};

inline constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

/// The engine: runs n children (at most `limit` at once) under one mode. It is
/// the child_owner its slots report to, so another engine alive at the same
/// time (a nested gather, a race inside a child) never sees these children.
struct combinator : child_owner {
    combinator(child_slot* s, std::size_t count, combine_mode m, std::size_t max_running = no_index) noexcept
        : child_owner{&on_child_complete}, slots(s), n(count), limit(max_running), mode(m) {}
    combinator(const combinator&) = delete;
    combinator& operator=(const combinator&) = delete;

    child_slot* slots;
    std::size_t n;
    std::size_t limit;
    std::size_t next = 0;           // next slot to start
    std::size_t running = 0;        // started and not finished
    std::size_t remaining = 0;      // not finished (+1 while launching)
    std::size_t winner = no_index;  // first failure (all) or first finisher (race)
    chain* caller = nullptr;
    std::coroutine_handle<> parent{};
    combine_mode mode;
    bool stopping = false;
    bool suspended = false;
    bool any_cancelled = false;
    bool cancelled_at_start = false;

    /// Constructs slot i (its storage may be raw, see recycled_array) for frame h.
    void bind(std::size_t i, std::coroutine_handle<> h) noexcept {
        static_assert(std::is_trivially_destructible_v<child_slot>);
        child_slot* k = ::new (static_cast<void*>(slots + i)) child_slot;  // default-init: no zeroing pass
        k->frame = h;
        k->owner = this;
    }

    void prepare(child_slot& k) noexcept {
        k.ch.sched = caller->sched;
        k.ch.scope = &k;
        k.ch.waiter = nullptr;
        k.link_under(caller->scope);
        promise_base& p = k.promise();
        p.ch = &k.ch;
        p.link = promise_base::root_bit;  // the chain's outermost frame
        k.running = true;
        ++running;
    }

    /// Forgets the children not started yet: they will never run.
    void drop_unstarted() noexcept {
        remaining -= n - next;
        next = n;
    }

    void stop(std::size_t idx) noexcept {
        winner = idx;
        stopping = true;
        drop_unstarted();
        for (std::size_t j = 0; j < n; ++j)
            if (slots[j].running) cancel_scope_node(&slots[j]);
    }

    /// Starts the children; true when the caller must suspend.
    bool launch(std::coroutine_handle<> p, chain* c) {
        caller = c;
        parent = p;
        remaining = n + 1;
        scheduler& s = *c->sched;
        while (next < n && running < limit && !stopping) {
            child_slot& k = slots[next++];
            prepare(k);
            s.resume(k.frame);
        }
        if (stopping) drop_unstarted();
        if (--remaining == 0) return false;
        suspended = true;
        return true;
    }

    static void on_child_complete(child_root* r) noexcept {
        auto* k = static_cast<child_slot*>(r);
        combinator& g = *static_cast<combinator*>(k->owner);
        k->unlink();
        k->running = false;
        --g.running;
        const outcome st = k->promise().finished_as();
        if (st == outcome::cancelled) g.any_cancelled = true;
        if (!g.stopping && (g.mode == combine_mode::race || (g.mode == combine_mode::all && st != outcome::value)))
            g.stop(static_cast<std::size_t>(k - g.slots));
        if (g.limit != no_index && !g.stopping && g.next < g.n && g.running < g.limit && g.caller->cancel_requested()) {
            // gather_limited under a cancelled caller: start nothing more.
            g.any_cancelled = true;
            g.drop_unstarted();
        }
        scheduler& s = *g.caller->sched;
        if (--g.remaining == 0) {
            s.next_ = g.parent;  // remaining reaches 0 only once the parent has suspended
            return;
        }
        if (!g.stopping && g.next < g.n && g.running < g.limit) {
            child_slot& nk = g.slots[g.next++];
            g.prepare(nk);
            s.next_ = nk.frame;  // trampoline: no recursion through finishing children
        }
    }

    /// After the await: the first error, or cancelled_error when the caller's
    /// own cancellation cut the combinator short. Errors win over the
    /// caller's cancellation.
    void conclude() const {
        if (cancelled_at_start) throw cancelled_error{};
        const promise_base* w = winner == no_index ? nullptr : &slots[winner].promise();
        if (w && w->finished_as() == outcome::error) std::rethrow_exception(w->error);
        if ((suspended || any_cancelled) && caller->cancel_requested()) throw cancelled_error{};
        if (w && w->finished_as() == outcome::cancelled) std::rethrow_exception(w->error);
    }
};

/// `co_await launch_children{g}` runs g's children to completion (never throws itself).
struct launch_children {
    combinator& g;
    bool await_ready() const noexcept { return g.n == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        chain* c = chain_of(h);
        g.caller = c;
        if (c->cancel_requested()) {
            // In a cancelled scope, start nothing.
            g.cancelled_at_start = true;
            return false;
        }
        return g.launch(h, c);
    }
    void await_resume() const noexcept {}
};

// ------------------------------------------------------------- adapters ---

template <class T>
struct is_join_handle : std::false_type {};
template <class T>
struct is_join_handle<join_handle<T>> : std::true_type {};

template <class T>
task<T> observe_handle(join_handle<T>& h) {
    if constexpr (std::is_void_v<T>) co_await h;
    else co_return co_await h;
}

template <class T>
task<T> own_handle(join_handle<T> h) {
    if constexpr (std::is_void_v<T>) co_await h;
    else co_return co_await h;
}

/// A move-only awaitable named by the caller (an lvalue) is awaited in place:
/// the combinator is structured, so it outlives the await.
template <class A>
task<await_result_t<A&>> await_in_place(A& a) {
    if constexpr (std::is_void_v<await_result_t<A&>>) co_await a;
    else co_return co_await a;
}

/// Converts a combinator operand to the task<T> that runs it: a task is taken
/// over (moved from, lvalue or not), a join_handle lvalue is observed by
/// reference, a join_handle rvalue is moved into the observing task, any other
/// awaitable is moved (an rvalue) or copied (a copyable lvalue) into an
/// adapter task; a move-only lvalue (a primitive's operation the caller
/// named) is awaited in place; a callable returning an awaitable is called
/// inside a task that keeps it alive.
template <class A>
auto as_task(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (is_task<D>::value) {
        return D(std::move(a));
    } else if constexpr (is_join_handle<D>::value) {
        if constexpr (std::is_lvalue_reference_v<A> && !std::is_const_v<std::remove_reference_t<A>>)
            return observe_handle(a);
        else return own_handle(D(std::move(a)));
    } else if constexpr (awaitable_factory<A>) {
        return to_task(std::forward<A>(a));  // the callable lives in the task
    } else if constexpr (std::is_lvalue_reference_v<A> && !std::is_copy_constructible_v<D>) {
        return await_in_place(a);
    } else {
        return await_in_task<D>(std::forward<A>(a));
    }
}

template <class A>
using task_of_t = decltype(as_task(std::declval<A>()));

/// void → std::monostate, otherwise T.
template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Takes a finished child's value (rethrows its error); void gives monostate.
template <class T>
value_or_monostate_t<T> take_value(task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.handle().promise().take();
        return std::monostate{};
    } else {
        return t.handle().promise().take();
    }
}

/// A finished child's outcome as a result<T>.
template <class T>
result<T> take_settled(task<T>& t) {
    auto& p = t.handle().promise();
    if (p.finished_as() != outcome::value) return result<T>(p.error);
    if constexpr (std::is_void_v<T>) return result<T>();
    else return result<T>(p.take());
}

template <class T>
void require_valid(const task<T>& t) {
    if (!t.valid())
        throw invalid_state_error("corio: a combinator was given an empty task (moved-from or already awaited)");
}

}  // namespace corio::detail
