// corio/gather.hpp: gather(), gather_settled(), gather_limited(), race(), wait().
//
// Structured combinators: no child outlives the `co_await` that started it,
// on success, on error and on cancellation, so children may reference the
// caller's locals.
//
// Operands. A `task<T>` is *owned*: the combinator takes it over (an lvalue
// task is moved from) and runs it as a child of the awaiting task, inside the
// caller's cancel scopes, so cancelling the caller cancels it. A
// `join_handle<T>&` is *observed*: cancelling the caller stops the wait, never
// the task behind the handle (use h.cancel()). Any other awaitable (sleep(),
// shield(...), ...) is moved into an adapter task and owned. Children start
// inline, in argument order, when the combinator is awaited.
//
// - gather(a, b, ...) → std::tuple<A, B, ...> (void → std::monostate);
//   gather(range) → std::vector<T> in input order. The first child to fail
//   (an error, or a child that ended cancelled, e.g. an observed handle whose
//   task was cancelled) cancels the others; they are awaited, then that first
//   error is rethrown. Errors the others raise while being cancelled are
//   discarded. Children not started yet when it happens never run.
// - gather_settled(...) → std::tuple<result<A>, ...> / std::vector<result<T>>:
//   every child runs to its end; never throws for a child's error.
// - gather_limited(n, range) → std::vector<T>: like gather(range) with at most
//   n children running at once (started in input order); n == 0 throws
//   std::invalid_argument at the call.
// - race(a, b, ...) → std::variant<A, B, ...> (std::in_place_index of the
//   winner); race(range) → std::pair<std::size_t, T>. The first child to
//   finish wins, with a value or an error; the others are cancelled and
//   awaited before race returns the value or rethrows the error. race() of an
//   empty range throws std::invalid_argument.
// - All of the above are cancellation points. In a cancelled scope they start
//   nothing and throw cancelled_error. When the caller is cancelled while they
//   wait, every owned child is cancelled, all are awaited, and cancelled_error
//   is thrown (gather_settled too) unless a child failed with a real error
//   first, which wins. Awaiting a combinator with no children completes at
//   once.
// - wait(handles, return_when, [timeout]) is asyncio.wait over join_handles:
//   it observes and cancels nothing. It returns when the condition holds
//   (first_completed: some task finished; first_exception: some task failed
//   with an error, or all finished; all_completed) or the timeout expired,
//   with pointers to the handles in `done` and `pending`, in input order.
//   `handles` is an lvalue range of join_handle<T>; it must not be empty
//   (std::invalid_argument) and may not hold an empty handle
//   (invalid_state_error). A cancellation point; the results stay in the
//   handles.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/child_chain.hpp"
#include "detail/recycled_array.hpp"
#include "detail/wait_list.hpp"
#include "detail/scheduler.hpp"
#include "errors.hpp"
#include "loop.hpp"
#include "result.hpp"
#include "task.hpp"
#include "time.hpp"

namespace corio {

namespace detail {

/// A range whose elements can be combinator operands.
template <class R>
concept operand_range = std::ranges::input_range<R> && !is_task<std::remove_cvref_t<R>>::value &&
                        requires(std::ranges::range_reference_t<R> e) {
    as_task(static_cast<std::ranges::range_reference_t<R>>(e));
};

/// The task<T> type a range's elements become.
template <class R>
using range_task_t = decltype(as_task(std::declval<std::ranges::range_reference_t<R>>()));

/// Collects a range's operands as tasks (moving tasks out of it; an rvalue
/// range of join_handles is moved, an lvalue one is observed).
template <class R>
auto collect_tasks(R&& r) {
    using T = range_task_t<R>;
    if constexpr (std::is_same_v<std::remove_cvref_t<R>, std::vector<T>> && !std::is_lvalue_reference_v<R>) {
        return std::vector<T>(std::move(r));
    } else {
        std::vector<T> out;
        if constexpr (std::ranges::sized_range<R>) out.reserve(std::ranges::size(r));
        for (auto&& e : r) {
            if constexpr (!std::is_lvalue_reference_v<R> && !std::is_lvalue_reference_v<decltype(e)>)
                out.push_back(as_task(std::forward<decltype(e)>(e)));
            else if constexpr (!std::is_lvalue_reference_v<R> && !std::is_const_v<std::remove_reference_t<decltype(e)>>)
                out.push_back(as_task(std::move(e)));  // the range is going away: own its elements
            else out.push_back(as_task(e));
        }
        return out;
    }
}

template <class T>
using task_value_t = typename std::remove_cvref_t<T>::value_type;

// ---------------------------------------------------------------- engine ---
//
// One coroutine runs every combinator below: it binds the children to the
// engine (combinator, child_chain.hpp), runs them, concludes (rethrows the
// first error, or cancelled_error), then a projection turns the finished
// tasks into the combinator's value. A combinator is a mode plus a
// projection: values (gather), settled results (gather_settled), the winner
// (race), over a tuple of tasks or a vector of them (gather_limited is
// gather's vector with a limit).

/// The engine's slots for a tuple of tasks (in the frame) or a vector (pooled).
template <class Tasks>
struct slots_for;

template <class... T>
struct slots_for<std::tuple<task<T>...>> {
    union {  // raw, as the vector's: combinator::bind constructs each slot (trivially destructible)
        child_slot slots[sizeof...(T) > 0 ? sizeof...(T) : 1];
    };
    explicit slots_for(const std::tuple<task<T>...>&) noexcept {}
    child_slot* data() noexcept { return slots; }
};

template <class T>
struct slots_for<std::vector<task<T>>> {
    recycled_array<child_slot> slots;  // raw: combinator::bind constructs each slot
    explicit slots_for(const std::vector<task<T>>& ts) : slots(ts.size(), for_overwrite) {}
    child_slot* data() noexcept { return slots.data(); }
};

template <class... T>
void bind_tasks(combinator& g, std::tuple<task<T>...>& ts) {
    std::apply([&](task<T>&... t) { (require_valid(t), ...); }, ts);
    std::size_t i = 0;
    std::apply([&](task<T>&... t) { (g.bind(i++, t.handle()), ...); }, ts);
}

template <class T>
void bind_tasks(combinator& g, std::vector<task<T>>& ts) {
    for (std::size_t i = 0; i < ts.size(); ++i) {
        require_valid(ts[i]);
        g.bind(i, ts[i].handle());
    }
}

template <class... T>
constexpr std::size_t task_count(const std::tuple<task<T>...>&) noexcept {
    return sizeof...(T);
}
template <class T>
std::size_t task_count(const std::vector<task<T>>& ts) noexcept {
    return ts.size();
}

/// gather: every child's value, in argument order.
struct project_values {
    static constexpr combine_mode mode = combine_mode::all;
    template <class... T>
    static std::tuple<value_or_monostate_t<T>...> make(const combinator&, std::tuple<task<T>...>& ts) {
        return std::apply([](task<T>&... t) { return std::tuple<value_or_monostate_t<T>...>(take_value(t)...); }, ts);
    }
    template <class T>
    static std::vector<value_or_monostate_t<T>> make(const combinator&, std::vector<task<T>>& ts) {
        std::vector<value_or_monostate_t<T>> out;
        out.reserve(ts.size());
        for (auto& t : ts) out.push_back(take_value(t));
        return out;
    }
};

/// gather_settled: every child's outcome as a result<T>.
struct project_settled {
    static constexpr combine_mode mode = combine_mode::settled;
    template <class... T>
    static std::tuple<result<T>...> make(const combinator&, std::tuple<task<T>...>& ts) {
        return std::apply([](task<T>&... t) { return std::tuple<result<T>...>(take_settled(t)...); }, ts);
    }
    template <class T>
    static std::vector<result<T>> make(const combinator&, std::vector<task<T>>& ts) {
        std::vector<result<T>> out;
        out.reserve(ts.size());
        for (auto& t : ts) out.push_back(take_settled(t));
        return out;
    }
};

/// race: the winner's value, at its index.
struct project_winner {
    static constexpr combine_mode mode = combine_mode::race;
    template <class... T>
    static std::variant<value_or_monostate_t<T>...> make(const combinator& g, std::tuple<task<T>...>& ts) {
        return std::apply([&](task<T>&... t) { return pick(g.winner, std::index_sequence_for<T...>{}, t...); }, ts);
    }
    template <class T>
    static std::pair<std::size_t, value_or_monostate_t<T>> make(const combinator& g, std::vector<task<T>>& ts) {
        return {g.winner, take_value(ts[g.winner])};
    }

private:
    template <std::size_t... I, class... T>
    static std::variant<value_or_monostate_t<T>...> pick(std::size_t w, std::index_sequence<I...>, task<T>&... ts) {
        std::optional<std::variant<value_or_monostate_t<T>...>> out;
        ((w == I ? (void)out.emplace(std::in_place_index<I>, take_value(ts)) : (void)0), ...);
        return std::move(*out);
    }
};

template <class Project, class Tasks>
using projected_t = decltype(Project::make(std::declval<const combinator&>(), std::declval<Tasks&>()));

/// The one child-running coroutine: `ts` (a tuple or a vector of tasks) run
/// as children of the awaiting chain under Project's mode, at most `limit`
/// at once; its value is Project's view of the finished children.
template <class Project, class Tasks>
task<projected_t<Project, Tasks>> run_children(Tasks ts, std::size_t limit = no_index) {
    slots_for<Tasks> slots(ts);
    combinator g(slots.data(), task_count(ts), Project::mode, limit);
    bind_tasks(g, ts);
    co_await launch_children{g};
    g.conclude();
    co_return Project::make(g, ts);
}

template <class... A>
concept variadic_operands = !(sizeof...(A) == 1 && (operand_range<A> && ...));

}  // namespace detail

/// Runs every operand concurrently; their values in argument order. The first
/// failure cancels the rest, awaits them and is rethrown. Cancellation point.
template <class... A>
requires detail::variadic_operands<A...>
auto gather(A&&... operands) {
    return detail::run_children<detail::project_values>(std::make_tuple(detail::as_task(std::forward<A>(operands))...));
}

/// gather over a range (tasks are moved out of it): a vector in input order.
template <detail::operand_range R>
auto gather(R&& range) {
    return detail::run_children<detail::project_values>(detail::collect_tasks(std::forward<R>(range)));
}

/// Runs every operand to its end; each outcome as a result<T>, in argument
/// order. Never throws for a child's error; throws cancelled_error when the
/// caller is cancelled. Cancellation point.
template <class... A>
requires detail::variadic_operands<A...>
auto gather_settled(A&&... operands) {
    return detail::run_children<detail::project_settled>(
        std::make_tuple(detail::as_task(std::forward<A>(operands))...));
}

/// gather_settled over a range: a vector<result<T>> in input order.
template <detail::operand_range R>
auto gather_settled(R&& range) {
    return detail::run_children<detail::project_settled>(detail::collect_tasks(std::forward<R>(range)));
}

/// gather(range) with at most `limit` children running at once.
/// limit == 0 throws std::invalid_argument. Cancellation point.
template <detail::operand_range R>
auto gather_limited(std::size_t limit, R&& range) {
    if (limit == 0) throw std::invalid_argument("corio: gather_limited() needs a limit of at least 1");
    return detail::run_children<detail::project_values>(detail::collect_tasks(std::forward<R>(range)), limit);
}

/// The first operand to finish wins: a variant holding its value (at its
/// argument index), or its error rethrown, after the others were cancelled
/// and awaited. Cancellation point.
template <class... A>
requires(sizeof...(A) > 0 && detail::variadic_operands<A...>) auto race(A&&... operands) {
    return detail::run_children<detail::project_winner>(std::make_tuple(detail::as_task(std::forward<A>(operands))...));
}

/// race over a range: {index of the winner, its value}. An empty range throws
/// std::invalid_argument.
template <detail::operand_range R>
auto race(R&& range) {
    auto ts = detail::collect_tasks(std::forward<R>(range));
    if (ts.empty()) throw std::invalid_argument("corio: race() of an empty range");
    return detail::run_children<detail::project_winner>(std::move(ts));
}

// ------------------------------------------------------------------ wait ---

/// When wait() returns, as in asyncio.wait: at the first task to finish, at the first error, or when all finished.
enum class return_when : unsigned char { first_completed, first_exception, all_completed };

/// What wait() returns: the handles of the tasks that finished and of those still running.
template <class T>
struct wait_result {
    /// The handles whose task finished, in input order.
    std::vector<join_handle<T>*> done;
    /// The handles whose task still runs, in input order.
    std::vector<join_handle<T>*> pending;
};

namespace detail {

class wait_awaiter : wake_timer {
public:
    wait_awaiter(std::vector<spawn_state*> states, return_when when, std::optional<clock::duration> timeout)
        : states_(std::move(states)), when_(when), timeout_(timeout) {}
    wait_awaiter(const wait_awaiter&) = delete;
    wait_awaiter& operator=(const wait_awaiter&) = delete;
    ~wait_awaiter() { detach(); }

    bool await_ready() const noexcept { return satisfied(); }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) {
        if (!begin_park(caller, ch_)) {
            cancelled_ = true;
            return false;
        }
        scheduler& sched = *ch_->sched;
        clock::time_point due = clock::time_point::max();
        if (timeout_) {
            due = saturating_add(sched.now(), *timeout_);
            if (due <= sched.now()) return false;  // a zero timeout: report the state as it is
        }
        nodes_.resize(states_.size());
        for (std::size_t i = 0; i < states_.size(); ++i) {
            if (states_[i]->finished()) {
                ++finished_;
                continue;
            }
            nodes_[i].self = this;
            nodes_[i].state = states_[i];
            nodes_[i].fn = &on_done;
            states_[i]->add_observer(&nodes_[i]);
        }
        deadline = due;
        if (due != clock::time_point::max()) sched.add_timer(this);
        finish_park(ch_, this, &on_notify, h_, caller);
        return true;
    }

    void await_resume() const {
        if (cancelled_) throw cancelled_error{};
    }

private:
    struct node : observer {
        wait_awaiter* self = nullptr;
        spawn_state* state = nullptr;
    };

    bool satisfied() const noexcept {
        std::size_t finished = 0;
        for (spawn_state* s : states_) {
            if (!s->finished()) continue;
            ++finished;
            if (when_ == return_when::first_completed) return true;
            if (when_ == return_when::first_exception && s->status == task_status::failed) return true;
        }
        return finished == states_.size();
    }

    /// One more task finished while parked: O(1), no rescan.
    bool satisfied_after(spawn_state* s) noexcept {
        ++finished_;
        if (when_ == return_when::first_completed) return true;
        if (when_ == return_when::first_exception && s->status == task_status::failed) return true;
        return finished_ == states_.size();
    }

    void detach() noexcept {
        for (node& n : nodes_) n.unlink();
        if (ch_) ch_->sched->remove_timer(this);
    }

    void wake() noexcept {
        detach();
        ch_->unpark();
        ch_->sched->schedule(h_);
    }

    static void on_done(observer* o) noexcept {
        node* n = static_cast<node*>(o);
        if (n->self->satisfied_after(n->state)) n->self->wake();
    }
    /// The timeout came (the heap popped the node: no longer queued), or the
    /// chain's scope was cancelled (still queued, or no timeout).
    static void on_notify(wakeable* w) noexcept {
        auto* self = static_cast<wait_awaiter*>(static_cast<wake_timer*>(w));
        if (self->deadline_came()) {
            self->wake();
            return;
        }
        self->detach();
        self->cancelled_ = true;
        self->ch_->sched->schedule(self->h_);
    }

    std::vector<spawn_state*> states_;
    std::vector<node> nodes_;
    return_when when_;
    std::optional<clock::duration> timeout_;
    std::size_t finished_ = 0;
    chain* ch_ = nullptr;
    std::coroutine_handle<> h_{};
    bool cancelled_ = false;
};

template <class T>
task<wait_result<T>> wait_impl(std::vector<join_handle<T>*> hs, return_when when,
                               std::optional<clock::duration> timeout) {
    std::vector<spawn_state*> states;
    states.reserve(hs.size());
    for (join_handle<T>* h : hs) states.push_back(detail::loop_access::task_context(*h));
    co_await wait_awaiter(std::move(states), when, timeout);
    wait_result<T> out;
    for (join_handle<T>* h : hs) (h->done() ? out.done : out.pending).push_back(h);
    co_return out;
}

template <class R>
auto collect_handles(R& handles) {
    using H = std::remove_cvref_t<std::ranges::range_reference_t<R&>>;
    static_assert(is_join_handle<H>::value, "corio::wait() takes a range of join_handle<T>");
    std::vector<H*> hs;
    for (auto& h : handles) {
        if (!h.valid())
            throw invalid_state_error(
                "corio: wait() was given an empty join_handle (moved-from or default-constructed)");
        hs.push_back(&h);
    }
    if (hs.empty()) throw std::invalid_argument("corio: wait() of no handles");
    return hs;
}

}  // namespace detail

/// asyncio.wait: waits until `when` holds over the tasks behind `handles`;
/// cancels nothing. Cancellation point.
template <std::ranges::input_range R>
auto wait(R& handles, return_when when = return_when::all_completed) {
    return detail::wait_impl(detail::collect_handles(handles), when, std::nullopt);
}

/// wait() that also returns when `timeout` of loop time has passed (the
/// tasks keep running; they are in `pending`).
template <std::ranges::input_range R, class Rep, class Period>
auto wait(R& handles, return_when when, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_impl(detail::collect_handles(handles), when,
                             std::optional<clock::duration>(detail::to_clock_duration(timeout)));
}

}  // namespace corio
