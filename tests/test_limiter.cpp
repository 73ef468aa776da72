// Tests for corio/limiter.hpp: exact token-bucket timing under virtual time,
// FIFO order, cancellation injected at every waiter position (while waiting
// and in the round its tokens were granted), and the bad-input cases.
#include <corio/limiter.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;
using std::chrono::milliseconds;

namespace {

using stamp = std::pair<int, clock::duration>;

task<void> take(limiter& l, std::size_t n, int id, clock::time_point start, std::vector<stamp>& log) {
    co_await l.acquire(n);
    log.emplace_back(id, now() - start);
}

}  // namespace

TEST_CASE("limiter: exact spacing at the rate, burst up front") {
    corio::testing::run_virtual([]() -> task<void> {
        limiter l(10.0, 1);  // one token per 100 ms
        CHECK(l.interval() == milliseconds(100));
        auto start = now();
        std::vector<clock::duration> at;
        for (int i = 0; i < 4; ++i) {
            co_await l.acquire();
            at.push_back(now() - start);
        }
        CHECK(at ==
              std::vector<clock::duration>{milliseconds(0), milliseconds(100), milliseconds(200), milliseconds(300)});
    });
    corio::testing::run_virtual([]() -> task<void> {
        limiter l(100.0, 3);  // 10 ms per token = U
        auto start = now();
        CHECK(l.available() == 3);
        std::vector<clock::duration> at;
        for (int i = 0; i < 6; ++i) {
            co_await l.acquire();
            at.push_back(now() - start);
        }
        CHECK(at == std::vector<clock::duration>{0 * U, 0 * U, 0 * U, 1 * U, 2 * U, 3 * U});
        CHECK(l.available() == 0);
        // The bucket refills, but never above the burst.
        co_await sleep(10 * U);
        CHECK(l.available() == 3);
        auto t0 = now();
        co_await l.acquire(3);
        CHECK(now() == t0);
        co_await l.acquire(2);
        CHECK(now() - t0 == 2 * U);
        co_await l.acquire(0);  // nothing to wait for
        CHECK(now() - t0 == 2 * U);
        co_await sleep(U / 2);
        CHECK(l.available() == 0);  // half a token
        CHECK_FALSE(l.try_acquire());
        co_await sleep(U / 2);
        CHECK(l.try_acquire());
        CHECK_FALSE(l.try_acquire());
    });
}

CORIO_TEST_CASE("limiter: FIFO, no barging by smaller requests") {
    limiter l(100.0, 3);
    auto start = now();
    co_await l.acquire(3);  // empty
    std::vector<stamp> log;
    auto a = spawn(take(l, 3, 1, start, log));
    auto b = spawn(take(l, 1, 2, start, log));
    co_await settle();
    CHECK(l.waiters() == 2);
    co_await sleep(U);
    CHECK_FALSE(l.try_acquire());  // a token exists, but a and b wait: no barging
    auto c = spawn(take(l, 1, 3, start, log));
    co_await a;
    co_await b;
    co_await c;
    CHECK(log == std::vector<stamp>{{1, 3 * U}, {2, 4 * U}, {3, 5 * U}});
    CHECK(l.waiters() == 0);
}

CORIO_TEST_CASE("limiter: a cancelled head waiter takes nothing; the next is served earlier") {
    limiter l(100.0, 3);
    auto start = now();
    co_await l.acquire(3);
    std::vector<stamp> log;
    auto a = spawn(take(l, 3, 1, start, log));  // due at 3U
    auto b = spawn(take(l, 1, 2, start, log));  // behind a
    co_await sleep(U);
    a.cancel();
    bool ac = co_await ended_cancelled(a);
    CHECK(ac);
    co_await b;
    CHECK(log == std::vector<stamp>{{2, U}});  // one token had accrued at U
    CHECK(l.waiters() == 0);
    co_await sleep(U);
}

namespace {
struct canceller_args {
    std::vector<join_handle<void>>* hs;
    std::size_t which;
    clock::time_point at;
};
/// Armed before any limiter deadline, so at `at` it runs after the limiter
/// granted the tokens and before the granted waiter resumes.
task<void> cancel_at(canceller_args a) {
    co_await sleep_until(a.at);
    (*a.hs)[a.which].cancel();
}
}  // namespace

TEST_CASE("limiter: cancel the n-th waiter, while waiting and after its tokens were granted") {
    constexpr int k = 5;
    const clock::duration I = milliseconds(100);
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                limiter l(10.0, 1);
                auto start = now();
                co_await l.acquire();  // empty now; waiter i is due at (i + 1) * I
                std::vector<stamp> log;
                std::vector<join_handle<void>> hs;
                hs.reserve(k);
                join_handle<void> canceller;
                if (mode == 1) {
                    canceller = spawn(cancel_at({&hs, static_cast<std::size_t>(n), start + (n + 1) * I}));
                    co_await settle();
                }
                for (int i = 0; i < k; ++i) hs.push_back(spawn(take(l, 1, i, start, log)));
                co_await settle();
                REQUIRE(l.waiters() == static_cast<std::size_t>(k));
                if (mode == 0) hs[static_cast<std::size_t>(n)].cancel();
                std::vector<stamp> expected;
                int slot = 1;
                for (int i = 0; i < k; ++i) {
                    bool c = co_await ended_cancelled(hs[static_cast<std::size_t>(i)]);
                    CHECK(c == (i == n));
                    if (i != n) expected.emplace_back(i, slot++ * I);
                }
                if (mode == 1) co_await canceller;
                // The cancelled waiter's tokens went to the next one at once.
                CHECK(log == expected);
                CHECK(l.waiters() == 0);
                // (When the last waiter was cancelled at its grant, its token is back.)
                CHECK(l.available() == (mode == 1 && n == k - 1 ? 1u : 0u));
                // Tokens conserved: the next one is due exactly one interval after the last grant.
                auto t = now();
                co_await l.acquire();
                CHECK(now() - start == k * I);
                CHECK(now() - t <= I);
            });
        }
    }
}

TEST_CASE("limiter: bad input") {
    CHECK_THROWS_AS(limiter(0.0, 1), std::invalid_argument);
    CHECK_THROWS_WITH(limiter(0.0, 1), contains_text("rate must be a positive number"));
    CHECK_THROWS_AS(limiter(-5.0, 1), std::invalid_argument);
    CHECK_THROWS_AS(limiter(std::nan(""), 1), std::invalid_argument);
    CHECK_THROWS_AS(limiter(std::numeric_limits<double>::infinity(), 1), std::invalid_argument);
    CHECK_THROWS_AS(limiter(10.0, 0), std::invalid_argument);
    CHECK_THROWS_WITH(limiter(10.0, 0), contains_text("burst must be >= 1, got 0"));
    limiter l(10.0, 2);
    CHECK_THROWS_AS(l.acquire(3), std::invalid_argument);
    CHECK_THROWS_WITH(l.acquire(3), contains_text("acquire(3) asks for more tokens than the burst (2)"));
    CHECK_THROWS_WITH(l.try_acquire(5), contains_text("try_acquire(5) asks for more tokens than the burst (2)"));
    // Outside a loop, try_acquire() has no clock to read.
    CHECK_THROWS_AS(l.try_acquire(1), invalid_state_error);
    corio::testing::run_virtual([&]() -> task<void> {
        REQUIRE_THROWS_AS(co_await l.acquire(3), std::invalid_argument);
        co_await l.acquire(2);  // the limiter built outside the loop works inside it
    });
}

TEST_CASE("limiter: rates that do not divide a second round the interval up") {
    limiter l(3.0, 1);
    CHECK(l.interval() == std::chrono::nanoseconds(333333334));
    limiter slow(0.5, 1);
    CHECK(slow.interval() == std::chrono::seconds(2));
    corio::testing::run_virtual([]() -> task<void> {
        limiter l(3.0, 1);
        auto start = now();
        for (int i = 0; i < 4; ++i) co_await l.acquire();
        CHECK(now() - start == 3 * std::chrono::nanoseconds(333333334));
    });
}

CORIO_TEST_CASE("limiter: an uncontended acquire never suspends") {
    limiter l(1.0, 2);
    bool ran = false;
    auto f = [](bool& r) -> task<void> {
        r = true;
        co_return;
    };
    auto other = spawn(f(ran));
    co_await l.acquire();
    co_await l.acquire();
    CHECK_FALSE(ran);
    co_await other;
}

CORIO_TEST_CASE("limiter: an acquire in an already-cancelled scope throws before suspending and takes nothing") {
    limiter l(100.0, 1);  // 10 ms per token = U
    const auto start = now();
    co_await l.acquire();  // the bucket is empty now: the next token comes at U
    bool other_ran = false;
    auto other = spawn(corio_test::owned([&]() -> task<void> {
        other_ran = true;
        co_return;
    }));
    cancel_scope sc;
    sc.cancel();
    const bool got = co_await sc.run(l.acquire());
    CHECK_FALSE(got);
    CHECK(sc.cancelled_caught());
    CHECK_FALSE(other_ran);                              // never suspended: the task ready meanwhile has not run yet
    CHECK(corio::current_loop().pending_timers() == 0);  // no deadline armed for it
    co_await l.acquire();                                // the token it did not take
    CHECK(now() - start == U);
    co_await other;
    // Tokens at hand: served at once, even in a cancelled scope.
    co_await sleep(U);
    cancel_scope sc2;
    sc2.cancel();
    const bool served = co_await sc2.run(l.acquire());
    CHECK(served);
}
