// Tests of corio/testing.hpp, the test kit: CORIO_TEST_CASE, run_virtual,
// the expect_* helpers, manual_clock and the one-evaluation REQUIRE.
#include <corio/testing.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/steady_timer.hpp>

#if CORIO_CATCH2_MAJOR == 3
#include <catch2/catch_version_macros.hpp>
#endif

using namespace std::chrono_literals;
using corio::task;
namespace testing = corio::testing;

namespace {

constexpr std::chrono::milliseconds U{10};

int calls = 0;
task<int> counted(int v) {
    ++calls;
    co_return v;
}

task<int> after(std::chrono::milliseconds d, int v) {
    co_await corio::sleep(d);
    co_return v;
}

task<void> fail_after(std::chrono::milliseconds d) {
    co_await corio::sleep(d);
    throw std::runtime_error("boom");
}

}  // namespace

struct corio_testing_set_on_exit {
    bool& flag;
    ~corio_testing_set_on_exit() { flag = true; }
};

// ------------------------------------------------------ CORIO_TEST_CASE ---

TEST_CASE("testing: the header's include ladder picked the Catch2 this file is built with", "[testing]") {
    // CORIO_CATCH2_MAJOR comes from the build (CMake's find_package) or, without it, from the ladder.
    STATIC_REQUIRE(CORIO_CATCH2_MAJOR == CATCH_VERSION_MAJOR);
    STATIC_REQUIRE((CORIO_CATCH2_MAJOR == 2 || CORIO_CATCH2_MAJOR == 3));
}

CORIO_TEST_CASE("testing: a CORIO_TEST_CASE body is a coroutine under virtual time", "[testing]") {
    CHECK(corio::current_loop().virtual_time());
    const auto real_start = std::chrono::steady_clock::now();
    testing::stopwatch sw;
    co_await corio::sleep(std::chrono::hours(1));
    CHECK(sw.elapsed() == std::chrono::hours(1));
    CHECK(std::chrono::steady_clock::now() - real_start < 10s);
}

CORIO_TEST_CASE_WITH(testing::real_time, "testing: CORIO_TEST_CASE_WITH(real_time) runs on the real clock") {
    CHECK_FALSE(corio::current_loop().virtual_time());
    const auto real_start = std::chrono::steady_clock::now();
    co_await corio::sleep(5ms);
    CHECK(std::chrono::steady_clock::now() - real_start >= 5ms);
}

CORIO_TEST_CASE_WITH(testing::expect_unhandled(1), "testing: an expected unobserved error does not fail the case") {
    { auto dropped = corio::spawn(fail_after(U)); }  // detached: its error is reported unobserved
    co_await corio::sleep(2 * U);
}

CORIO_TEST_CASE("testing: an unexpected unobserved error fails the case", "[testing][!shouldfail]") {
    { auto dropped = corio::spawn(fail_after(U)); }
    co_await corio::sleep(2 * U);
}

CORIO_TEST_CASE("testing: a cancelled_error escaping the body fails the case", "[testing][!shouldfail]") {
    throw corio::cancelled_error{};
    co_return;
}

CORIO_TEST_CASE("testing: GENERATE works in a coroutine body", "[testing]") {
    const int k = GENERATE(1, 2, 3);
    testing::stopwatch sw;
    co_await corio::sleep(k * U);
    CHECK(sw.elapsed() == k * U);
}

CORIO_TEST_CASE("testing: SECTION works in a coroutine body", "[testing]") {
    testing::stopwatch sw;
    SECTION("one sleep") {
        co_await corio::sleep(U);
        CHECK(sw.elapsed() == U);
    }
    SECTION("two sleeps") {
        co_await corio::sleep(U);
        co_await corio::sleep(U);
        CHECK(sw.elapsed() == 2 * U);
    }
}

TEST_CASE("testing: tasks still alive when the body returns are cancelled and awaited", "[testing]") {
    bool cleaned = false;
    testing::run_virtual([&]() -> task<void> {
        auto sleeper = [&]() -> task<void> {
            corio_testing_set_on_exit f{cleaned};
            co_await corio::sleep(std::chrono::hours(1));
        };
        auto h = corio::spawn(sleeper());
        co_await corio::sleep(U);
        CHECK_FALSE(cleaned);
    });
    // The body ended with h's task asleep: run_virtual cancelled it and its
    // frame was cleaned up before the checks found nothing alive.
    CHECK(cleaned);
}

TEST_CASE("testing: run_virtual returns the task's value and keeps a callable's captures alive", "[testing]") {
    CHECK(testing::run_virtual(after(U, 7)) == 7);
    std::vector<int> log;
    const int base = 40;
    int got = testing::run_virtual([&log, base]() -> task<int> {
        co_await corio::sleep(U);
        log.push_back(base);  // reads a capture after a suspension
        co_return base + 2;
    });
    CHECK(got == 42);
    CHECK(log == std::vector<int>{40});
}

TEST_CASE("testing: run_virtual in a loop over parameters", "[testing]") {
    for (int n = 0; n < 3; ++n) {
        CAPTURE(n);
        testing::run_virtual([&]() -> task<void> {
            testing::stopwatch sw;
            co_await corio::sleep(n * U);
            CHECK(sw.elapsed() == n * U);
        });
    }
}

// ------------------------------------------- the REQUIRE(co_await) pitfall ---

CORIO_TEST_CASE("testing: REQUIRE and CHECK around a co_await evaluate it once", "[testing]") {
    calls = 0;
    REQUIRE(co_await counted(1) == 1);
    CHECK(calls == 1);
    CHECK(co_await counted(2) == 2);
    CHECK(calls == 2);
    CHECK_FALSE(co_await counted(3) == 4);
    CHECK(calls == 3);
    REQUIRE_FALSE(co_await counted(0));
    CHECK(calls == 4);
}

// ------------------------------------------------------------ expect_* ---

CORIO_TEST_CASE("testing: expect_cancelled passes for a cancelled join_handle and a cancelled awaiter", "[testing]") {
    auto h = corio::spawn(after(std::chrono::hours(1), 1));
    co_await corio::sleep(U);
    h.cancel();
    co_await testing::expect_cancelled(h);  // an lvalue join_handle
    corio::cancellation_source src;
    auto canceller = [&]() -> task<void> {
        co_await corio::sleep(U);
        src.cancel();
    };
    auto c = corio::spawn(canceller());
    co_await testing::expect_cancelled(corio::with_token(src.token(), corio::sleep(std::chrono::hours(1))));
    co_await c;
}

CORIO_TEST_CASE("testing: expect_timeout passes when the awaitable's own deadline expires", "[testing]") {
    testing::stopwatch sw;
    auto e = co_await testing::expect_timeout(corio::timeout(3 * U, after(10 * U, 1)));
    CHECK(sw.elapsed() == 3 * U);
    CHECK(std::string(e.what()).size() > 0);
}

CORIO_TEST_CASE("testing: expect_throws returns the exception for further checks", "[testing]") {
    auto e = co_await testing::expect_throws<std::runtime_error>(fail_after(U));
    CHECK(std::string(e.what()) == "boom");
}

CORIO_TEST_CASE("testing: expect_cancelled fails the case when the awaitable completes", "[testing][!shouldfail]") {
    co_await testing::expect_cancelled(after(U, 1));
}

CORIO_TEST_CASE("testing: expect_timeout fails the case on a cancellation", "[testing][!shouldfail]") {
    auto h = corio::spawn(after(std::chrono::hours(1), 1));
    h.cancel();
    co_await testing::expect_timeout(h);
}

CORIO_TEST_CASE("testing: expect_completes_within returns the value when it completes in time", "[testing]") {
    testing::stopwatch sw;
    int v = co_await testing::expect_completes_within(3 * U, after(2 * U, 5));
    CHECK(v == 5);
    CHECK(sw.elapsed() == 2 * U);
    co_await testing::expect_completes_within(U, corio::yield_now());  // void
    auto t0 = corio::now();
    int w = co_await testing::expect_completes_by(t0 + 2 * U, after(U, 6));
    CHECK(w == 6);
    CHECK(corio::now() - t0 == U);
}

CORIO_TEST_CASE("testing: expect_completes_within fails the case at the deadline", "[testing][!shouldfail]") {
    co_await testing::expect_completes_within(2 * U, after(3 * U, 1));
}

// --------------------------------------------------------- manual_clock ---

CORIO_TEST_CASE("testing: under a manual_clock time moves only by advance()", "[testing]") {
    testing::manual_clock clock;
    std::vector<std::chrono::nanoseconds> woke;
    auto ticker = [&]() -> task<void> {
        for (;;) {
            co_await corio::sleep(3 * U);
            woke.push_back(clock.elapsed());
        }
    };
    auto t = corio::spawn(ticker());
    auto one = corio::spawn(after(10 * U, 1));
    co_await clock.settle();  // everything else is blocked now, and time stood still
    CHECK(clock.elapsed() == 0ns);
    CHECK(woke.empty());
    co_await clock.advance(5 * U);
    CHECK(clock.elapsed() == 5 * U);
    CHECK(woke == std::vector<std::chrono::nanoseconds>{3 * U});
    CHECK_FALSE(one.done());
    co_await clock.advance(5 * U);  // one's deadline is exactly now: it has run
    CHECK(clock.elapsed() == 10 * U);
    CHECK(one.done());
    CHECK(woke == std::vector<std::chrono::nanoseconds>{3 * U, 6 * U, 9 * U});
    CHECK(co_await one == 1);
    co_await clock.advance(0ns);
    CHECK(clock.elapsed() == 10 * U);
    t.cancel();
    co_await testing::expect_cancelled(t);
}

CORIO_TEST_CASE("testing: settle lets every other task run until it blocks", "[testing]") {
    testing::manual_clock clock;
    int steps = 0;
    auto busy = [&]() -> task<void> {
        for (int i = 0; i < 1000; ++i) {
            ++steps;
            co_await corio::yield_now();
        }
    };
    auto h = corio::spawn(busy());
    co_await clock.settle();
    CHECK(steps == 1000);
    CHECK(h.done());
    CHECK(clock.elapsed() == 0ns);
    co_await h;
}

CORIO_TEST_CASE("testing: a cancelled advance stops where it was cut and holds time again", "[testing]") {
    testing::manual_clock clock;
    auto one = corio::spawn(after(5 * U, 1));
    co_await testing::expect_timeout(corio::timeout(3 * U, clock.advance(10 * U)));
    CHECK(clock.elapsed() == 3 * U);
    co_await clock.settle();
    CHECK(clock.elapsed() == 3 * U);
    CHECK_FALSE(one.done());
    co_await clock.advance(2 * U);
    CHECK(one.done());
    co_await one;
}

CORIO_TEST_CASE("testing: under a manual_clock, work outside the loop still completes", "[testing]") {
    testing::manual_clock clock;
    asio::steady_timer timer(corio::current_loop().get_executor(), 20ms);  // a real-time Asio wait
    const auto real_start = std::chrono::steady_clock::now();
    co_await timer.async_wait(corio::use_task);
    CHECK(std::chrono::steady_clock::now() - real_start >= 20ms);
    CHECK(clock.elapsed() == 0ns);
}

TEST_CASE("testing: a manual_clock that nobody advances reports a stall instead of hanging", "[testing]") {
    auto body = []() -> task<void> {
        testing::manual_clock clock(std::chrono::milliseconds(10));
        co_await corio::sleep(U);  // never due: nothing advances the clock
    };
    REQUIRE_THROWS_AS(testing::run_virtual(body), testing::stalled_error);
}

TEST_CASE("testing: manual_clock rejects bad input with a clear exception", "[testing]") {
    testing::run_virtual([]() -> task<void> {
        testing::manual_clock clock;
        REQUIRE_THROWS_AS((void)clock.advance(-1ms), std::invalid_argument);
        co_return;
    });
    auto real = []() -> task<void> {
        REQUIRE_THROWS_AS(testing::manual_clock(), corio::invalid_state_error);
        co_return;
    };
    testing::run_virtual(real, testing::real_time);
}

// ------------------------------------------------ composes with every combinator

CORIO_TEST_CASE("testing: composes with every combinator", "[testing]") {
    testing::manual_clock clock;
    corio::cancellation_source src;
    testing::stopwatch sw;
    co_await corio::timeout(U, clock.advance(U / 2));
    auto m = co_await corio::move_on_after(U, clock.advance(2 * U));
    CHECK_FALSE(m);
    co_await corio::timeout_at(corio::now() + U, clock.settle());
    co_await corio::shield(clock.advance(U));
    co_await corio::with_token(src.token(), clock.advance(U));
    CHECK(sw.elapsed() == U / 2 + U + U + U);
    auto g = co_await corio::gather(testing::expect_completes_within(2 * U, after(U, 1)), clock.advance(U));
    CHECK(std::get<0>(g) == 1);
    auto s = co_await corio::gather_settled(testing::expect_timeout(corio::timeout(U, after(2 * U, 1))),
                                            clock.advance(2 * U));
    CHECK(std::get<0>(s).has_value());
    CHECK(std::get<1>(s).has_value());
    auto r = co_await corio::race(clock.advance(U), after(5 * U, 2));
    CHECK(r.index() == 0);
    CHECK(sw.elapsed() == U / 2 + 3 * U + U + 2 * U + U);
}
