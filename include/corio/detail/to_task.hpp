// corio/detail/to_task.hpp: what the entry points take, and the adapter
// tasks that turn it into a task<T> (run, spawn, task_group::spawn and the
// combinators all go through to_task or as_operand).
//
// - An awaitable is moved (or, when copyable, copied) into an adapter task
//   that awaits it; a task<T> is taken over as it is.
// - A callable returning an awaitable is called inside the adapter task,
//   which keeps the callable (a lambda and its captures) alive for as long as
//   the coroutine it returned runs.
// - task<T> is only declared here (task.hpp defines it); the adapters are
//   templates, instantiated where task.hpp is included.
#pragma once

#include <type_traits>
#include <utility>

#include "awaitable_traits.hpp"
#include "task_promise.hpp"

namespace corio::detail {

// ------------------------------------------------- what entry points take ---
// Every entry point (run, spawn, task_group::spawn, the combinators) takes
// (a) any awaitable, or (b) a callable returning one: corio invokes it inside
// a task that keeps the callable (a lambda and its captures) alive for as
// long as the coroutine it returned runs.

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

template <class A>
concept awaitable_object = requires(A&& a) {
    get_awaiter(static_cast<A&&>(a)).await_ready();
};

/// A callable corio invokes itself (never an awaitable that happens to be callable).
template <class F>
concept awaitable_factory = !awaitable_object<F> && std::is_invocable_v<std::decay_t<F>&> &&
                            awaitable_object<std::invoke_result_t<std::decay_t<F>&>>;

template <class A>
task<await_result_t<A>> await_in_task(A a) {
    static_assert(std::is_move_constructible_v<A>,
                  "corio: this awaitable cannot be moved into a combinator or task; wrap it in a task, "
                  "e.g. [&]() -> corio::task<T> { co_return co_await aw; }");
    if constexpr (std::is_void_v<await_result_t<A>>) co_await std::move(a);
    else co_return co_await std::move(a);
}

/// Calls `f` and awaits what it returns; `f` lives in this frame meanwhile.
template <class F, class R = await_result_t<std::invoke_result_t<F&>>>
task<R> call_in_task(F f) {
    if constexpr (std::is_void_v<R>) co_await f();
    else co_return co_await f();
}

/// Anything an entry point takes, as the task<T> that runs it.
template <class A>
auto to_task(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (is_task<D>::value) return D(std::move(a));
    else if constexpr (awaitable_factory<A>) return call_in_task(std::decay_t<A>(std::forward<A>(a)));
    else {
        static_assert(awaitable_object<A>, "corio: expected an awaitable or a callable returning one");
        static_assert(!std::is_lvalue_reference_v<A> || std::is_copy_constructible_v<D>,
                      "corio: a named operation cannot be copied into a task; pass std::move(op), or the call "
                      "itself (spawn(q.get()))");
        return await_in_task<D>(std::forward<A>(a));
    }
}

template <class A>
using to_task_t = decltype(to_task(std::declval<A>()));

/// A combinator operand: a callable becomes the task that calls it; an
/// awaitable is passed on as it is (an lvalue stays a reference).
template <class A>
decltype(auto) as_operand(A&& a) {
    if constexpr (awaitable_factory<A>) return call_in_task(std::decay_t<A>(std::forward<A>(a)));
    else return static_cast<A&&>(a);
}

template <class A>
using operand_t = decltype(as_operand(std::declval<A>()));

}  // namespace corio::detail
