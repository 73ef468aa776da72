// corio/stream.hpp: async_generator adaptors that compose with a pipe, and
// the concurrent stream operators.
//
//   auto batches = from_range(ids) | map(fetch) | batch(100, 50ms);
//   while (auto b = co_await batches.next()) ...
//
// Every adaptor takes its source generator by value (pipe an rvalue:
// `std::move(g) | map(f)`) and returns a new lazy async_generator; nothing
// runs until the first next(). Callables are taken by value (GCC PR 100611:
// name a lambda before passing it when it has non-trivial captures).
//
// Sequential adaptors run on the consumer's chain, exactly like a generator
// body (cancellation, scopes and errors as in generator.hpp):
// - map(f): f(item), awaited when f returns an awaitable (a task).
// - filter(pred), take_while(pred): pred may return bool or an awaitable of bool.
// - take(n): at most n items; the (n+1)th is never pulled.
// - enumerate(start = 0): std::pair<std::size_t, T>.
// - throttle(limiter&): each item waits for one token of the limiter.
// - from_range(r): the elements of r (copied from an lvalue range, which
//   must outlive the generator; moved from an rvalue range, which the
//   generator owns). to_vector(gen) -> task<std::vector<T>>.
//
// Concurrent adaptors run work while the consumer is away (read-ahead):
// - buffer(n): a pump pulls the source ahead, at most n items ahead of the
//   consumer. merge(g1, g2, ...): pulls every source at once, items
//   interleaved as they arrive. map_concurrent(n, f): f on at most n items at
//   once, output in input order; map_unordered(n, f): in completion order.
// - batch(max_size, max_wait) / batch(gen, max_size, max_wait) ->
//   async_generator<std::vector<T>>: a batch is emitted when it holds
//   max_size items, or max_wait after its first item arrived (not after the
//   previous flush), and the partial tail at end of stream; never an empty
//   batch. The deadline never cancels a pending pull: the source keeps being
//   pulled concurrently, so a flush loses nothing. A source error is raised
//   by the next() after the one that delivered the items collected before it.
// - as_completed(range of tasks or awaitables) ->
//   async_generator<result<T>>: each operand's outcome in completion order.
// - for_each_concurrent(gen, n, fn) -> task<void>: fn on at most n items at
//   once; the first error of fn cancels the others and the pulling, and is
//   rethrown once all have finished. Fully structured: it is one await.
// Errors: an error of the source or of f is raised at its position in the
// output, after the items before it; the adaptor then stops, cancels and
// awaits its in-flight work. A cancelled consumer (inside next()) cancels the
// adaptor's in-flight work, waits for it to finish and then sees
// cancelled_error; the adaptor is finished afterwards (partial batches and
// buffered items are dropped).
//
// The structured rule, and destruction mid-stream: the in-flight work of a
// concurrent adaptor runs as hidden tasks under the adaptor's own scope.
// Whenever the adaptor stops inside a next() (end of stream, an error, the
// consumer's cancellation) it cancels them and waits for all of them before
// that next() returns: nothing it started outlives it. A C++ destructor
// cannot wait, so destroying a concurrent adaptor between two next() calls
// cancels its in-flight work at once, and that work finishes at the loop's
// next turn, without the consumer (every suspension it attempts throws
// cancelled_error, so it only unwinds); the adaptor's state (its source
// generator, buffered items, f) lives until the last of them has finished.
// A source suspended inside a corio operation at that moment therefore runs
// its cancellation handlers and destructors one loop turn after the adaptor
// was destroyed: it must not reference the consumer's locals from them (run
// the stream to its end, or stop it inside next(), for a fully structured
// end). run() waits for this work like for any task. Sequential adaptors
// have no such work: destroying them is immediate (generator.hpp).
//
// Bad input: batch(0, ...), a negative max_wait, buffer(0),
// map_concurrent(0, f), map_unordered(0, f), for_each_concurrent(g, 0, f)
// throw std::invalid_argument when called.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "cancel.hpp"
#include "detail/awaitable_traits.hpp"
#include "detail/park.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"
#include "generator.hpp"
#include "limiter.hpp"
#include "loop.hpp"
#include "queue.hpp"
#include "result.hpp"
#include "semaphore.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "time.hpp"

namespace corio {

namespace detail {

// ------------------------------------------------------------ plumbing ---

/// A pipe stage: `gen | stage` calls stage.f(std::move(gen)).
template <class F>
struct stage {
    F f;
};
template <class F>
stage<F> make_stage(F f) {
    return stage<F>{std::move(f)};
}

/// How an item of async_generator<T> is passed on: an rvalue for values, the
/// reference itself for reference generators.
template <class T>
using item_arg_t = std::conditional_t<std::is_reference_v<T>, T, T&&>;

template <class R, bool = awaitable<R>>
struct maybe_awaited {
    using type = R;
};
template <class R>
struct maybe_awaited<R, true> {
    using type = await_result_t<R>;
};
/// What calling f with an item gives once awaited (when it is awaitable).
template <class F, class A>
using call_value_t = typename maybe_awaited<std::invoke_result_t<F&, A>>::type;

/// Calls f(a), awaiting the result when it is an awaitable.
template <class R, class F, class A>
task<R> call_awaiting(F& f, A&& a) {
    if constexpr (awaitable<std::invoke_result_t<F&, A&&>>) {
        if constexpr (std::is_void_v<R>) co_await std::invoke(f, static_cast<A&&>(a));
        else co_return co_await std::invoke(f, static_cast<A&&>(a));
    } else {
        if constexpr (std::is_void_v<R>) std::invoke(f, static_cast<A&&>(a));
        else co_return std::invoke(f, static_cast<A&&>(a));
    }
}

inline void require_positive(std::size_t n, const char* what) {
    if (n == 0) throw std::invalid_argument(std::string("corio: ") + what + " must be at least 1");
}

// --------------------------------------------------------------- crew ---

/// The in-flight work of a concurrent adaptor: hidden tasks whose root
/// scopes hang under one scope of the adaptor's own (not linked into the
/// loop's tree: only the adaptor cancels them). `live` counts the child
/// frames that exist (a crew_ticket in each keeps it), so a child cancelled
/// before it ever ran is counted out when its frame is destroyed.
class crew {
public:
    crew() noexcept = default;
    crew(const crew&) = delete;
    crew& operator=(const crew&) = delete;

    /// Starts `t` (which holds a crew_ticket of this crew) at the loop's next turn.
    void spawn(scheduler& sched, task<void> t) {
        join_handle<void> detached =
            loop_access::make_handle<void>(loop_access::start(loop_access::loop_of(sched), std::move(t), {}, &scope_));
    }
    /// Cancels every child (level-triggered; later children start cancelled).
    void cancel() noexcept { cancel_scope_node(&scope_); }
    bool cancelled() const noexcept { return scope_.cancel_called; }
    std::size_t live() const noexcept { return live_; }

    class join_awaiter;
    /// Waits until every child has finished. Cancelling the waiter cancels
    /// the children and keeps waiting; the await yields whether the waiter
    /// was cancelled meanwhile.
    join_awaiter join() noexcept;

    void enlist() noexcept { ++live_; }
    inline void child_done() noexcept;

private:
    inner_scope scope_;
    std::size_t live_ = 0;
    join_awaiter* joiner_ = nullptr;
};

class crew::join_awaiter : wakeable {
public:
    explicit join_awaiter(crew& c) noexcept : c_(&c) {}
    bool await_ready() const noexcept { return c_->live_ == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) noexcept {
        c_->joiner_ = this;
        if (begin_park(caller, ch_)) {
            finish_park(ch_, this, &on_cancel, h_, caller);
        } else {
            // Cancelled already: the join is no cancellation point (it cancels
            // the children and waits for them all the same), so it suspends
            // unparked, as on_cancel leaves it.
            h_ = caller;
            cancelled_ = true;
            c_->cancel();  // wakes the children through the queue: none finishes inline
        }
        return true;
    }
    bool await_resume() const noexcept { return cancelled_; }

    void finished() noexcept {
        if (!cancelled_) ch_->unpark();
        ch_->sched->schedule(h_);
    }

private:
    static void on_cancel(wakeable* w) noexcept {
        auto* self = static_cast<join_awaiter*>(w);
        self->cancelled_ = true;  // the chain is no longer parked; keep waiting
        self->c_->cancel();
    }
    crew* c_;
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    bool cancelled_ = false;
};

inline crew::join_awaiter crew::join() noexcept { return join_awaiter(*this); }

inline void crew::child_done() noexcept {
    if (--live_ == 0 && joiner_) std::exchange(joiner_, nullptr)->finished();
}

/// A child's share of its adaptor's state (a coroutine parameter: destroyed
/// with the child's frame, even when the child never ran).
template <class S>
class crew_ticket {
public:
    explicit crew_ticket(std::shared_ptr<S> s) noexcept : s_(std::move(s)) { s_->work.enlist(); }
    crew_ticket(crew_ticket&&) noexcept = default;
    crew_ticket& operator=(crew_ticket&&) = delete;
    ~crew_ticket() {
        if (s_) s_->work.child_done();
    }
    S& operator*() const noexcept { return *s_; }
    S* operator->() const noexcept { return s_.get(); }
    const std::shared_ptr<S>& share() const noexcept { return s_; }

private:
    std::shared_ptr<S> s_;
};

/// In an adaptor's frame: cancels the in-flight work if the frame goes away
/// with work still running (destruction between two next() calls).
class cancel_on_exit {
public:
    explicit cancel_on_exit(crew& c) noexcept : c_(c) {}
    cancel_on_exit(const cancel_on_exit&) = delete;
    cancel_on_exit& operator=(const cancel_on_exit&) = delete;
    ~cancel_on_exit() {
        if (c_.live() != 0) c_.cancel();
    }

private:
    crew& c_;
};

/// The end of every concurrent adaptor: stop the work if it ended early,
/// wait for all of it, then raise the first error (the consumer's own, then
/// the work's, then a cancellation seen while waiting).
inline task<void> finish_crew(crew& c, std::exception_ptr err, std::exception_ptr work_error) {
    if (err) c.cancel();
    const bool cancelled = co_await c.join();
    if (!err) err = work_error;
    if (!err && cancelled) err = promise_base::shared_cancellation();
    if (err) std::rethrow_exception(err);
}

/// Records the exception being handled unless it is a cancellation.
inline void keep_first_error(std::exception_ptr& slot) noexcept {
    if (!slot && !current_exception_is_cancellation()) slot = std::current_exception();
}

// ------------------------------------------------------- sequential ---

template <class T, class F>
async_generator<std::remove_cvref_t<call_value_t<F, item_arg_t<T>>>> map_gen(async_generator<T> src, F f) {
    using U = std::remove_cvref_t<call_value_t<F, item_arg_t<T>>>;
    static_assert(!std::is_void_v<U>, "corio::map: f must return a value");
    while (auto v = co_await src.next()) {
        if constexpr (awaitable<std::invoke_result_t<F&, item_arg_t<T>>>) {
            U u = co_await std::invoke(f, static_cast<item_arg_t<T>>(*v));
            co_yield std::move(u);
        } else {
            U u = std::invoke(f, static_cast<item_arg_t<T>>(*v));
            co_yield std::move(u);
        }
    }
}

template <class T, class P>
task<bool> test_item(P& pred, std::add_lvalue_reference_t<std::remove_reference_t<T>> item) {
    if constexpr (awaitable<std::invoke_result_t<P&, decltype(item)>>)
        co_return static_cast<bool>(co_await std::invoke(pred, item));
    else co_return static_cast<bool>(std::invoke(pred, item));
}

template <class T, class P>
async_generator<T> filter_gen(async_generator<T> src, P pred) {
    while (auto v = co_await src.next()) {
        bool keep = co_await test_item<T>(pred, *v);
        if (!keep) continue;
        if constexpr (std::is_reference_v<T>) co_yield *v;
        else co_yield std::move(*v);
    }
}

template <class T, class P>
async_generator<T> take_while_gen(async_generator<T> src, P pred) {
    while (auto v = co_await src.next()) {
        bool keep = co_await test_item<T>(pred, *v);
        if (!keep) co_return;
        if constexpr (std::is_reference_v<T>) co_yield *v;
        else co_yield std::move(*v);
    }
}

template <class T>
async_generator<T> take_gen(async_generator<T> src, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto v = co_await src.next();
        if (!v) co_return;
        if constexpr (std::is_reference_v<T>) co_yield *v;
        else co_yield std::move(*v);
    }
}

template <class T>
async_generator<std::pair<std::size_t, T>> enumerate_gen(async_generator<T> src, std::size_t i) {
    while (auto v = co_await src.next()) {
        if constexpr (std::is_reference_v<T>) co_yield std::pair<std::size_t, T>(i++, *v);
        else co_yield std::pair<std::size_t, T>(i++, std::move(*v));
    }
}

template <class T>
async_generator<T> throttle_gen(async_generator<T> src, limiter& lim) {
    while (auto v = co_await src.next()) {
        co_await lim.acquire();
        if constexpr (std::is_reference_v<T>) co_yield *v;
        else co_yield std::move(*v);
    }
}

template <class R>
using range_value_t = std::remove_cvref_t<decltype(*std::begin(std::declval<R&>()))>;

/// R is an lvalue reference (the caller keeps the range) or a value (owned).
template <class R>
async_generator<range_value_t<R>> range_gen(R r) {
    for (auto&& x : r) {
        if constexpr (std::is_reference_v<R>) co_yield static_cast<const range_value_t<R>&>(x);
        else co_yield std::move(x);
    }
}

// ------------------------------------------------------------ buffer ---

template <class T>
struct buffer_state {
    buffer_state(async_generator<T> s, std::size_t n) : src(std::move(s)), room(static_cast<std::ptrdiff_t>(n)) {}
    async_generator<T> src;
    semaphore room;     // a permit per item pulled and not yet taken by the consumer
    queue<T> items{0};  // bounded by `room`
    std::exception_ptr error;
    crew work;
};

template <class T>
task<void> buffer_pump(crew_ticket<buffer_state<T>> t) {
    buffer_state<T>& s = *t;
    try {
        for (;;) {
            auto p = co_await s.room.acquire();
            auto v = co_await s.src.next();
            if (!v) break;
            p.detach();  // given back by the consumer when it takes the item
            (void)s.items.try_put(std::move(*v));
        }
    } catch (...) {
        keep_first_error(s.error);
    }
    s.items.close();
}

template <class T>
async_generator<T> buffer_gen(async_generator<T> src, std::size_t n) {
    using V = std::remove_reference_t<T>;
    static_assert(!std::is_reference_v<T>, "corio::buffer: a reference generator's items cannot be read ahead");
    auto s = std::make_shared<buffer_state<V>>(std::move(src), n);
    cancel_on_exit guard(s->work);
    chain* c = co_await this_chain{};
    s->work.spawn(*c->sched, buffer_pump(crew_ticket(s)));
    std::exception_ptr err;
    try {
        for (;;) {
            V v = co_await s->items.get();
            s->room.release();
            co_yield std::move(v);
        }
    } catch (const queue_closed&) {
    } catch (...) {
        err = std::current_exception();
    }
    co_await finish_crew(s->work, err, s->error);
}

// ------------------------------------------------------------- merge ---

template <class T>
struct merge_state {
    std::vector<async_generator<T>> srcs;
    queue<T> items{1};
    std::size_t running = 0;
    std::exception_ptr error;
    crew work;
};

template <class T>
task<void> merge_pump(crew_ticket<merge_state<T>> t, std::size_t i) {
    merge_state<T>& s = *t;
    try {
        while (auto v = co_await s.srcs[i].next()) co_await s.items.put(std::move(*v));
    } catch (...) {
        if (!s.error && !current_exception_is_cancellation()) {
            s.error = std::current_exception();
            s.work.cancel();  // the first error stops the other sources
        }
    }
    if (--s.running == 0 || s.error) s.items.close();
}

template <class T>
async_generator<T> merge_gen(std::vector<async_generator<T>> srcs) {
    auto s = std::make_shared<merge_state<T>>();
    s->srcs = std::move(srcs);
    cancel_on_exit guard(s->work);
    chain* c = co_await this_chain{};
    s->running = s->srcs.size();
    for (std::size_t i = 0; i < s->srcs.size(); ++i) s->work.spawn(*c->sched, merge_pump(crew_ticket(s), i));
    std::exception_ptr err;
    if (s->running != 0) {
        try {
            for (;;) {
                T v = co_await s->items.get();
                co_yield std::move(v);
            }
        } catch (const queue_closed&) {
        } catch (...) {
            err = std::current_exception();
        }
    }
    co_await finish_crew(s->work, err, s->error);
}

// ------------------------------------------------ map_concurrent / unordered ---

template <class U>
struct map_cell {
    std::optional<U> value;
    std::exception_ptr error;
    bool done = false;
};

template <class T, class U, class F>
struct map_state {
    map_state(async_generator<T> s, std::size_t n, F fn, bool ord)
        : src(std::move(s)), f(std::move(fn)), slots(static_cast<std::ptrdiff_t>(n)), ordered(ord) {}
    async_generator<T> src;
    F f;
    semaphore slots;                                 // a permit per item in flight or not yet taken by the consumer
    std::deque<std::shared_ptr<map_cell<U>>> cells;  // input order (ordered) or completion order
    event changed;
    bool src_done = false;
    std::exception_ptr error;  // the source's
    std::size_t in_flight = 0;
    bool ordered;
    crew work;
};

template <class S, class U, class V>
task<void> map_worker(crew_ticket<S> t, std::shared_ptr<map_cell<U>> cell, V item) {
    S& s = *t;
    try {
        U u = co_await call_awaiting<U>(s.f, std::move(item));
        cell->value.emplace(std::move(u));
    } catch (...) {
        cell->error = std::current_exception();
    }
    cell->done = true;
    --s.in_flight;
    if (!s.ordered) s.cells.push_back(std::move(cell));
    s.changed.set();
}

template <class S, class U, class V>
task<void> map_pump(crew_ticket<S> t) {
    S& s = *t;
    chain* c = co_await this_chain{};
    try {
        for (;;) {
            auto p = co_await s.slots.acquire();
            auto v = co_await s.src.next();
            if (!v) break;
            p.detach();  // given back when the consumer takes the result
            auto cell = std::make_shared<map_cell<U>>();
            if (s.ordered) s.cells.push_back(cell);
            ++s.in_flight;
            s.work.spawn(*c->sched, map_worker<S, U, V>(crew_ticket<S>(t.share()), std::move(cell), V(std::move(*v))));
        }
    } catch (...) {
        keep_first_error(s.error);
    }
    s.src_done = true;
    s.changed.set();
}

template <class T, class F>
using map_out_t = std::remove_cvref_t<call_value_t<F, std::remove_cvref_t<T>&&>>;

template <class T, class F>
async_generator<map_out_t<T, F>> map_concurrent_gen(async_generator<T> src, std::size_t n, F f, bool ordered) {
    using V = std::remove_cvref_t<T>;
    using U = map_out_t<T, F>;
    using S = map_state<T, U, F>;
    auto s = std::make_shared<S>(std::move(src), n, std::move(f), ordered);
    cancel_on_exit guard(s->work);
    chain* c = co_await this_chain{};
    s->work.spawn(*c->sched, map_pump<S, U, V>(crew_ticket(s)));
    std::exception_ptr err;
    try {
        for (;;) {
            s->changed.clear();
            if (!s->cells.empty() && s->cells.front()->done) {
                auto cell = std::move(s->cells.front());
                s->cells.pop_front();
                s->slots.release();
                if (cell->error) {
                    err = cell->error;
                    break;
                }
                co_yield std::move(*cell->value);
                continue;
            }
            if (s->src_done && s->in_flight == 0 && s->cells.empty()) break;
            co_await s->changed.wait();
        }
    } catch (...) {
        err = std::current_exception();
    }
    co_await finish_crew(s->work, err, s->error);
}

// ------------------------------------------------------------- batch ---

template <class T>
struct batch_state {
    batch_state(async_generator<T> s, std::size_t n, clock::duration w) : src(std::move(s)), max(n), wait(w) {
        cur.reserve(n);
    }
    async_generator<T> src;
    std::size_t max;
    clock::duration wait;
    std::vector<std::remove_cvref_t<T>> cur;  // the batch being filled
    clock::time_point first_at{};             // when its first item arrived
    event arrived;                            // pump -> consumer: first item, full, or end
    event room;                               // consumer -> pump: the full batch was taken
    bool done = false;
    std::exception_ptr error;
    crew work;
};

template <class T>
task<void> batch_pump(crew_ticket<batch_state<T>> t) {
    batch_state<T>& s = *t;
    try {
        while (auto v = co_await s.src.next()) {
            while (s.cur.size() >= s.max) {
                s.room.clear();
                co_await s.room.wait();
            }
            if (s.cur.empty()) {
                s.first_at = now();
                s.arrived.set();
            }
            s.cur.push_back(std::move(*v));
            if (s.cur.size() == s.max) s.arrived.set();
        }
    } catch (...) {
        keep_first_error(s.error);
    }
    s.done = true;
    s.arrived.set();
}

/// Waits until the batch is full, old enough, or the stream ended; never
/// cancels the pump's pending pull.
template <class T>
task<void> batch_ready(batch_state<T>& s) {
    for (;;) {
        s.arrived.clear();
        if (s.cur.size() >= s.max || s.done) co_return;
        if (s.cur.empty()) {
            co_await s.arrived.wait();
            continue;
        }
        const clock::time_point due = saturating_add(s.first_at, s.wait);
        if (now() >= due) co_return;
        co_await move_on_at(due, s.arrived.wait());
    }
}

template <class T>
async_generator<std::vector<std::remove_cvref_t<T>>> batch_gen(async_generator<T> src, std::size_t max,
                                                               clock::duration wait) {
    using V = std::remove_cvref_t<T>;
    auto s = std::make_shared<batch_state<T>>(std::move(src), max, wait);
    cancel_on_exit guard(s->work);
    chain* c = co_await this_chain{};
    s->work.spawn(*c->sched, batch_pump(crew_ticket(s)));
    std::exception_ptr err;
    try {
        for (;;) {
            co_await batch_ready(*s);
            if (s->cur.empty()) break;  // the stream ended
            std::vector<V> out;
            out.reserve(max);
            out.swap(s->cur);
            s->room.set();
            co_yield std::move(out);
        }
    } catch (...) {
        err = std::current_exception();
    }
    co_await finish_crew(s->work, err, s->error);
}

// ------------------------------------------------------ as_completed ---

template <class T>
task<result<T>> settle_task(task<T> t) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            co_return result<void>();
        } else {
            co_return result<T>(co_await std::move(t));
        }
    } catch (...) {
        co_return result<T>(std::current_exception());
    }
}

template <class A>
task<await_result_t<A>> awaitable_task(A a) {
    co_return co_await std::move(a);
}

template <class A>
auto stream_task(A&& a) {
    if constexpr (requires { typename task_traits<std::remove_cvref_t<A>>::value_type; }) return std::move(a);
    else return awaitable_task<std::remove_cvref_t<A>>(std::move(a));
}

template <class T>
struct completed_state {
    std::deque<result<T>> done;
    event changed;
    crew work;
};

template <class T>
task<void> completion_worker(crew_ticket<completed_state<T>> t, task<T> job) {
    result<T> r = co_await settle_task(std::move(job));
    t->done.push_back(std::move(r));
    t->changed.set();
}

template <class T>
async_generator<result<T>> as_completed_gen(std::vector<task<T>> jobs) {
    auto s = std::make_shared<completed_state<T>>();
    cancel_on_exit guard(s->work);
    chain* c = co_await this_chain{};
    const std::size_t n = jobs.size();
    for (auto& j : jobs) s->work.spawn(*c->sched, completion_worker(crew_ticket(s), std::move(j)));
    jobs.clear();
    std::exception_ptr err;
    try {
        for (std::size_t given = 0; given < n; ++given) {
            s->changed.clear();
            if (s->done.empty()) co_await s->changed.wait();
            result<T> r = std::move(s->done.front());
            s->done.pop_front();
            co_yield std::move(r);
        }
    } catch (...) {
        err = std::current_exception();
    }
    co_await finish_crew(s->work, err, nullptr);
}

// ------------------------------------------------ for_each_concurrent ---

template <class F>
struct fec_state {
    fec_state(std::size_t n, F fn) : slots(static_cast<std::ptrdiff_t>(n)), f(std::move(fn)) {}
    semaphore slots;
    F f;
    std::exception_ptr error;
    cancel_scope* pulling = nullptr;
    crew work;
};

template <class S, class V>
task<void> fec_worker(crew_ticket<S> t, semaphore::permit p, V item) {
    S& s = *t;
    try {
        co_await call_awaiting<void>(s.f, std::move(item));
    } catch (...) {
        if (!s.error && !current_exception_is_cancellation()) {
            s.error = std::current_exception();
            s.work.cancel();
            if (s.pulling) s.pulling->cancel();
        }
    }
    p.release();
}

template <class T, class S>
task<void> fec_pull(async_generator<T>& gen, std::shared_ptr<S> s) {
    using V = std::remove_cvref_t<T>;
    chain* c = co_await this_chain{};
    for (;;) {
        auto p = co_await s->slots.acquire();
        auto v = co_await gen.next();
        if (!v) co_return;
        s->work.spawn(*c->sched, fec_worker<S, V>(crew_ticket<S>(s), std::move(p), V(std::move(*v))));
    }
}

template <class T, class F>
task<void> for_each_concurrent_task(async_generator<T>& gen, std::size_t n, F f) {
    using S = fec_state<F>;
    auto s = std::make_shared<S>(n, std::move(f));
    cancel_on_exit guard(s->work);
    std::exception_ptr err;
    cancel_scope pulling;
    s->pulling = &pulling;
    try {
        co_await pulling.run(fec_pull<T, S>(gen, s));
    } catch (...) {
        err = std::current_exception();
    }
    s->pulling = nullptr;
    co_await finish_crew(s->work, err, s->error);
}

template <class T, class F>
task<void> for_each_concurrent_owned(async_generator<T> gen, std::size_t n, F f) {
    co_await for_each_concurrent_task(gen, n, std::move(f));
}

}  // namespace detail

// ------------------------------------------------------------ public ---

/// `gen | stage`: applies an adaptor made by map(), filter(), batch(), ...
template <class T, class F>
auto operator|(async_generator<T>&& gen, detail::stage<F> s) {
    return std::move(s.f)(std::move(gen));
}

/// f(item) for every item; awaited when f returns an awaitable.
template <class F>
auto map(F f) {
    return detail::make_stage([f = std::move(f)]<class T>(async_generator<T>&& g) mutable {
        return detail::map_gen(std::move(g), std::move(f));
    });
}

/// The items for which pred(item) (bool, or an awaitable of bool) holds.
template <class P>
auto filter(P pred) {
    return detail::make_stage([p = std::move(pred)]<class T>(async_generator<T>&& g) mutable {
        return detail::filter_gen(std::move(g), std::move(p));
    });
}

/// The first n items (the item after them is never pulled).
inline auto take(std::size_t n) {
    return detail::make_stage([n]<class T>(async_generator<T>&& g) { return detail::take_gen(std::move(g), n); });
}

/// Items while pred(item) holds; stops at the first that fails it.
template <class P>
auto take_while(P pred) {
    return detail::make_stage([p = std::move(pred)]<class T>(async_generator<T>&& g) mutable {
        return detail::take_while_gen(std::move(g), std::move(p));
    });
}

/// (index, item) pairs, counting from `start`.
inline auto enumerate(std::size_t start = 0) {
    return detail::make_stage(
        [start]<class T>(async_generator<T>&& g) { return detail::enumerate_gen(std::move(g), start); });
}

/// Each item waits for a token of `lim` (which must outlive the generator).
inline auto throttle(limiter& lim) {
    return detail::make_stage(
        [&lim]<class T>(async_generator<T>&& g) { return detail::throttle_gen(std::move(g), lim); });
}

/// Pulls the source ahead of the consumer, at most n items.
inline auto buffer(std::size_t n) {
    detail::require_positive(n, "buffer(n): n");
    return detail::make_stage([n]<class T>(async_generator<T>&& g) { return detail::buffer_gen(std::move(g), n); });
}

/// f on at most n items at once; results in input order.
template <class F>
auto map_concurrent(std::size_t n, F f) {
    detail::require_positive(n, "map_concurrent(n, f): n");
    return detail::make_stage([n, f = std::move(f)]<class T>(async_generator<T>&& g) mutable {
        return detail::map_concurrent_gen(std::move(g), n, std::move(f), true);
    });
}

/// f on at most n items at once; results in completion order.
template <class F>
auto map_unordered(std::size_t n, F f) {
    detail::require_positive(n, "map_unordered(n, f): n");
    return detail::make_stage([n, f = std::move(f)]<class T>(async_generator<T>&& g) mutable {
        return detail::map_concurrent_gen(std::move(g), n, std::move(f), false);
    });
}

/// Batches of at most max_size items, emitted when full or max_wait after
/// their first item arrived; the partial tail at end of stream.
template <class T, class Rep, class Period>
async_generator<std::vector<std::remove_cvref_t<T>>> batch(async_generator<T> gen, std::size_t max_size,
                                                           std::chrono::duration<Rep, Period> max_wait) {
    detail::require_positive(max_size, "batch(max_size, max_wait): max_size");
    if (max_wait < std::chrono::duration<Rep, Period>::zero())
        throw std::invalid_argument("corio: batch(max_size, max_wait): max_wait must not be negative");
    return detail::batch_gen(std::move(gen), max_size, detail::to_clock_duration(max_wait));
}

/// Size-only batching: batch(max_size).
template <class Rep = clock::rep, class Period = clock::period>
auto batch(std::size_t max_size,
           std::chrono::duration<Rep, Period> max_wait = std::chrono::duration<Rep, Period>::max()) {
    detail::require_positive(max_size, "batch(max_size, max_wait): max_size");
    if (max_wait < std::chrono::duration<Rep, Period>::zero())
        throw std::invalid_argument("corio: batch(max_size, max_wait): max_wait must not be negative");
    return detail::make_stage(
        [max_size, max_wait]<class T>(async_generator<T>&& g) { return batch(std::move(g), max_size, max_wait); });
}

/// Pulls every source at once; items interleaved as they arrive. All
/// sources must have the same item type.
template <class T, class... More>
async_generator<T> merge(async_generator<T> first, More... more) {
    static_assert((std::is_same_v<More, async_generator<T>> && ...),
                  "corio::merge: every source must be an async_generator<T> of the same T");
    static_assert(!std::is_reference_v<T>, "corio::merge: reference generators cannot be merged");
    std::vector<async_generator<T>> srcs;
    srcs.reserve(1 + sizeof...(More));
    srcs.push_back(std::move(first));
    (srcs.push_back(std::move(more)), ...);
    return detail::merge_gen(std::move(srcs));
}

/// The elements of a range: copied from an lvalue (which must outlive the
/// generator), moved from an rvalue (owned by the generator).
template <class R>
auto from_range(R&& r) {
    if constexpr (std::is_lvalue_reference_v<R>) return detail::range_gen<R>(r);
    else return detail::range_gen<std::remove_cvref_t<R>>(std::move(r));
}

/// Every item of gen, in a vector.
template <class T>
task<std::vector<std::remove_cvref_t<T>>> to_vector(async_generator<T> gen) {
    std::vector<std::remove_cvref_t<T>> out;
    while (auto v = co_await gen.next()) {
        if constexpr (std::is_reference_v<T>) out.push_back(*v);
        else out.push_back(std::move(*v));
    }
    co_return out;
}

/// fn(item) on at most n items at once (awaited when it returns an
/// awaitable). The first error cancels the rest and the pulling, and is
/// rethrown once everything has finished.
template <class T, class F>
task<void> for_each_concurrent(async_generator<T>& gen, std::size_t n, F fn) {
    detail::require_positive(n, "for_each_concurrent(gen, n, fn): n");
    return detail::for_each_concurrent_task(gen, n, std::move(fn));
}
/// for_each_concurrent() over a generator passed as a temporary (it lives until the call ends).
template <class T, class F>
task<void> for_each_concurrent(async_generator<T>&& gen, std::size_t n, F fn) {
    detail::require_positive(n, "for_each_concurrent(gen, n, fn): n");
    return detail::for_each_concurrent_owned(std::move(gen), n, std::move(fn));
}

/// The outcome of every operand (tasks or awaitables), in completion order.
/// The operands are taken (moved) from the range at once and start at the
/// first next(). Dropping the generator early cancels the rest.
template <class R>
auto as_completed(R&& range) {
    using E = std::remove_cvref_t<decltype(*std::begin(range))>;
    using Task = decltype(detail::stream_task(std::declval<E&>()));
    using T = typename task_traits<Task>::value_type;
    std::vector<task<T>> jobs;
    for (auto&& e : range) jobs.push_back(detail::stream_task(e));
    return detail::as_completed_gen<T>(std::move(jobs));
}

}  // namespace corio
