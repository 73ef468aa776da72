// Tests for how micro_batcher (corio/batcher.hpp) hands a handled batch back
// to its callers: the handler call resumes them itself, in batch order, as
// soon as the handler returned (before anything the handler woke), and what
// a resumed caller may do meanwhile: cancel a later caller of the same batch,
// submit again, close the batcher. Plus cancellation of callers while their
// batch is in the handler, and a large batch resumed without growing the stack.
#include <corio/batcher.hpp>

#include <string>
#include <vector>

#include "support/corio_test.hpp"

using namespace corio;
using corio_test::ended_cancelled;
using corio_test::forever;
using corio_test::no_leak;
using corio_test::since;
using corio_test::U;

namespace {

using vi = std::vector<int>;
using log_t = std::vector<std::string>;

/// Doubles every item after `takes` of loop time, logging "handler" as it returns.
micro_batcher<int, int>::handler_type doubler(log_t& log, std::vector<vi>& calls, clock::duration takes) {
    return [&log, &calls, takes](vi xs) -> task<std::vector<int>> {
        calls.push_back(xs);
        co_await sleep(takes);
        for (int& x : xs) x *= 2;
        log.push_back("handler");
        co_return xs;
    };
}

/// Submits x and logs "x=output" (or "x cancelled") as soon as it is resumed.
task<void> submit_logged(micro_batcher<int, int>& b, int x, log_t& log) {
    try {
        int v = co_await b.submit(x);
        log.push_back(std::to_string(x) + "=" + std::to_string(v));
    } catch (const cancelled_error&) {
        log.push_back(std::to_string(x) + " cancelled");
        throw;
    }
}

}  // namespace

CORIO_TEST_CASE("the callers of a batch resume in batch order as the handler returns, before what it woke") {
    log_t log;
    std::vector<vi> calls;
    event handler_done;
    auto handler = [&](vi xs) -> task<std::vector<int>> {
        calls.push_back(xs);
        co_await sleep(U);
        handler_done.set();  // wakes `watcher` through the ready queue
        for (int& x : xs) x *= 2;
        co_return xs;
    };
    micro_batcher<int, int> b(handler, 3, forever);
    auto watcher = spawn([&]() -> task<void> {
        co_await handler_done.wait();
        log.push_back("watcher");
    });
    auto t0 = now();
    auto h3 = spawn(submit_logged(b, 3, log));
    auto h1 = spawn(submit_logged(b, 1, log));
    auto h2 = spawn(submit_logged(b, 2, log));
    co_await h3;
    co_await h1;
    co_await h2;
    co_await watcher;
    CHECK(since(t0) == U);
    CHECK(calls == std::vector<vi>{{3, 1, 2}});
    CHECK(log == log_t{"3=6", "1=2", "2=4", "watcher"});
    co_await b.close();
    co_await no_leak();
}

CORIO_TEST_CASE("a caller cancelled while its batch is in the handler ends at once; the others resume in order") {
    log_t log;
    std::vector<vi> calls;
    micro_batcher<int, int> b(doubler(log, calls, 3 * U), 4, forever);
    std::vector<join_handle<void>> hs;
    for (int x = 1; x <= 4; ++x) hs.push_back(spawn(submit_logged(b, x, log)));
    co_await sleep(U);  // the batch was sent at 0 (full); the handler returns at 3U
    auto t0 = now();
    hs[1].cancel();
    hs[3].cancel();
    bool c1 = co_await ended_cancelled(hs[1]);
    bool c3 = co_await ended_cancelled(hs[3]);
    CHECK(c1);
    CHECK(c3);
    CHECK(since(t0) == clock::duration::zero());
    co_await hs[0];
    co_await hs[2];
    CHECK(since(t0) == 2 * U);
    CHECK(calls == std::vector<vi>{{1, 2, 3, 4}});  // sent before the cancellations: the handler had all four
    CHECK(log == log_t{"2 cancelled", "4 cancelled", "handler", "1=2", "3=6"});
    co_await b.close();
    co_await no_leak();
}

CORIO_TEST_CASE(
    "a resumed caller that cancels a later caller of its batch: that one ends cancelled, its output dropped") {
    log_t log;
    std::vector<vi> calls;
    micro_batcher<int, int> b(doubler(log, calls, U), 3, forever);
    join_handle<void> later;
    auto first = spawn([&]() -> task<void> {
        int v = co_await b.submit(1);
        log.push_back("1=" + std::to_string(v));
        later.cancel();  // still waiting in the same handled batch
    });
    later = spawn(submit_logged(b, 2, log));
    auto third = spawn(submit_logged(b, 3, log));
    co_await first;
    bool c = co_await ended_cancelled(later);
    CHECK(c);
    co_await third;
    CHECK(log == log_t{"handler", "1=2", "3=6", "2 cancelled"});
    co_await b.close();
    co_await no_leak();
}

CORIO_TEST_CASE("a resumed caller may submit again and close the batcher; the rest of its batch is still resumed") {
    log_t log;
    std::vector<vi> calls;
    micro_batcher<int, int> b(doubler(log, calls, U), 2, forever);
    auto t0 = now();
    auto first = spawn([&]() -> task<void> {
        int v = co_await b.submit(1);
        log.push_back("1=" + std::to_string(v));
        // Resumed by the handler call of [1, 2]: these go to the next batch.
        auto again = co_await gather(b.submit(10), b.submit(20));
        log.push_back("10=" + std::to_string(std::get<0>(again)) + " 20=" + std::to_string(std::get<1>(again)));
        co_await b.close();
        log.push_back("closed");
    });
    auto second = spawn(submit_logged(b, 2, log));
    co_await first;
    co_await second;
    CHECK(since(t0) == 2 * U);
    CHECK(calls == std::vector<vi>{{1, 2}, {10, 20}});
    CHECK(log == log_t{"handler", "1=2", "2=4", "handler", "10=20 20=40", "closed"});
    CHECK(b.closed());
    co_await no_leak();
}

CORIO_TEST_CASE("a resumed caller that closes the batcher at once: close waits for the handler call resuming it") {
    log_t log;
    std::vector<vi> calls;
    micro_batcher<int, int> b(doubler(log, calls, U), 3, forever);
    auto first = spawn([&]() -> task<void> {
        int v = co_await b.submit(1);
        log.push_back("1=" + std::to_string(v));
        co_await b.close();  // the handler call of [1, 2, 3] is still resuming 2 and 3
        log.push_back("closed");
    });
    auto second = spawn(submit_logged(b, 2, log));
    auto third = spawn(submit_logged(b, 3, log));
    co_await first;
    co_await second;
    co_await third;
    CHECK(log == log_t{"handler", "1=2", "2=4", "3=6", "closed"});
    co_await no_leak();
}

CORIO_TEST_CASE("a handler error reaches every caller of the batch in batch order") {
    log_t log;
    micro_batcher<int, int> b(
        [](vi) -> task<std::vector<int>> {
            co_await sleep(U);
            throw std::runtime_error("lookup failed");
        },
        3, forever);
    auto caller = [&](int x) -> task<void> {
        try {
            co_await b.submit(x);
        } catch (const std::runtime_error& e) {
            log.push_back(std::to_string(x) + ": " + e.what());
        }
    };
    co_await gather(caller(3), caller(2), caller(1));
    CHECK(log == log_t{"3: lookup failed", "2: lookup failed", "1: lookup failed"});
    co_await b.close();
}

CORIO_TEST_CASE("a batch of 100,000 gathered callers is resumed inline without growing the stack") {
    std::vector<vi> calls;
    log_t log;
    micro_batcher<int, int> b(doubler(log, calls, clock::duration::zero()), 100'000, forever);
    std::vector<task<int>> ts;
    for (int i = 0; i < 100'000; ++i) ts.push_back(b.submit(i));
    std::vector<int> out = co_await gather(std::move(ts));
    REQUIRE(out.size() == 100'000);
    bool ok = true;
    for (int i = 0; i < 100'000; ++i) ok = ok && out[static_cast<std::size_t>(i)] == 2 * i;
    CHECK(ok);
    CHECK(calls.size() == 1);
    co_await b.close();
}
