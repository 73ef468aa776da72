// corio/detail/awaitable_traits.hpp: what `co_await a` yields, for any awaitable.
//
// get_awaiter(a) applies a member or free operator co_await if there is one;
// await_result_t<A> is the type `co_await std::declval<A>()` produces.
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

namespace corio::detail {

template <class A>
concept has_member_co_await = requires(A&& a) {
    static_cast<A&&>(a).operator co_await();
};

template <class A>
concept has_free_co_await = requires(A&& a) {
    operator co_await(static_cast<A&&>(a));
};

template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (has_member_co_await<A>) return static_cast<A&&>(a).operator co_await();
    else if constexpr (has_free_co_await<A>) return operator co_await(static_cast<A&&>(a));
    else return static_cast<A&&>(a);
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A>()));

template <class A>
using await_result_t = decltype(std::declval<std::remove_reference_t<awaiter_t<A>>&>().await_resume());

}  // namespace corio::detail
