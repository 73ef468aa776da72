// tests/support/corio_test.hpp: helpers shared by corio's tests, on top of
// the public test kit corio/testing.hpp (CORIO_TEST_CASE, run_virtual, the
// expect_* helpers, manual_clock; read its header comment).
//
// Here only what the kit does not offer: `U` (10 ms), the time unit most
// cases count in, and `forever`; ended_cancelled(h), settle(), no_leak(),
// set_on_exit, owned(f) and since(t). Test cases are CORIO_TEST_CASE (or
// CORIO_TEST_CASE_WITH(corio::testing::real_time, ...) for real sockets,
// threads, signals), or corio::testing::run_virtual inside a TEST_CASE.
//
// testing.hpp makes REQUIRE/CHECK evaluate their expression once, so
// `REQUIRE(co_await x)` awaits once in every test file.
#pragma once

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <corio/corio.hpp>

#include "support/catch.hpp"  // all of Catch2 (v3: generators and matchers too)

#include <corio/testing.hpp>

namespace corio_test {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds U{10};
inline constexpr std::chrono::seconds forever{10};

/// Awaits `h`; true when its task ended cancelled.
template <class T>
corio::task<bool> ended_cancelled(corio::join_handle<T>& h) {
    try {
        co_await h;
    } catch (const corio::cancelled_error&) {
        co_return true;
    }
    co_return false;
}

/// Lets every ready task run a few times (a step that needs no clock).
inline corio::task<void> settle(int rounds = 4) {
    for (int i = 0; i < rounds; ++i) co_await corio::yield_now();
}

/// Sets `flag` when destroyed: shows that a frame holding it was cleaned up.
struct set_on_exit {
    bool& flag;
    ~set_on_exit() { flag = true; }
};

/// The check most cases end with: the caller's next suspension completes
/// after exactly U, so no cancellation leaked into it.
inline corio::task<void> no_leak() {
    auto t0 = corio::now();
    co_await corio::sleep(U);
    CHECK(corio::now() - t0 == U);
}

/// Runs a lambda coroutine with its closure kept alive in this frame (a
/// temporary lambda's captures would dangle once the full-expression ends).
template <class F>
auto owned(F f) -> decltype(f()) {
    if constexpr (std::is_void_v<typename decltype(f())::value_type>) co_await f();
    else co_return co_await f();
}

/// Loop time elapsed since `start`, in the loop's clock.
inline std::chrono::nanoseconds since(corio::clock::time_point start) { return corio::now() - start; }

}  // namespace corio_test
