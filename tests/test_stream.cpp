// Tests for corio/stream.hpp: the sequential adaptors, batch() (size, time,
// errors, the pending pull that survives a flush, early exit), the
// concurrent adaptors (buffer, merge, map_concurrent, map_unordered,
// for_each_concurrent, as_completed), what each leaves behind when stopped
// early, bad input, and next() of adaptors under every combinator.
#include <corio/stream.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using namespace corio_test;

namespace {

struct my_exc : std::exception {
    const char* what() const noexcept override { return "my_exc"; }
};

using vi = std::vector<int>;

async_generator<int> count(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

/// Yields (delay, value) pairs: waits delay, then yields value.
async_generator<int> timed(std::vector<std::pair<clock::duration, int>> plan) {
    for (auto [d, v] : plan) {
        co_await sleep(d);
        co_yield v;
    }
}

/// An item every `step`, for ever (or n items), counting pulls and noting its destruction.
struct probe {
    int pulls = 0;
    bool destroyed = false;
    bool cancelled = false;
};
async_generator<int> ticking(probe& p, clock::duration step, int n = 1 << 30) {
    set_on_exit on_exit{p.destroyed};
    for (int i = 0; i < n; ++i) {
        ++p.pulls;
        try {
            co_await sleep(step);
        } catch (const cancelled_error&) {
            p.cancelled = true;
            throw;
        }
        co_yield i;
    }
}

template <class T>
task<std::vector<std::pair<clock::duration, T>>> timed_items(async_generator<T>& g) {
    std::vector<std::pair<clock::duration, T>> out;
    auto t0 = now();
    while (auto v = co_await g.next()) out.emplace_back(now() - t0, std::move(*v));
    co_return out;
}

}  // namespace

// ------------------------------------------------------------ sequential ---

CORIO_TEST_CASE("map applies f, awaiting it when it returns a task; adaptors chain with a pipe") {
    auto twice = [](int v) { return 2 * v; };
    auto v1 = co_await to_vector(count(4) | map(twice));
    CHECK(v1 == vi{0, 2, 4, 6});
    auto slow = [](int v) -> task<std::string> {
        co_await sleep(U);
        co_return std::to_string(v);
    };
    auto t0 = now();
    auto v2 = co_await to_vector(count(3) | map(slow));
    CHECK(v2 == std::vector<std::string>{"0", "1", "2"});
    CHECK(since(t0) == 3 * U);
    auto odd = [](int v) { return v % 2 == 1; };
    auto v3 = co_await to_vector(count(10) | filter(odd) | map(twice) | take(3));
    CHECK(v3 == vi{2, 6, 10});
}

CORIO_TEST_CASE("filter and take_while accept a predicate that returns a task of bool") {
    auto even = [](int v) -> task<bool> {
        co_await sleep(U);
        co_return v % 2 == 0;
    };
    auto t0 = now();
    auto v = co_await to_vector(count(5) | filter(even));
    CHECK(v == vi{0, 2, 4});
    CHECK(since(t0) == 5 * U);
    auto small = [](int x) { return x < 3; };
    auto w = co_await to_vector(count(10) | take_while(small));
    CHECK(w == vi{0, 1, 2});
}

CORIO_TEST_CASE("take(n) never pulls the item after the n-th; take(0) pulls nothing") {
    probe p;
    auto v = co_await to_vector(ticking(p, U) | take(2));
    CHECK(v == vi{0, 1});
    CHECK(p.pulls == 2);
    CHECK(p.destroyed);
    probe q;
    auto none = co_await to_vector(ticking(q, U) | take(0));
    CHECK(none.empty());
    CHECK(q.pulls == 0);
}

CORIO_TEST_CASE("enumerate pairs each item with its index") {
    std::vector<std::string> words{"a", "b"};
    auto v = co_await to_vector(from_range(words) | enumerate(1));
    REQUIRE(v.size() == 2);
    CHECK(v[0] == std::pair<std::size_t, std::string>(1, "a"));
    CHECK(v[1] == std::pair<std::size_t, std::string>(2, "b"));
}

CORIO_TEST_CASE("throttle spaces items by the limiter's rate") {
    limiter lim(100.0, 1);  // one token every 10 ms = U
    auto g = count(3) | throttle(lim);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 3);
    CHECK(items[0].first == clock::duration::zero());
    CHECK(items[1].first == U);
    CHECK(items[2].first == 2 * U);
}

CORIO_TEST_CASE("from_range copies from an lvalue range and moves from an rvalue one") {
    std::vector<std::string> kept{"x", "y"};
    auto a = co_await to_vector(from_range(kept));
    CHECK(a == kept);
    CHECK(kept == std::vector<std::string>{"x", "y"});
    std::vector<std::unique_ptr<int>> owned;
    owned.push_back(std::make_unique<int>(5));
    auto g = from_range(std::move(owned));
    auto b = co_await g.next();
    REQUIRE(b);
    CHECK(**b == 5);
}

// ----------------------------------------------------------------- batch ---

CORIO_TEST_CASE("batch by size only: 0..4 in batches of 2 give [0,1] [2,3] [4]") {
    auto v = co_await to_vector(count(5) | batch(2));
    CHECK(v == std::vector<vi>{{0, 1}, {2, 3}, {4}});
}

CORIO_TEST_CASE("batch of an empty source gives no batch, never an empty one") {
    auto g = batch(count(0), 3, U);
    auto t0 = now();
    auto first = co_await g.next();
    CHECK(!first);
    CHECK(since(t0) == clock::duration::zero());
}

CORIO_TEST_CASE("batch by size or time: [1,2,3] at 0, [4] at 2U, [5] at end of stream") {
    auto z = clock::duration::zero();
    auto g = batch(timed({{z, 1}, {z, 2}, {z, 3}, {z, 4}, {5 * U, 5}}), 3, 2 * U);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 3);
    CHECK(items[0] == std::pair<clock::duration, vi>(z, {1, 2, 3}));
    CHECK(items[1] == std::pair<clock::duration, vi>(2 * U, {4}));
    CHECK(items[2] == std::pair<clock::duration, vi>(5 * U, {5}));
}

CORIO_TEST_CASE("the batch wait starts at each batch's first item, not at the previous flush") {
    auto z = clock::duration::zero();
    // a@0, b@3U, c@4U, d@7U
    auto g = batch(timed({{z, 'a'}, {3 * U, 'b'}, {U, 'c'}, {3 * U, 'd'}}), 10, 2 * U);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 3);
    CHECK(items[0] == std::pair<clock::duration, vi>(2 * U, {'a'}));
    CHECK(items[1] == std::pair<clock::duration, vi>(5 * U, {'b', 'c'}));
    CHECK(items[2] == std::pair<clock::duration, vi>(7 * U, {'d'}));
}

CORIO_TEST_CASE("batch emits nothing while the source is idle") {
    auto z = clock::duration::zero();
    auto g = batch(timed({{z, 1}, {10 * U, 2}, {10 * U, 3}}), 10, U);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 3);
    CHECK(items[0] == std::pair<clock::duration, vi>(U, {1}));
    CHECK(items[1] == std::pair<clock::duration, vi>(11 * U, {2}));
    CHECK(items[2] == std::pair<clock::duration, vi>(20 * U, {3}));  // end of stream right after 3
}

CORIO_TEST_CASE("a source error keeps the partial batch: [1,2] first, then the error") {
    auto src = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
        co_await sleep(U);
        throw std::invalid_argument("bad source");
    };
    auto g = batch(src(), 10, 5 * U);
    auto t0 = now();
    auto first = co_await g.next();
    REQUIRE(first);
    CHECK(*first == vi{1, 2});
    CHECK(since(t0) == U);  // delivered when the stream ended
    REQUIRE_THROWS_AS(co_await g.next(), std::invalid_argument);
    auto after = co_await g.next();
    CHECK(!after);
}

CORIO_TEST_CASE(
    "the batch deadline never cancels a pending pull: an item every 1.5U with max_wait U gives [0] [1] [2] [3]") {
    auto step = U + U / 2;
    probe p;
    auto g = batch(ticking(p, step, 4), 2, U);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 4);
    for (int i = 0; i < 4; ++i) {
        CHECK(items[i].second == vi{i});
        CHECK(items[i].first == step * (i + 1) + U - (i == 3 ? U : clock::duration::zero()));
    }
    CHECK(!p.cancelled);
}

CORIO_TEST_CASE("destroying the batch generator after one batch destroys the source") {
    probe p;
    {
        auto g = batch(ticking(p, U), 2, forever);
        auto first = co_await g.next();
        REQUIRE(first);
        CHECK(*first == vi{0, 1});
    }
    // The pull that was pending is cancelled at once and unwinds at the next turn.
    co_await yield_now();
    CHECK(p.cancelled);
    CHECK(p.destroyed);
    co_await no_leak();
}

CORIO_TEST_CASE(
    "cancelling the consumer mid-batch destroys the source and drops the partial batch before next() throws") {
    probe p;
    bool source_gone_at_throw = false;
    auto consumer = [&]() -> task<void> {
        auto g = batch(ticking(p, U), 10, forever);
        try {
            co_await g.next();
        } catch (const cancelled_error&) {
            source_gone_at_throw = p.destroyed;
            throw;
        }
    };
    auto h = spawn(consumer());
    co_await sleep(3 * U + U / 2);  // three items collected, the fourth pending
    h.cancel();
    bool c = co_await ended_cancelled(h);
    CHECK(c);
    CHECK(source_gone_at_throw);
    CHECK(p.cancelled);
    CHECK(p.pulls == 4);
    co_await no_leak();
}

CORIO_TEST_CASE("bad arguments to the stream operators throw std::invalid_argument") {
    CHECK_THROWS_AS(batch(0, U), std::invalid_argument);
    CHECK_THROWS_AS(batch(count(3), 0, U), std::invalid_argument);
    CHECK_THROWS_AS(batch(3, -U), std::invalid_argument);
    CHECK_THROWS_AS(buffer(0), std::invalid_argument);
    auto id = [](int v) { return v; };
    CHECK_THROWS_AS(map_concurrent(0, id), std::invalid_argument);
    CHECK_THROWS_AS(map_unordered(0, id), std::invalid_argument);
    auto g = count(3);
    auto noop = [](int) {};
    CHECK_THROWS_AS(for_each_concurrent(g, 0, noop), std::invalid_argument);
    try {
        (void)batch(0, U);
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("max_size") != std::string::npos);
    }
    co_return;
}

// ------------------------------------------------------------ concurrent ---

CORIO_TEST_CASE("buffer(n) pulls the source at most n items ahead of the consumer") {
    probe p;
    auto g = ticking(p, U, 10) | buffer(3);
    auto a = co_await g.next();
    CHECK(a == 0);
    co_await sleep(10 * U);  // the consumer is away: the pump reads ahead
    CHECK(p.pulls == 4);     // items 1, 2, 3 buffered; nothing more is pulled
    auto t0 = now();
    std::vector<int> rest;
    while (auto v = co_await g.next()) rest.push_back(*v);
    CHECK(rest == vi{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(since(t0) == 6 * U);
}

CORIO_TEST_CASE("buffer delivers what it read before the source failed, then the error") {
    auto src = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
        throw my_exc{};
    };
    auto g = src() | buffer(4);
    auto a = co_await g.next();
    auto b = co_await g.next();
    CHECK(a == 1);
    CHECK(b == 2);
    REQUIRE_THROWS_AS(co_await g.next(), my_exc);
}

CORIO_TEST_CASE("a buffer stopped inside next() cancels and awaits its pull before next() returns") {
    probe p;
    auto g = ticking(p, forever) | buffer(2);
    auto t = co_await move_on_after(U, g.next());
    CHECK(!t);
    CHECK(p.cancelled);
    CHECK(p.destroyed);  // the adaptor finished, and its source with it
    auto after = co_await g.next();
    CHECK(!after);
    co_await no_leak();
}

CORIO_TEST_CASE(
    "destroying a buffer between two next() calls cancels the pending pull; the source unwinds at the next turn") {
    probe p;
    {
        auto g = ticking(p, U) | buffer(2);
        auto a = co_await g.next();
        CHECK(a == 0);
        CHECK(p.pulls == 2);  // the pump is inside the source's sleep for item 1
    }
    CHECK(!p.cancelled);
    co_await yield_now();
    CHECK(p.cancelled);
    CHECK(p.destroyed);
    co_await no_leak();
}

CORIO_TEST_CASE("merge interleaves the sources as their items arrive") {
    auto a = timed({{U, 1}, {2 * U, 3}});      // at U, 3U
    auto b = timed({{2 * U, 2}, {2 * U, 4}});  // at 2U, 4U
    auto c = timed({{5 * U, 5}});              // at 5U
    auto g = merge(std::move(a), std::move(b), std::move(c));
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 5);
    for (int i = 0; i < 5; ++i) {
        CHECK(items[i].second == i + 1);
        CHECK(items[i].first == (i + 1) * U);
    }
}

CORIO_TEST_CASE("merge: the first source error cancels the other sources and is raised") {
    probe p;
    auto bad = []() -> async_generator<int> {
        co_await sleep(2 * U);
        throw my_exc{};
        co_yield 0;
    };
    auto g = merge(ticking(p, 3 * U), bad());
    auto t0 = now();
    REQUIRE_THROWS_AS(co_await g.next(), my_exc);
    CHECK(since(t0) == 2 * U);
    CHECK(p.cancelled);
    CHECK(p.destroyed);
}

CORIO_TEST_CASE("map_concurrent runs at most n at once and keeps input order") {
    int running = 0, peak = 0;
    auto work = [&](int v) -> task<int> {
        ++running;
        peak = std::max(peak, running);
        co_await sleep((v % 2 == 0 ? 3 : 1) * U);  // even items are slow
        --running;
        co_return v * 10;
    };
    auto g = count(6) | map_concurrent(2, work);
    auto items = co_await timed_items(g);
    CHECK(peak == 2);
    std::vector<int> values;
    for (auto& [t, v] : items) values.push_back(v);
    CHECK(values == vi{0, 10, 20, 30, 40, 50});
    // 0 (3U) and 1 (U) start at 0; item 0 is out at 3U, so 2 starts at 1U? no: the
    // window is n items not yet taken, so 2 waits for 0 to be taken at 3U.
    CHECK(items[0].first == 3 * U);
    CHECK(items.back().first == 9 * U);
}

CORIO_TEST_CASE("map_unordered gives results in completion order") {
    auto work = [](int v) -> task<int> {
        co_await sleep((3 - v) * U);
        co_return v;
    };
    auto g = count(3) | map_unordered(3, work);
    auto items = co_await timed_items(g);
    REQUIRE(items.size() == 3);
    CHECK(items[0] == std::pair<clock::duration, int>(U, 2));
    CHECK(items[1] == std::pair<clock::duration, int>(2 * U, 1));
    CHECK(items[2] == std::pair<clock::duration, int>(3 * U, 0));
}

CORIO_TEST_CASE("map_concurrent raises f's error at its position, after the results before it, and cancels the rest") {
    bool slow_cancelled = false;
    auto work = [&](int v) -> task<int> {
        if (v == 1) {
            co_await sleep(U);
            throw my_exc{};
        }
        if (v == 2) {
            try {
                co_await sleep(forever);
            } catch (const cancelled_error&) {
                slow_cancelled = true;
                throw;
            }
        }
        co_return v;
    };
    auto g = count(3) | map_concurrent(3, work);
    auto a = co_await g.next();
    CHECK(a == 0);
    REQUIRE_THROWS_AS(co_await g.next(), my_exc);
    CHECK(slow_cancelled);  // cancelled and awaited before next() threw
    auto after = co_await g.next();
    CHECK(!after);
}

CORIO_TEST_CASE("for_each_concurrent runs fn on at most n items at once and returns when all finished") {
    int running = 0, peak = 0, done = 0;
    auto work = [&](int) -> task<void> {
        ++running;
        peak = std::max(peak, running);
        co_await sleep(U);
        --running;
        ++done;
    };
    auto t0 = now();
    co_await for_each_concurrent(count(7), 3, work);
    CHECK(peak == 3);
    CHECK(done == 7);
    CHECK(since(t0) == 3 * U);
}

CORIO_TEST_CASE("for_each_concurrent: the first error cancels the other calls and the pulling, then is rethrown") {
    int cancelled = 0;
    probe p;
    auto work = [&](int v) -> task<void> {
        if (v == 1) throw my_exc{};
        try {
            co_await sleep(forever);
        } catch (const cancelled_error&) {
            ++cancelled;
            throw;
        }
    };
    auto g = ticking(p, U);
    auto t0 = now();
    REQUIRE_THROWS_AS(co_await for_each_concurrent(g, 4, work), my_exc);
    CHECK(since(t0) == 2 * U);
    CHECK(cancelled == 1);
    CHECK(p.cancelled);  // the pending pull was cancelled too
}

CORIO_TEST_CASE("cancelling the caller of for_each_concurrent cancels every call and waits for them") {
    int cleaned = 0;
    auto work = [&](int) -> task<void> {
        bool was_cancelled = false;
        try {
            co_await sleep(forever);
        } catch (const cancelled_error&) {
            was_cancelled = true;
        }
        co_await shield(sleep(U));
        if (was_cancelled) ++cleaned;
        throw cancelled_error{};
    };
    auto caller = [&]() -> task<void> { co_await for_each_concurrent(count(2), 2, work); };
    auto h = spawn(caller());
    co_await sleep(U);
    h.cancel();
    auto t0 = now();
    bool c = co_await ended_cancelled(h);
    CHECK(c);
    CHECK(cleaned == 2);
    CHECK(since(t0) == U);
    co_await no_leak();
}

namespace {
task<std::string> finish_after(clock::duration d, std::string v) {
    co_await sleep(d);
    if (v == "E") throw my_exc{};
    co_return v;
}

task<void> push_outcome(queue<result<std::string>>& q, clock::duration d, std::string v) {
    std::exception_ptr err;
    std::string r;
    try {
        r = co_await finish_after(d, v);
    } catch (const my_exc&) {
        err = std::current_exception();
    }
    if (err) co_await q.put(result<std::string>(err));
    else co_await q.put(result<std::string>(std::move(r)));
}
}  // namespace

CORIO_TEST_CASE("as_completed yields each outcome in completion order; an error does not stop it") {
    std::vector<task<std::string>> jobs;
    jobs.push_back(finish_after(3 * U, "c"));
    jobs.push_back(finish_after(U, "a"));
    jobs.push_back(finish_after(2 * U, "E"));
    auto g = as_completed(jobs);
    auto t0 = now();
    auto r1 = co_await g.next();
    CHECK(since(t0) == U);
    auto r2 = co_await g.next();
    CHECK(since(t0) == 2 * U);
    auto r3 = co_await g.next();
    CHECK(since(t0) == 3 * U);
    auto r4 = co_await g.next();
    REQUIRE(r1);
    REQUIRE(r2);
    REQUIRE(r3);
    CHECK(r1->value() == "a");
    CHECK_THROWS_AS(r2->value(), my_exc);
    CHECK(r3->value() == "c");
    CHECK(!r4);
    std::vector<task<int>> none;
    auto e = as_completed(none);
    auto nothing = co_await e.next();
    CHECK(!nothing);
}

CORIO_TEST_CASE("completion order by hand: children in a task group push their results into a queue") {
    queue<result<std::string>> q;
    std::vector<std::string> seen;
    bool saw_error = false;
    auto t0 = now();
    co_await with_task_group([&](task_group& tg) -> task<void> {
        tg.spawn(push_outcome(q, 3 * U, "c"));
        tg.spawn(push_outcome(q, U, "a"));
        tg.spawn(push_outcome(q, 2 * U, "E"));
        for (int i = 0; i < 3; ++i) {
            auto r = co_await q.get();
            if (r.has_value()) seen.push_back(r.value());
            else saw_error = seen.size() == 1;
        }
    });
    CHECK(seen == std::vector<std::string>{"a", "c"});
    CHECK(saw_error);  // between "a" and "c", and it did not stop the consumer
    CHECK(since(t0) == 3 * U);
    auto t1 = now();
    co_await with_task_group([](task_group&) -> task<void> { co_return; });
    CHECK(since(t1) == clock::duration::zero());
}

CORIO_TEST_CASE("as_completed takes awaitables too") {
    std::vector<decltype(sleep(U))> sleeps;
    sleeps.push_back(sleep(2 * U));
    sleeps.push_back(sleep(U));
    auto g = as_completed(std::move(sleeps));
    int n = 0;
    auto t0 = now();
    while (auto r = co_await g.next()) {
        CHECK(r->has_value());
        ++n;
    }
    CHECK(n == 2);
    CHECK(since(t0) == 2 * U);
}

CORIO_TEST_CASE("as_completed: a consumer that stops early has the rest cancelled") {
    int cancelled = 0;
    auto job = [&](clock::duration d) -> task<int> {
        try {
            co_await sleep(d);
        } catch (const cancelled_error&) {
            ++cancelled;
            throw;
        }
        co_return 1;
    };
    // Stopping inside next() (a timeout): cancelled and awaited before it returns.
    {
        std::vector<task<int>> jobs;
        jobs.push_back(job(U));
        jobs.push_back(job(forever));
        jobs.push_back(job(forever));
        auto g = as_completed(jobs);
        auto first = co_await g.next();
        CHECK(first->value() == 1);
        auto cut = co_await move_on_after(U, g.next());
        CHECK(!cut);
        CHECK(cancelled == 2);
    }
    // Breaking out (destroying it): cancelled at once, finished at the next turn.
    cancelled = 0;
    {
        std::vector<task<int>> jobs;
        jobs.push_back(job(U));
        jobs.push_back(job(forever));
        auto g = as_completed(jobs);
        while (auto r = co_await g.next()) break;
    }
    co_await yield_now();
    CHECK(cancelled == 1);
    co_await no_leak();
}

CORIO_TEST_CASE("composes with every combinator: next() of a concurrent adaptor") {
    probe p;
    auto g = ticking(p, U) | buffer(1);
    auto a = co_await timeout(2 * U, g.next());
    CHECK(a == 0);
    auto b = co_await timeout_at(now() + 2 * U, g.next());
    CHECK(b == 1);
    auto c = co_await move_on_after(2 * U, g.next());
    REQUIRE(c);
    CHECK(*c == 2);
    auto d = co_await move_on_at(now() + 2 * U, g.next());
    REQUIRE(d);
    CHECK(*d == 3);
    auto e = co_await shield(g.next());
    CHECK(e == 4);
    cancellation_source src;
    auto f = co_await with_token(src.token(), g.next());
    CHECK(f == 5);
    auto r = co_await race(g.next(), sleep(5 * U));
    CHECK(r.index() == 0);
    probe q;
    auto bg = batch(ticking(q, U), 2, forever);
    auto [x, y] = co_await gather(g.next(), bg.next());
    CHECK(x == 7);
    CHECK(*y == vi{0, 1});
    auto s = co_await gather_settled(g.next(), bg.next());
    CHECK(std::get<0>(s).value() == 8);
    CHECK(*std::get<1>(s).value() == vi{2, 3});
    // A deadline cutting a batch's next() short ends that batch stream.
    // (move_on_after over a batch's next() trips a false g++ 12
    // -Wmaybe-uninitialized inside cancel.hpp on optional<optional<vector>>.)
    REQUIRE_THROWS_AS(co_await timeout(U / 2, bg.next()), timeout_error);
    auto over = co_await bg.next();
    CHECK(!over);
}
