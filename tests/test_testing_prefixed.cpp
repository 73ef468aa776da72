// Tests for corio/testing.hpp in a build that defines CATCH_CONFIG_PREFIX_ALL:
// Catch2's macros exist only as CATCH_TEST_CASE, CATCH_CHECK, ..., and the
// test kit (CORIO_TEST_CASE, its leak checks, expect_throws, run_virtual)
// must still compile and work. Built without the precompiled header, which
// includes Catch2 unprefixed.
#define CATCH_CONFIG_PREFIX_ALL
#include <corio/testing.hpp>

#include <chrono>
#include <stdexcept>

#if defined(CHECK) || defined(TEST_CASE) || defined(REQUIRE) || defined(INFO) || defined(FAIL)
#error "CATCH_CONFIG_PREFIX_ALL did not take effect: Catch2 was included before this file's define"
#endif

using namespace std::chrono_literals;
using corio::task;

CORIO_TEST_CASE("a coroutine case runs under virtual time with Catch2's macros prefixed") {
    auto t0 = corio::now();
    co_await corio::sleep(250ms);
    CATCH_CHECK(corio::now() - t0 == 250ms);  // exact: virtual time
    auto h = corio::spawn([]() -> task<int> {
        co_await corio::sleep(1s);
        co_return 7;
    }());
    CATCH_CHECK(co_await h == 7);  // one evaluation, as with the plain macros
}

task<void> fail_after(corio::clock::duration d) {
    co_await corio::sleep(d);
    throw std::runtime_error("boom");
}

CORIO_TEST_CASE("expect_throws and expect_cancelled work with prefixed macros") {
    std::runtime_error e = co_await corio::testing::expect_throws<std::runtime_error>(fail_after(5ms));
    CATCH_CHECK(std::string(e.what()) == "boom");
    auto h = corio::spawn(corio::sleep(1h));
    co_await corio::sleep(1ms);
    h.cancel();
    co_await corio::testing::expect_cancelled(h);
}

CORIO_TEST_CASE_WITH(corio::testing::expect_unhandled(1), "an expected unobserved error passes, under the prefix") {
    { auto dropped = corio::spawn(fail_after(1ms)); }  // detached: its error is reported unobserved
    co_await corio::sleep(2ms);
}

// The leak checks (INFO + CHECK through the prefixed names) still fail a case.
CORIO_TEST_CASE("an unexpected unobserved error fails the case, under the prefix", "[!shouldfail]") {
    { auto dropped = corio::spawn(fail_after(1ms)); }
    co_await corio::sleep(2ms);
}

CORIO_TEST_CASE("expect_throws fails the case when nothing is thrown, under the prefix", "[!shouldfail]") {
    co_await corio::testing::expect_throws<std::runtime_error>(corio::sleep(1ms));
}
