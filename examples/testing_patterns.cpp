// testing_patterns: how to test corio code with corio/testing.hpp.
//
// The asyncio way (pytest-asyncio) tests an async function by awaiting it,
// checks what gather returns, asserts that a timeout raises and that
// cancelling a task runs its cleanup. Each of those is one CORIO_TEST_CASE
// below. Then two things asyncio's tests cannot do: assert exact timing
// (virtual time: a 30 s sleep is checked to the nanosecond and takes no
// real time) and fail a test that leaks (a task left alive, a timer armed,
// an error nobody observed), plus a manual clock that the test advances.
//
// A Catch2 program: run it with no arguments (ctest does), or with Catch2's
// options (`testing_patterns --list-tests`, a test name, `-s`).
#include <corio/testing.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using corio::task;
namespace testing = corio::testing;

// ---------------------------------------------------- the code under test ---

namespace shop {

/// A price lookup that takes 50 ms (a stand-in for a network call).
task<int> fetch_price(std::string item) {
    co_await corio::sleep(50ms);
    if (item.empty()) throw std::invalid_argument("fetch_price: empty item name");
    co_return static_cast<int>(item.size()) * 100;
}

/// Looks up three prices concurrently.
task<int> basket_total() {
    auto [a, b, c] = co_await corio::gather(fetch_price("tea"), fetch_price("bread"), fetch_price("jam"));
    co_return a + b + c;
}

/// A worker that holds a connection while it runs and closes it on every path.
struct connection {
    std::vector<std::string>& log;
    explicit connection(std::vector<std::string>& l) : log(l) { log.push_back("open"); }
    ~connection() { log.push_back("close"); }
};

task<void> worker(std::vector<std::string>& log) {
    connection c(log);
    for (;;) {
        co_await corio::sleep(1s);
        log.push_back("tick");
    }
}

/// Tries up to three times, 100 ms apart (a stand-in for a flaky call that
/// fails `failures_left` times); returns the number of the attempt that worked.
task<int> with_retries(int& failures_left) {
    for (int attempt = 0;; ++attempt) {
        try {
            if (failures_left-- > 0) throw std::runtime_error("transient");
            co_return attempt;
        } catch (const std::runtime_error&) {
            if (attempt == 2) throw;
        }
        co_await corio::sleep(100ms);
    }
}

}  // namespace shop

// ------------------------------------------------------ what asyncio does ---

CORIO_TEST_CASE("awaiting a function returns its value", "[patterns]") {
    int price = co_await shop::fetch_price("tea");
    CHECK(price == 300);
    // REQUIRE/CHECK may await directly: testing.hpp makes them evaluate once.
    CHECK(co_await shop::fetch_price("milk") == 400);
}

CORIO_TEST_CASE("gather returns every result, in order", "[patterns]") {
    auto [a, b] = co_await corio::gather(shop::fetch_price("jam"), shop::fetch_price("bread"));
    CHECK(a == 300);
    CHECK(b == 500);
    CHECK(co_await shop::basket_total() == 1100);
}

CORIO_TEST_CASE("an error comes back with its message", "[patterns]") {
    auto e = co_await testing::expect_throws<std::invalid_argument>(shop::fetch_price(""));
    CHECK(std::string(e.what()) == "fetch_price: empty item name");
}

CORIO_TEST_CASE("a timeout raises timeout_error", "[patterns]") {
    co_await testing::expect_timeout(corio::timeout(10ms, shop::fetch_price("tea")));
}

CORIO_TEST_CASE("cancelling a task runs its cleanup", "[patterns]") {
    std::vector<std::string> log;
    auto h = corio::spawn(shop::worker(log));
    co_await corio::sleep(2500ms);
    h.cancel();
    co_await testing::expect_cancelled(h);
    CHECK(log == std::vector<std::string>{"open", "tick", "tick", "close"});
}

// ------------------------------------------------- what asyncio cannot do ---

CORIO_TEST_CASE("exact virtual time: concurrent lookups take 50 ms, not 150", "[patterns]") {
    testing::stopwatch sw;
    co_await shop::basket_total();
    CHECK(sw.elapsed() == 50ms);  // exact, and no real time passed
    int failures = 2;
    int attempt = co_await testing::expect_completes_within(1s, shop::with_retries(failures));
    CHECK(attempt == 2);
    CHECK(sw.elapsed() == 50ms + 200ms);  // two waits of 100 ms between three attempts
}

CORIO_TEST_CASE("a manual clock: the test moves time itself", "[patterns]") {
    testing::manual_clock clock;
    std::vector<std::string> log;
    auto h = corio::spawn(shop::worker(log));
    co_await clock.settle();  // the worker runs until it blocks; time stands still
    CHECK(log == std::vector<std::string>{"open"});
    co_await clock.advance(999ms);
    CHECK(log.size() == 1);
    co_await clock.advance(1ms);
    CHECK(log == std::vector<std::string>{"open", "tick"});
    co_await clock.advance(3s);
    CHECK(log.size() == 5);
    h.cancel();
    co_await testing::expect_cancelled(h);
}

// A leak check: the case below would fail, because the task it spawns fails
// and nobody looks at its error ("1 error(s) reported as unobserved"). Its
// options say that this one error is expected, so it passes; drop the
// options to see the failure.
CORIO_TEST_CASE_WITH(testing::expect_unhandled(1), "a forgotten failing task is caught by the leak check",
                     "[patterns]") {
    { auto forgotten = corio::spawn(shop::fetch_price("")); }  // handle dropped: detached
    co_await corio::sleep(100ms);
}

// A loop over inputs in one test case: run_virtual runs each as its own case.
TEST_CASE("run_virtual: one checked run per input", "[patterns]") {
    for (const char* item : {"tea", "bread"}) {
        CAPTURE(item);
        int price = testing::run_virtual([item]() -> task<int> { co_return co_await shop::fetch_price(item); });
        CHECK(price == static_cast<int>(std::string(item).size()) * 100);
    }
}
