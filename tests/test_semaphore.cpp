// Tests for corio/semaphore.hpp: FIFO hand-off without barging, permit
// conservation under cancellation, over-release, RAII permits, cancellation
// injected at every waiter position, and the bad-input cases.
#include <corio/semaphore.hpp>
#include <corio/sync.hpp>

#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

task<void> acquire_and_log(semaphore& s, std::vector<std::string>& log, std::string name, int rounds,
                           clock::duration hold) {
    for (int r = 1; r <= rounds; ++r) {
        auto p = co_await s.acquire();
        log.push_back(name + std::to_string(r));
        co_await sleep(hold);
    }
}

/// Acquires, records, and holds the permit until `done` is set.
task<void> acquire_and_hold(semaphore& s, std::vector<int>& log, int id, event& done) {
    auto p = co_await s.acquire();
    log.push_back(id);
    co_await done.wait();
}

}  // namespace

CORIO_TEST_CASE("semaphore: waiters get permits in FIFO order") {
    semaphore s(1);
    std::vector<std::string> log;
    auto a = spawn(acquire_and_log(s, log, "a", 2, U));
    auto b = spawn(acquire_and_log(s, log, "b", 2, U));
    auto c = spawn(acquire_and_log(s, log, "c", 2, U));
    auto start = now();
    co_await a;
    co_await b;
    co_await c;
    CHECK(log == std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "c2"});
    CHECK(since(start) == 6 * U);
    CHECK(s.available() == 1);
    co_await sleep(U);
}

TEST_CASE("semaphore: no barging: a released permit goes to the oldest waiter, not to a newcomer") {
    corio::testing::run_virtual([]() -> task<void> {
        semaphore s(0);
        std::vector<int> log;
        event done;
        auto w = spawn(acquire_and_hold(s, log, 1, done));
        co_await settle();
        REQUIRE(s.waiters() == 1);
        s.release();
        // The permit belongs to W already, before W has run.
        CHECK(s.available() == 0);
        CHECK(s.locked());
        CHECK(s.waiters() == 0);
        CHECK_FALSE(s.try_acquire().has_value());
        auto n = spawn(acquire_and_hold(s, log, 2, done));
        co_await settle();
        CHECK(log == std::vector<int>{1});
        CHECK(s.waiters() == 1);
        done.set();
        co_await w;
        co_await n;
        CHECK(log == std::vector<int>{1, 2});
        CHECK(s.available() == 1);
    });
    // A holder that releases and re-acquires while another waits goes behind it.
    corio::testing::run_virtual([]() -> task<void> {
        semaphore s(1);
        std::vector<int> log;
        auto c2 = [](semaphore& s, std::vector<int>& log) -> task<void> {
            auto p = co_await s.acquire();
            log.push_back(1);
            co_await sleep(U);
            p.release();
            auto q = co_await s.acquire();  // C3 waits: this queues behind it
            log.push_back(3);
        };
        auto c3 = [](semaphore& s, std::vector<int>& log) -> task<void> {
            co_await yield_now();
            auto p = co_await s.acquire();
            log.push_back(2);
            co_await sleep(U);
            p.release();
            auto q = co_await s.acquire();
            log.push_back(4);
        };
        auto h2 = spawn(c2(s, log));
        auto h3 = spawn(c3(s, log));
        co_await h2;
        co_await h3;
        CHECK(log == std::vector<int>{1, 2, 3, 4});
    });
}

TEST_CASE("semaphore: k releases wake exactly k waiters") {
    corio::testing::run_virtual([]() -> task<void> {
        semaphore s(0);
        std::vector<int> log;
        event done;
        std::vector<join_handle<void>> hs;
        for (int i = 0; i < 3; ++i) hs.push_back(spawn(acquire_and_hold(s, log, i, done)));
        co_await settle();
        s.release();
        co_await settle(10);
        CHECK(log == std::vector<int>{0});
        CHECK(s.waiters() == 2);
        done.set();
        s.release();
        s.release();
        for (auto& h : hs) co_await h;
        CHECK(log == std::vector<int>{0, 1, 2});
        CHECK(s.available() == 3);
    });
    corio::testing::run_virtual([]() -> task<void> {
        semaphore s(3);
        std::vector<int> log;
        event done;
        std::vector<join_handle<void>> hs;
        for (int i = 1; i <= 4; ++i) hs.push_back(spawn(acquire_and_hold(s, log, i, done)));
        co_await settle();
        auto p1 = s.try_acquire();  // fails: taken by 1..3, 4 waits
        CHECK_FALSE(p1.has_value());
        REQUIRE(log == std::vector<int>{1, 2, 3});
        // Take the permits back by hand so that two releases are ours to make.
        semaphore s2(3);
        std::vector<int> log2;
        event done2;
        auto a = co_await s2.acquire();
        auto b = co_await s2.acquire();
        auto c = co_await s2.acquire();
        std::vector<join_handle<void>> hs2;
        for (int i = 2; i <= 4; ++i) hs2.push_back(spawn(acquire_and_hold(s2, log2, i, done2)));
        co_await settle();
        REQUIRE(s2.waiters() == 3);
        a.release();
        b.release();
        CHECK(s2.available() == 0);
        co_await yield_now();  // one round
        CHECK(log2 == std::vector<int>{2, 3});
        CHECK(s2.available() == 0);
        CHECK(s2.waiters() == 1);
        done.set();
        done2.set();
        c.release();
        for (auto& h : hs) co_await h;
        for (auto& h : hs2) co_await h;
        CHECK(s.available() == 3);
        CHECK(s2.available() == 3);
    });
}

CORIO_TEST_CASE("semaphore: a woken waiter then cancelled passes the permit on") {
    semaphore s(0);
    std::vector<int> log;
    event done;
    auto t1 = spawn(acquire_and_hold(s, log, 1, done));
    auto t2 = spawn(acquire_and_hold(s, log, 2, done));
    co_await settle();
    s.release();  // picks t1
    t1.cancel();  // before t1 runs
    bool c1 = co_await ended_cancelled(t1);
    CHECK(c1);
    co_await settle();
    CHECK(log == std::vector<int>{2});
    CHECK(s.locked());
    CHECK(s.available() == 0);
    done.set();
    co_await t2;
    CHECK(s.available() == 1);
    co_await sleep(U);
}

CORIO_TEST_CASE("semaphore: cancelled waiters consume nothing") {
    semaphore s(0);
    std::vector<int> log;
    event done;
    std::vector<join_handle<void>> t;
    for (int i = 1; i <= 4; ++i) t.push_back(spawn(acquire_and_hold(s, log, i, done)));
    co_await settle();
    t[0].cancel();
    t[1].cancel();
    co_await settle();
    CHECK(s.waiters() == 2);
    s.release();
    co_await settle();
    CHECK(log == std::vector<int>{3});
    CHECK(s.waiters() == 1);
    t[3].cancel();
    co_await settle();
    CHECK(s.available() == 0);
    CHECK(s.waiters() == 0);
    done.set();
    bool c0 = co_await ended_cancelled(t[0]);
    bool c1 = co_await ended_cancelled(t[1]);
    bool c2 = co_await ended_cancelled(t[2]);
    bool c3 = co_await ended_cancelled(t[3]);
    CHECK(c0);
    CHECK(c1);
    CHECK_FALSE(c2);
    CHECK(c3);
    CHECK(s.available() == 1);
    co_await sleep(U);
}

namespace {
struct holders_state {
    int holders = 0;
    int max_holders = 0;
    int completed = 0;
};
struct holder_count {
    holders_state& st;
    explicit holder_count(holders_state& s) : st(s) {
        if (++st.holders > st.max_holders) st.max_holders = st.holders;
    }
    ~holder_count() { --st.holders; }
};
task<void> conserved_worker(semaphore& s, holders_state& st, clock::duration hold) {
    auto p = co_await s.acquire();
    holder_count c(st);
    co_await sleep(hold);
    ++st.completed;
}
}  // namespace

CORIO_TEST_CASE("semaphore: permits are conserved") {
    semaphore s(3);
    holders_state st;
    std::mt19937 rng(58);
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < 200; ++i)
        hs.push_back(spawn(conserved_worker(s, st, std::chrono::milliseconds(1 + rng() % 5))));
    std::vector<bool> cancelled(hs.size(), false);
    for (int step = 0; step < 120; ++step) {
        // Cancel waiters, holders and freshly woken waiters alike.
        for (int k = 0; k < 2; ++k) {
            std::size_t i = rng() % hs.size();
            hs[i].cancel();
            cancelled[i] = true;
        }
        if (step % 3 == 0) co_await sleep(std::chrono::milliseconds(1));
        else co_await yield_now();
        CHECK(st.max_holders <= 3);
    }
    int ended_cancelled_n = 0;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        bool c = co_await ended_cancelled(hs[i]);
        if (c) {
            ++ended_cancelled_n;
            CHECK(cancelled[i]);
        }
    }
    CHECK(st.max_holders == 3);
    CHECK(st.holders == 0);
    CHECK(st.completed + ended_cancelled_n == 200);
    CHECK(ended_cancelled_n > 0);
    CHECK(s.available() == 3);
    CHECK_FALSE(s.locked());
    CHECK(s.waiters() == 0);
    co_await sleep(U);
}

TEST_CASE("semaphore: over-releasing a bounded_semaphore and negative initial values throw") {
    bounded_semaphore b(1);
    CHECK_THROWS_AS(b.release(), std::logic_error);
    CHECK_THROWS_WITH(b.release(),
                      contains_text("bounded_semaphore released too many times") && contains_text("initial value 1"));
    CHECK(b.available() == 1);
    semaphore s(1);
    s.release();
    CHECK(s.available() == 2);
    CHECK_THROWS_AS(semaphore(-1), std::invalid_argument);
    CHECK_THROWS_WITH(semaphore(-1), contains_text("initial value must be >= 0, got -1"));
    CHECK_THROWS_AS(bounded_semaphore(-3), std::invalid_argument);
    bounded_semaphore zero(0);
    CHECK_THROWS_AS(zero.release(), std::logic_error);
    // Within its bound a bounded_semaphore releases normally.
    corio::testing::run_virtual([]() -> task<void> {
        bounded_semaphore b(2);
        auto p = co_await b.acquire();
        auto q = p.get_semaphore();
        CHECK(q == &b);
        semaphore* raw = p.detach();
        CHECK(b.available() == 1);
        raw->release();  // the manual protocol
        CHECK(b.available() == 2);
        CHECK_THROWS_AS(b.release(), std::logic_error);
        CHECK(b.available() == 2);
    });
}

namespace {
task<void> set_flag(bool& f) {
    f = true;
    co_return;
}
task<void> throw_while_holding(semaphore& s) {
    auto p = co_await s.acquire();
    throw std::runtime_error("boom");
}
/// Cancelled while waiting on `gate`, then acquires uncontended inside its
/// cancelled scope: that completes (only a suspension throws), the next
/// suspension throws.
task<void> acquire_when_cancelled(event& gate, semaphore& s, bool& got, bool& threw_after) {
    try {
        co_await gate.wait();
    } catch (const cancelled_error&) {
    }
    auto p = co_await s.acquire();
    got = p.owns_permit();
    try {
        co_await sleep(U);
    } catch (const cancelled_error&) {
        threw_after = true;
        throw;
    }
}
}  // namespace

CORIO_TEST_CASE("semaphore: locked(), uncontended path, RAII") {
    semaphore s(1);
    CHECK_FALSE(s.locked());
    bool ran = false;
    auto other = spawn(set_flag(ran));
    {
        auto p = co_await s.acquire();  // uncontended: no suspension
        CHECK_FALSE(ran);
        CHECK(s.locked());
        CHECK(s.available() == 0);
    }
    CHECK_FALSE(ran);
    CHECK(s.available() == 1);
    co_await other;
    CHECK(ran);

    // RAII: normal exit, exception, cancellation.
    auto h = spawn(throw_while_holding(s));
    REQUIRE_THROWS_AS(co_await h, std::runtime_error);
    CHECK(s.available() == 1);
    event never;
    std::vector<int> log;
    auto holder = spawn(acquire_and_hold(s, log, 1, never));
    co_await settle();
    CHECK(s.available() == 0);
    holder.cancel();
    bool hc = co_await ended_cancelled(holder);
    CHECK(hc);
    CHECK(s.available() == 1);

    // A task cancelled while waiting leaves the semaphore acquirable.
    auto p = co_await s.acquire();
    auto waiter = spawn(acquire_and_hold(s, log, 2, never));
    co_await settle();
    CHECK(s.locked());
    waiter.cancel();
    bool wc = co_await ended_cancelled(waiter);
    CHECK(wc);
    p.release();
    CHECK_FALSE(p.owns_permit());
    p.release();  // idempotent
    CHECK(s.available() == 1);
    auto t = s.try_acquire();
    CHECK(t.has_value());
    t.reset();
    CHECK(s.available() == 1);

    // An uncontended acquire may complete inside a cancelled scope.
    event gate;
    bool got = false, threw_after = false;
    auto c = spawn(acquire_when_cancelled(gate, s, got, threw_after));
    co_await settle();
    c.cancel();
    bool cc = co_await ended_cancelled(c);
    CHECK(cc);
    CHECK(got);
    CHECK(threw_after);
    CHECK(s.available() == 1);

    // A cancelled scope makes a contended acquire throw without suspending.
    auto hold = co_await s.acquire();
    auto w2 = spawn(acquire_when_cancelled(gate, s, got, threw_after));
    co_await settle();
    w2.cancel();
    bool w2c = co_await ended_cancelled(w2);
    CHECK(w2c);
    CHECK(s.waiters() == 0);
    co_await sleep(U);
}

namespace {
struct inject_ctx {
    semaphore s{0};
    std::vector<int> log;
    std::vector<join_handle<void>> hs;
    int cancel_after_release_of = -1;  // that waiter cancels the next one right after releasing
};
task<void> relay_waiter(inject_ctx& ctx, int id) {
    auto p = co_await ctx.s.acquire();
    ctx.log.push_back(id);
    p.release();  // hands the permit to the next waiter (not resumed yet)
    if (id == ctx.cancel_after_release_of) ctx.hs[static_cast<std::size_t>(id) + 1].cancel();
}
}  // namespace

TEST_CASE("semaphore: cancel the n-th waiter, while waiting and after the hand-off") {
    constexpr int k = 5;
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                inject_ctx ctx;
                for (int i = 0; i < k; ++i) ctx.hs.push_back(spawn(relay_waiter(ctx, i)));
                co_await settle();
                REQUIRE(ctx.s.waiters() == static_cast<std::size_t>(k));
                if (mode == 0) {
                    ctx.hs[static_cast<std::size_t>(n)].cancel();  // while waiting
                    ctx.s.release();
                } else if (n == 0) {
                    ctx.s.release();     // handed to waiter 0...
                    ctx.hs[0].cancel();  // ...which is cancelled before it resumes
                } else {
                    ctx.cancel_after_release_of = n - 1;
                    ctx.s.release();
                }
                std::vector<int> expected;
                for (int i = 0; i < k; ++i) {
                    bool c = co_await ended_cancelled(ctx.hs[static_cast<std::size_t>(i)]);
                    CHECK(c == (i == n));
                    if (i != n) expected.push_back(i);
                }
                CHECK(ctx.log == expected);     // FIFO order of the rest
                CHECK(ctx.s.available() == 1);  // the one permit is conserved
                CHECK(ctx.s.waiters() == 0);
                co_await sleep(U);
            });
        }
    }
}

CORIO_TEST_CASE("semaphore: permit is move-only RAII") {
    semaphore s(2);
    auto a = co_await s.acquire();
    semaphore::permit b = std::move(a);
    CHECK_FALSE(a.owns_permit());
    CHECK(b.owns_permit());
    CHECK(s.available() == 1);
    auto c = co_await s.acquire();
    b = std::move(c);  // releases b's old permit
    CHECK(s.available() == 1);
    semaphore::permit empty;
    CHECK_FALSE(empty);
    b = semaphore::permit{};
    CHECK(s.available() == 2);
}

TEST_CASE("semaphore: constructible without a loop, waiters() counts") {
    semaphore s(2);
    CHECK(s.available() == 2);
    CHECK(s.waiters() == 0);
    auto p = s.try_acquire();
    CHECK(p.has_value());
    CHECK(s.available() == 1);
}
