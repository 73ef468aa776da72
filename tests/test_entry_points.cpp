// tests/test_entry_points.cpp: every entry point (run, event_loop::spawn and
// run_until_complete, spawn, task_group::spawn, gather, race and their range
// forms, every scope combinator) takes what a user naturally writes: any
// awaitable, or a callable returning one, which corio calls inside the task
// and keeps alive while the coroutine runs. The callables here read their
// captures after suspending, so a closure that died early would be read
// after its end (ASan reports it; the values would be wrong).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <corio/corio.hpp>

#include "support/corio_test.hpp"

namespace {

using namespace std::chrono_literals;
using corio::task;
using corio_test::since;
using corio_test::U;

/// A capture that notices being read after its destruction (besides ASan).
struct witness {
    std::shared_ptr<int> alive = std::make_shared<int>(7);
    int read() const { return alive ? *alive : -1; }
};

/// A callable whose coroutine reads its by-value capture after a sleep.
auto late_reader(int& out) {
    return [w = witness{}, &out]() -> task<int> {
        co_await corio::sleep(U);
        out = w.read();
        co_return w.read();
    };
}

}  // namespace

CORIO_TEST_CASE("spawn of a lambda keeps the lambda alive while its coroutine runs") {
    int seen = 0;
    auto h = corio::spawn(late_reader(seen));
    int v = co_await h;
    CHECK(v == 7);
    CHECK(seen == 7);

    // The natural spelling, with a temporary lambda written in place.
    std::string name = "corio";
    auto h2 = corio::spawn([&]() -> task<std::size_t> {
        co_await corio::sleep(U);
        co_return name.size();
    });
    std::size_t n = co_await h2;
    CHECK(n == 5);
}

CORIO_TEST_CASE("spawn takes any awaitable, not only a task") {
    const auto t0 = corio::now();
    corio::event ev;
    auto waiting = corio::spawn(ev.wait());
    auto sleeping = corio::spawn(corio::sleep(U));
    co_await corio::sleep(U / 2);
    CHECK_FALSE(waiting.done());
    ev.set();
    co_await waiting;
    co_await sleeping;
    CHECK(since(t0) == U);
    corio::queue<int> q;
    auto getter = corio::spawn(q.get());
    REQUIRE(q.try_put(3));
    int v = co_await getter;
    CHECK(v == 3);
}

TEST_CASE("run and run_until_complete take a callable or an awaitable") {
    int seen = 0;
    int v = corio::run(late_reader(seen), corio::run_options{.virtual_time = true});
    CHECK(v == 7);
    CHECK(seen == 7);

    corio::run(corio::sleep(U), corio::run_options{.virtual_time = true});

    corio::event_loop loop(corio::run_options{.virtual_time = true});
    int w = loop.run_until_complete([&]() -> task<int> {
        auto h = loop.spawn(late_reader(seen));
        co_return co_await h;
    });
    CHECK(w == 7);
    auto t0 = loop.now();
    loop.run_until_complete(corio::sleep(U));
    CHECK(loop.now() - t0 == U);
}

CORIO_TEST_CASE("task_group::spawn of a lambda keeps it alive") {
    int seen = 0;
    co_await corio::with_task_group([&](corio::task_group& tg) -> task<void> {
        tg.spawn(late_reader(seen));
        tg.spawn([&]() -> task<void> {
            co_await corio::sleep(2 * U);
            seen += 1;
        });
        co_return;
    });
    CHECK(seen == 8);
}

CORIO_TEST_CASE("gather and race take callables, also as ranges") {
    int a = 0, b = 0;
    auto [x, y] = co_await corio::gather(late_reader(a), late_reader(b));
    CHECK(x == 7);
    CHECK(y == 7);
    CHECK(a + b == 14);

    auto r = co_await corio::race(late_reader(a), corio::sleep(5 * U));
    CHECK(r.index() == 0);

    std::vector<std::function<task<int>()>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back([i]() -> task<int> {
            co_await corio::sleep((3 - i) * U);
            co_return i;
        });
    auto all = co_await corio::gather(fs);
    CHECK(all == std::vector<int>{0, 1, 2});
    auto limited = co_await corio::gather_limited(1, fs);
    CHECK(limited == std::vector<int>{0, 1, 2});
    auto first = co_await corio::race(fs);
    CHECK(first.first == 2);
    auto settled = co_await corio::gather_settled(fs);
    CHECK(settled.size() == 3);
}

CORIO_TEST_CASE("every scope combinator takes a callable") {
    int seen = 0;
    int v = co_await corio::timeout(5 * U, late_reader(seen));
    CHECK(v == 7);
    auto o = co_await corio::move_on_after(5 * U, late_reader(seen));
    CHECK(o == 7);
    auto cut = co_await corio::move_on_after(U / 2, late_reader(seen));
    CHECK_FALSE(cut);
    int s = co_await corio::shield(late_reader(seen));
    CHECK(s == 7);
    corio::cancellation_source src;
    int t = co_await corio::with_token(src.token(), late_reader(seen));
    CHECK(t == 7);
    corio::cancel_scope scope;
    auto u = co_await scope.run(late_reader(seen));
    CHECK(u == 7);
    REQUIRE_THROWS_AS(co_await corio::timeout(U / 2, late_reader(seen)), corio::timeout_error);
}

TEST_CASE("only callables returning an awaitable are invoked; awaitables are never called") {
    auto returns_task = []() -> task<int> { co_return 1; };
    auto returns_int = [] { return 1; };
    STATIC_REQUIRE(corio::detail::awaitable_factory<decltype(returns_task)>);
    STATIC_REQUIRE_FALSE(corio::detail::awaitable_factory<decltype(returns_int)>);
    STATIC_REQUIRE_FALSE(corio::detail::awaitable_factory<task<int>>);
    STATIC_REQUIRE_FALSE(corio::detail::awaitable_factory<corio::detail::sleep_awaiter>);
}
