// Tests for corio/queue.hpp: back-pressure, cancel-safe get and put,
// task_done/join, try_put/try_get, close(), priority and LIFO
// order, move-only items, cancellation injected at every getter and putter
// position, and the bad-input cases.
#include <corio/queue.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

task<void> producer(queue<int>& q, std::vector<int>& done, int from, int to) {
    for (int i = from; i < to; ++i) {
        co_await q.put(i);
        done.push_back(i);
    }
}

task<void> getter(queue<int>& q, std::vector<int>& got) {
    int v = co_await q.get();
    got.push_back(v);
}

task<void> putter(queue<int>& q, int v) { co_await q.put(v); }

}  // namespace

CORIO_TEST_CASE("queue: a full queue blocks put (back-pressure) and items keep their order") {
    queue<int> q(2);
    std::vector<int> done;
    auto p = spawn(producer(q, done, 0, 3));
    co_await settle();
    CHECK(done == std::vector<int>{0, 1});  // blocked on the third put
    CHECK(q.full());
    CHECK(q.size() == 2);
    CHECK(q.putters() == 1);
    int v = co_await q.get();
    CHECK(v == 0);
    CHECK(q.size() == 2);  // the blocked put went in at once (no barging)
    co_await p;
    CHECK(done == std::vector<int>{0, 1, 2});
    int a = co_await q.get();
    int b = co_await q.get();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(q.empty());
    // FIFO through waiting getters too.
    std::vector<int> got;
    auto g1 = spawn(getter(q, got));
    auto g2 = spawn(getter(q, got));
    co_await settle();
    co_await q.put(10);
    co_await q.put(11);
    co_await g1;
    co_await g2;
    CHECK(got == std::vector<int>{10, 11});
    co_await sleep(U);
}

TEST_CASE("queue: get is cancel-safe") {
    // One reader: either it returns 1, or it ends cancelled and a fresh get() returns 1.
    corio::testing::run_virtual([]() -> task<void> {
        queue<int> q;
        std::vector<int> got;
        auto reader = spawn(getter(q, got));
        co_await settle();
        REQUIRE(q.getters() == 1);
        CHECK(q.try_put(1));
        CHECK(q.try_put(2));
        reader.cancel();
        bool rc = co_await ended_cancelled(reader);
        if (rc) {
            CHECK(got.empty());
            int v = co_await q.get();
            CHECK(v == 1);
        } else {
            CHECK(got == std::vector<int>{1});
        }
        int w = co_await q.get();
        CHECK(w == 2);
        CHECK(q.empty());
        co_await sleep(U);
    });
    // Three readers, one cancelled: the others receive {1, 2}.
    for (int which = 0; which < 3; ++which) {
        CAPTURE(which);
        corio::testing::run_virtual([&]() -> task<void> {
            queue<int> q;
            std::vector<int> got;
            std::vector<join_handle<void>> rs;
            for (int i = 0; i < 3; ++i) rs.push_back(spawn(getter(q, got)));
            co_await settle();
            CHECK(q.try_put(1));
            CHECK(q.try_put(2));
            rs[static_cast<std::size_t>(which)].cancel();
            int cancelled = 0;
            for (auto& r : rs) {
                bool c = co_await ended_cancelled(r);
                if (c) ++cancelled;
            }
            CHECK(cancelled == 1);
            CHECK(got == std::vector<int>{1, 2});
            CHECK(q.empty());
            CHECK(q.getters() == 0);
        });
    }
}

TEST_CASE("queue: put is cancel-safe") {
    // queue(1) full; a putter blocked on 2 is cancelled after space appears.
    for (int order = 0; order < 2; ++order) {
        CAPTURE(order);
        corio::testing::run_virtual([&]() -> task<void> {
            queue<int> q(1);
            CHECK(q.try_put(1));
            auto p = spawn(putter(q, 2));
            co_await settle();
            REQUIRE(q.putters() == 1);
            if (order == 0) {
                auto v = q.try_get();  // space appears...
                CHECK(v == 1);
                p.cancel();  // ...and the putter is cancelled before it resumes
            } else {
                p.cancel();
                auto v = q.try_get();
                CHECK(v == 1);
            }
            bool pc = co_await ended_cancelled(p);
            if (pc) CHECK(q.try_put(2));  // the put did not happen: retry
            CHECK(q.size() == 1);
            int v = co_await q.get();
            CHECK(v == 2);
            CHECK(q.empty());
            CHECK(q.putters() == 0);
        });
    }
    // Puts a, b, X into queue(1), X's putter cancelled: yields a, b, never X.
    corio::testing::run_virtual([]() -> task<void> {
        queue<int> q(1);
        auto a = spawn(putter(q, 'a'));
        auto b = spawn(putter(q, 'b'));
        auto x = spawn(putter(q, 'X'));
        co_await settle();
        CHECK(q.putters() == 2);
        x.cancel();
        bool xc = co_await ended_cancelled(x);
        CHECK(xc);
        int first = co_await q.get();
        int second = co_await q.get();
        CHECK(first == 'a');
        CHECK(second == 'b');
        co_await a;
        co_await b;
        CHECK(q.empty());
        CHECK(q.putters() == 0);
        co_await sleep(U);
    });
}

CORIO_TEST_CASE("queue: cancelled waiters do not steal") {
    queue<std::string> q;
    std::vector<std::string> got;
    auto g = [](queue<std::string>& q, std::vector<std::string>& got) -> task<void> {
        got.push_back(co_await q.get());
    };
    auto g1 = spawn(g(q, got));
    auto g2 = spawn(g(q, got));
    co_await settle();
    g1.cancel();
    co_await settle();
    CHECK(q.getters() == 1);
    co_await q.put("a");
    bool c1 = co_await ended_cancelled(g1);
    CHECK(c1);
    co_await g2;
    CHECK(got == std::vector<std::string>{"a"});
    CHECK(q.getters() == 0);
    // Cancelled putters leave no entries either.
    queue<int> b(1);
    CHECK(b.try_put(0));
    std::vector<join_handle<void>> ps;
    for (int i = 1; i <= 3; ++i) ps.push_back(spawn(putter(b, i)));
    co_await settle();
    CHECK(b.putters() == 3);
    for (auto& p : ps) p.cancel();
    for (auto& p : ps) {
        bool c = co_await ended_cancelled(p);
        CHECK(c);
    }
    CHECK(b.putters() == 0);
    CHECK(b.size() == 1);
    co_await sleep(U);
}

namespace {
task<void> summing_worker(queue<int>& q, int& sum) {
    for (;;) {
        int v = co_await q.get();
        co_await sleep(std::chrono::milliseconds(v % 3));
        sum += v;
        q.task_done();
    }
}
}  // namespace

CORIO_TEST_CASE("queue: join waits until task_done was called for every item") {
    queue<int> q;
    auto start = now();
    co_await q.join();  // unused queue: at once
    CHECK(since(start) == std::chrono::nanoseconds(0));
    CHECK_THROWS_AS(q.task_done(), std::logic_error);
    CHECK_THROWS_WITH(q.task_done(), contains_text("task_done() called more times than items were put"));

    // join() waits for task_done(), not get().
    co_await q.put(1);
    CHECK(q.unfinished() == 1);
    int v = co_await q.get();
    CHECK(v == 1);
    CHECK(q.unfinished() == 1);
    bool joined = false;
    auto j = [](queue<int>& q, bool& joined) -> task<void> {
        co_await q.join();
        joined = true;
    };
    auto hj = spawn(j(q, joined));
    co_await sleep(U);
    CHECK_FALSE(joined);
    q.task_done();
    co_await hj;
    CHECK(joined);
    CHECK_THROWS_AS(q.task_done(), std::logic_error);

    // Two workers summing 0..99 release join() exactly when the sum is 4950.
    int sum = 0;
    auto w1 = spawn(summing_worker(q, sum));
    auto w2 = spawn(summing_worker(q, sum));
    for (int i = 0; i < 100; ++i) co_await q.put(i);
    co_await q.join();
    CHECK(sum == 4950);
    CHECK(q.unfinished() == 0);
    w1.cancel();
    w2.cancel();
    bool c1 = co_await ended_cancelled(w1);
    bool c2 = co_await ended_cancelled(w2);
    CHECK(c1);
    CHECK(c2);

    // A cancelled join leaves no entry.
    co_await q.put(7);
    auto hj2 = spawn(j(q, joined));
    co_await settle();
    hj2.cancel();
    bool jc = co_await ended_cancelled(hj2);
    CHECK(jc);
    auto got = q.try_get();
    CHECK(got == 7);
    q.task_done();
    co_await sleep(U);
}

CORIO_TEST_CASE("queue: try_put and try_get never suspend and report full or empty") {
    queue<int> q(1);
    CHECK(q.try_put(1));
    CHECK_FALSE(q.try_put(2));
    CHECK(q.full());
    auto a = q.try_get();
    CHECK(a == 1);
    auto b = q.try_get();
    CHECK_FALSE(b.has_value());
    queue<int> u(0);  // unbounded
    for (int i = 0; i < 1000; ++i) CHECK(u.try_put(i));
    CHECK(u.size() == 1000);
    CHECK_FALSE(u.full());
    CHECK(u.maxsize() == 0);
    co_await u.put(1000);  // never suspends
    CHECK(u.size() == 1001);
    // try_put on a move-only type moves only on success.
    queue<std::unique_ptr<int>> m(1);
    auto p1 = std::make_unique<int>(1);
    auto p2 = std::make_unique<int>(2);
    CHECK(m.try_put(std::move(p1)));
    CHECK(p1 == nullptr);
    CHECK_FALSE(m.try_put(std::move(p2)));
    REQUIRE(p2 != nullptr);
    CHECK(*p2 == 2);
    co_return;
}

namespace {
task<void> get_until_closed(queue<int>& q, std::vector<int>& got, bool& closed) {
    try {
        for (;;) got.push_back(co_await q.get());
    } catch (const queue_closed&) {
        closed = true;
    }
}
task<void> put_expect_closed(queue<int>& q, int v, bool& closed) {
    try {
        co_await q.put(v);
    } catch (const queue_closed&) {
        closed = true;
    }
}
}  // namespace

CORIO_TEST_CASE("queue: close() wakes waiters; put fails, get drains then fails") {
    // Blocked getters are woken with queue_closed.
    queue<int> q(2);
    std::vector<int> got;
    bool g1 = false, g2 = false;
    auto h1 = spawn(get_until_closed(q, got, g1));
    auto h2 = spawn(get_until_closed(q, got, g2));
    co_await settle();
    co_await q.put(1);
    co_await settle();
    q.close();
    co_await h1;
    co_await h2;
    CHECK(g1);
    CHECK(g2);
    CHECK(got == std::vector<int>{1});
    CHECK(q.closed());
    REQUIRE_THROWS_AS(co_await q.put(5), queue_closed);
    CHECK_THROWS_AS(q.try_put(5), queue_closed);

    // Blocked putters are woken with queue_closed; items left are drained.
    queue<int> r(2);
    co_await r.put(1);
    co_await r.put(2);
    bool p1 = false, p2 = false;
    auto hp1 = spawn(put_expect_closed(r, 3, p1));
    auto hp2 = spawn(put_expect_closed(r, 4, p2));
    co_await settle();
    r.close();
    r.close();  // idempotent
    co_await hp1;
    co_await hp2;
    CHECK(p1);
    CHECK(p2);
    CHECK(r.putters() == 0);
    int a = co_await r.get();
    auto b = r.try_get();
    CHECK(a == 1);
    CHECK(b == 2);
    REQUIRE_THROWS_AS(co_await r.get(), queue_closed);
    REQUIRE_THROWS_WITH(co_await r.get(), contains_text("closed and drained"));
    CHECK_THROWS_AS(r.try_get(), queue_closed);
    co_await sleep(U);
}

TEST_CASE("queue: cancel the n-th getter, while waiting and after an item was reserved for it") {
    constexpr int k = 5;
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                queue<int> q;
                std::vector<int> got;
                std::vector<join_handle<void>> gs;
                for (int i = 0; i < k; ++i) gs.push_back(spawn(getter(q, got)));
                co_await settle();
                REQUIRE(q.getters() == static_cast<std::size_t>(k));
                if (mode == 0) gs[static_cast<std::size_t>(n)].cancel();
                // Items 100.. go in one per round; in mode 1 getter n is
                // cancelled in the round its item was reserved for it.
                for (int i = 0; i < k - 1; ++i) {
                    CHECK(q.try_put(100 + i));
                    if (mode == 1 && i == n) gs[static_cast<std::size_t>(n)].cancel();
                    co_await settle();
                }
                if (mode == 1 && n == k - 1) {
                    CHECK(q.try_put(999));
                    gs[static_cast<std::size_t>(n)].cancel();
                    co_await settle();
                }
                for (int i = 0; i < k; ++i) {
                    bool c = co_await ended_cancelled(gs[static_cast<std::size_t>(i)]);
                    CHECK(c == (i == n));
                }
                // Neither lost nor duplicated, in FIFO order.
                CHECK(got == std::vector<int>{100, 101, 102, 103});
                if (mode == 1 && n == k - 1) {
                    auto left = q.try_get();
                    CHECK(left == 999);  // the cancelled getter left its item
                }
                CHECK(q.empty());
                CHECK(q.getters() == 0);
            });
        }
    }
}

TEST_CASE("queue: cancel the n-th putter, while waiting and after its item went in") {
    constexpr int k = 5;
    for (int mode = 0; mode < 2; ++mode) {
        for (int n = 0; n < k; ++n) {
            CAPTURE(mode, n);
            corio::testing::run_virtual([&]() -> task<void> {
                queue<int> q(1);
                CHECK(q.try_put(-1));
                std::vector<join_handle<void>> ps;
                for (int i = 0; i < k; ++i) ps.push_back(spawn(putter(q, i)));
                co_await settle();
                REQUIRE(q.putters() == static_cast<std::size_t>(k));
                if (mode == 0) ps[static_cast<std::size_t>(n)].cancel();
                std::vector<int> got;
                for (int i = 0; i <= k; ++i) {
                    auto v = q.try_get();  // makes room: the oldest putter's item goes in
                    if (!v) break;
                    got.push_back(*v);
                    if (mode == 1 && i == n) ps[static_cast<std::size_t>(n)].cancel();
                    co_await settle();
                }
                std::vector<int> expected{-1};
                for (int i = 0; i < k; ++i) {
                    bool c = co_await ended_cancelled(ps[static_cast<std::size_t>(i)]);
                    // Cancelled after its item went in: the put took effect and returns.
                    CHECK(c == (mode == 0 && i == n));
                    if (!(mode == 0 && i == n)) expected.push_back(i);
                }
                CHECK(got == expected);
                CHECK(q.empty());
                CHECK(q.putters() == 0);
                CHECK(q.unfinished() == expected.size());
            });
        }
    }
}

CORIO_TEST_CASE("queue: priority_queue and lifo_queue") {
    priority_queue<int> pq;
    for (int v : {5, 1, 4, 2, 3}) co_await pq.put(v);
    std::vector<int> out;
    for (int i = 0; i < 5; ++i) out.push_back(co_await pq.get());
    CHECK(out == std::vector<int>{1, 2, 3, 4, 5});  // smallest first, like asyncio

    priority_queue<int, std::less<int>> maxq;
    for (int v : {5, 1, 4}) co_await maxq.put(v);
    int top = co_await maxq.get();
    CHECK(top == 5);

    lifo_queue<int> lq(3);
    for (int v : {1, 2, 3}) co_await lq.put(v);
    CHECK(lq.full());
    CHECK_FALSE(lq.try_put(4));
    out.clear();
    for (int i = 0; i < 3; ++i) out.push_back(co_await lq.get());
    CHECK(out == std::vector<int>{3, 2, 1});

    // A waiting getter takes the best item present when it resumes.
    priority_queue<std::pair<int, std::string>> jobs;
    std::vector<std::string> got;
    auto g = [](priority_queue<std::pair<int, std::string>>& q, std::vector<std::string>& got) -> task<void> {
        auto job = co_await q.get();
        got.push_back(job.second);
    };
    auto h = spawn(g(jobs, got));
    co_await settle();
    CHECK(jobs.try_put(std::pair<int, std::string>{5, "low"}));
    CHECK(jobs.try_put(std::pair<int, std::string>{1, "urgent"}));
    co_await h;
    CHECK(got == std::vector<std::string>{"urgent"});
    auto rest = jobs.try_get();
    REQUIRE(rest.has_value());
    CHECK(rest->second == "low");
}

CORIO_TEST_CASE("queue: move-only items") {
    queue<std::unique_ptr<int>> q(1);
    co_await q.put(std::make_unique<int>(1));
    auto pf = [](queue<std::unique_ptr<int>>& q) -> task<void> { co_await q.put(std::make_unique<int>(2)); };
    auto h = spawn(pf(q));
    co_await settle();
    CHECK(q.putters() == 1);
    auto a = co_await q.get();
    auto b = co_await q.get();
    co_await h;
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a == 1);
    CHECK(*b == 2);
    priority_queue<std::unique_ptr<int>, std::greater<std::unique_ptr<int>>> pq;
    co_await pq.put(std::make_unique<int>(3));
    auto c = co_await pq.get();
    CHECK(*c == 3);
    lifo_queue<std::unique_ptr<int>> lq;
    co_await lq.put(std::make_unique<int>(4));
    auto d = lq.try_get();
    REQUIRE(d.has_value());
    CHECK(**d == 4);
}

TEST_CASE("queue: constructible without a loop; uncontended put/get never suspend") {
    queue<int> q(4);
    CHECK(q.try_put(1));
    CHECK(q.size() == 1);
    corio::testing::run_virtual([&]() -> task<void> {
        bool ran = false;
        auto f = [](bool& r) -> task<void> {
            r = true;
            co_return;
        };
        auto other = spawn(f(ran));
        co_await q.put(2);
        int a = co_await q.get();
        int b = co_await q.get();
        CHECK_FALSE(ran);  // nothing suspended
        CHECK(a == 1);
        CHECK(b == 2);
        co_await other;
    });
}

CORIO_TEST_CASE("queue: producer/consumer keeps every item exactly once under random cancellation") {
    queue<int> q(3);
    std::vector<int> got;
    std::vector<int> put_ok;
    auto prod = [](queue<int>& q, std::vector<int>& ok, int base) -> task<void> {
        for (int i = 0; i < 50; ++i) {
            co_await q.put(base + i);
            ok.push_back(base + i);
            co_await sleep(std::chrono::milliseconds(1 + (i % 3)));
        }
    };
    auto cons = [](queue<int>& q, std::vector<int>& got) -> task<void> {
        for (;;) {
            got.push_back(co_await q.get());
            co_await sleep(std::chrono::milliseconds(2));
        }
    };
    std::vector<join_handle<void>> ps, cs;
    for (int p = 0; p < 4; ++p) ps.push_back(spawn(prod(q, put_ok, p * 1000)));
    for (int c = 0; c < 6; ++c) cs.push_back(spawn(cons(q, got)));
    for (int c = 0; c < 5; ++c) {
        co_await sleep(std::chrono::milliseconds(7));
        cs[static_cast<std::size_t>(c)].cancel();
        ps[static_cast<std::size_t>(c % 4)].cancel();
    }
    for (auto& p : ps) {
        bool ignored = co_await ended_cancelled(p);
        (void)ignored;
    }
    // Drain what is left with the surviving consumer, then stop it.
    while (!q.empty()) co_await sleep(U);
    cs[5].cancel();
    for (auto& c : cs) {
        bool ignored = co_await ended_cancelled(c);
        (void)ignored;
    }
    std::vector<int> a = got, b = put_ok;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);  // every completed put was received once; nothing else
    CHECK(std::adjacent_find(a.begin(), a.end()) == a.end());
}

CORIO_TEST_CASE("queue: FIFO ring wraps around, grows, and destroys items left behind") {
    queue<std::string> q(3);
    std::vector<std::string> out;
    for (int i = 0; i < 40; ++i) {
        co_await q.put(std::string(40, static_cast<char>('a' + i % 26)));  // heap-allocated strings
        if (q.size() == 3) {
            out.push_back(co_await q.get());
            out.push_back(co_await q.get());
        }
    }
    while (!q.empty()) out.push_back(co_await q.get());
    REQUIRE(out.size() == 40);
    for (int i = 0; i < 40; ++i) CHECK(out[static_cast<std::size_t>(i)][0] == static_cast<char>('a' + i % 26));
    queue<std::unique_ptr<int>> left;  // unbounded; grows past its first block
    for (int i = 0; i < 100; ++i) co_await left.put(std::make_unique<int>(i));
    for (int i = 0; i < 30; ++i) {
        auto p = co_await left.get();
        CHECK(*p == i);
    }
    CHECK(left.size() == 70);
    // `left` is destroyed with 70 items in it: ASan would report a leak.
}
