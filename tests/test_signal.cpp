// wait_for_signal() and run()'s cancel-on-signal. The signals are real: the
// cases send them to this process with raise()/kill(); the escalation case
// runs in a forked child, since it ends the process.
#include <corio/signal.hpp>

#include <chrono>
#include <thread>
#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/corio_test.hpp"

using corio::task;
using namespace std::chrono_literals;
using corio_test::set_on_exit;

namespace {

template <class F>
auto run_real(F&& body) {
    return corio::testing::run_virtual(std::forward<F>(body), corio::testing::real_time);
}

// Sends `sig` to this process after `d` of loop time.
task<void> send_after(std::chrono::milliseconds d, int sig) {
    co_await corio::sleep(d);
    ::kill(::getpid(), sig);
}

}  // namespace

TEST_CASE("wait_for_signal: returns the number of the signal that arrived") {
    int got = run_real([]() -> task<int> {
        auto h = corio::spawn(send_after(5ms, SIGUSR1));
        int s = co_await corio::wait_for_signal(SIGUSR1);
        co_await h;
        co_return s;
    });
    CHECK(got == SIGUSR1);
}

TEST_CASE("wait_for_signal: of several signals, the one that came; both spellings") {
    int got = run_real([]() -> task<int> {
        auto h = corio::spawn(send_after(5ms, SIGUSR2));
        int s = co_await corio::wait_for_signal(SIGUSR1, SIGUSR2);
        co_await h;
        co_return s;
    });
    CHECK(got == SIGUSR2);
    got = run_real([]() -> task<int> {
        auto h = corio::spawn(send_after(5ms, SIGUSR1));
        auto w = corio::wait_for_signal({SIGUSR2, SIGUSR1});
        int s = co_await std::move(w);
        co_await h;
        co_return s;
    });
    CHECK(got == SIGUSR1);
}

TEST_CASE("wait_for_signal: every waiter for the signal gets it") {
    run_real([]() -> task<void> {
        auto a = corio::spawn([]() -> task<int> { co_return co_await corio::wait_for_signal(SIGUSR1); }());
        auto b = corio::spawn([]() -> task<int> { co_return co_await corio::wait_for_signal(SIGUSR1, SIGUSR2); }());
        co_await send_after(5ms, SIGUSR1);
        int ra = co_await a;
        int rb = co_await b;
        CHECK(ra == SIGUSR1);
        CHECK(rb == SIGUSR1);
    });
}

TEST_CASE("wait_for_signal: a signal from another thread wakes a loop with nothing else to do") {
    int got = run_real([]() -> task<int> {
        std::thread t([] {
            std::this_thread::sleep_for(20ms);
            ::kill(::getpid(), SIGUSR2);
        });
        int s = co_await corio::wait_for_signal(SIGUSR2);
        t.join();
        co_return s;
    });
    CHECK(got == SIGUSR2);
}

TEST_CASE("wait_for_signal: composes with every combinator") {
    SECTION("timeout: timeout_error when no signal comes") {
        run_real([]() -> task<void> {
            CHECK_THROWS_AS(co_await corio::timeout(10ms, corio::wait_for_signal(SIGUSR1)), corio::timeout_error);
        });
    }
    SECTION("timeout_at: the signal in time") {
        int got = run_real([]() -> task<int> {
            auto h = corio::spawn(send_after(5ms, SIGUSR1));
            int s = co_await corio::timeout_at(corio::now() + 5s, corio::wait_for_signal(SIGUSR1));
            co_await h;
            co_return s;
        });
        CHECK(got == SIGUSR1);
    }
    SECTION("move_on_after: empty, and a later signal goes to the next waiter") {
        run_real([]() -> task<void> {
            auto r = co_await corio::move_on_after(5ms, corio::wait_for_signal(SIGUSR1));
            CHECK_FALSE(r);
            auto h = corio::spawn(send_after(5ms, SIGUSR1));
            int s = co_await corio::wait_for_signal(SIGUSR1);
            CHECK(s == SIGUSR1);
            co_await h;
        });
    }
    SECTION("shield: a cancelled task still receives the signal") {
        int got = 0;
        run_real([&]() -> task<void> {
            auto waiter = [&]() -> task<void> { got = co_await corio::shield(corio::wait_for_signal(SIGUSR2)); };
            auto h = corio::spawn(waiter());
            co_await corio::sleep(2ms);
            h.cancel();
            co_await send_after(5ms, SIGUSR2);
            co_await corio_test::ended_cancelled(h);
        });
        CHECK(got == SIGUSR2);
    }
    SECTION("with_token: a cancelled token stops the wait") {
        run_real([]() -> task<void> {
            corio::cancellation_source src;
            src.cancel();
            CHECK_THROWS_AS(co_await corio::with_token(src.token(), corio::wait_for_signal(SIGUSR1)),
                            corio::cancelled_error);
        });
    }
    SECTION("race: the signal beats a long sleep") {
        run_real([]() -> task<void> {
            auto h = corio::spawn(send_after(5ms, SIGUSR1));
            auto r = co_await corio::race(corio::wait_for_signal(SIGUSR1), corio::sleep(corio_test::forever));
            CHECK(r.index() == 0);
            CHECK(std::get<0>(r) == SIGUSR1);
            co_await h;
        });
    }
    SECTION("gather and gather_settled") {
        run_real([]() -> task<void> {
            auto [s, none] = co_await corio::gather(corio::wait_for_signal(SIGUSR1), send_after(5ms, SIGUSR1));
            CHECK(s == SIGUSR1);
            (void)none;
            auto [r, none2] = co_await corio::gather_settled(corio::wait_for_signal(SIGUSR2), send_after(5ms, SIGUSR2));
            CHECK(r.value() == SIGUSR2);
            CHECK(none2.has_value());
        });
    }
}

TEST_CASE("run: the first SIGINT cancels main; every scope unwinds and cleanup runs") {
    bool child_cleaned = false, main_cleaned = false, leftover_cleaned = false, after = false;
    // Named lambdas that outlive every task they start (a lambda coroutine's
    // captures die with the lambda object).
    auto leftover = [&]() -> task<void> {
        set_on_exit g{leftover_cleaned};
        co_await corio::sleep(corio_test::forever);
    };
    auto child = [&]() -> task<void> {
        set_on_exit g{child_cleaned};
        co_await corio::sleep(corio_test::forever);
    };
    auto body = [&](corio::task_group& tg) -> task<void> {
        tg.spawn(child());
        co_await send_after(10ms, SIGINT);
        co_await corio::sleep(corio_test::forever);
    };
    auto main = [&]() -> task<void> {
        set_on_exit m{main_cleaned};
        corio::spawn(leftover());
        co_await corio::with_task_group(body);
        after = true;
    };
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(corio::run(main()), corio::cancelled_error);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(child_cleaned);
    CHECK(main_cleaned);
    CHECK(leftover_cleaned);
    CHECK_FALSE(after);
}

TEST_CASE("run: SIGTERM cancels too, and shielded cleanup still runs to the end") {
    bool cleanup_done = false;
    auto main = [&]() -> task<void> {
        std::exception_ptr cancelled;
        try {
            co_await send_after(5ms, SIGTERM);
            co_await corio::sleep(corio_test::forever);
        } catch (const corio::cancelled_error&) {
            cancelled = std::current_exception();
        }
        co_await corio::shield(corio::sleep(10ms));  // cleanup that suspends
        cleanup_done = true;
        std::rethrow_exception(cancelled);
    };
    CHECK_THROWS_AS(corio::run(main()), corio::cancelled_error);
    CHECK(cleanup_done);
}

TEST_CASE("run: a task waiting for the signal takes it; cancel-on-signal does not fire") {
    int v = corio::run([]() -> task<int> {
        auto h = corio::spawn(send_after(5ms, SIGTERM));
        int s = co_await corio::wait_for_signal(SIGTERM);
        co_await h;
        co_await corio::sleep(1ms);  // main was not cancelled
        co_return s;
    }());
    CHECK(v == SIGTERM);
}

TEST_CASE("run: .cancel_on_signals lists which signals cancel main") {
    bool after = false;
    auto main = [&]() -> task<void> {
        co_await send_after(5ms, SIGUSR2);
        co_await corio::sleep(corio_test::forever);
        after = true;
    };
    CHECK_THROWS_AS(corio::run(main(), corio::run_options{.cancel_on_signals = {SIGUSR2}}), corio::cancelled_error);
    CHECK_FALSE(after);
}

TEST_CASE("run: a second SIGINT ends the process at once with status 130") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            corio::run([]() -> task<void> {
                try {
                    co_await send_after(5ms, SIGINT);
                    co_await corio::sleep(corio_test::forever);
                } catch (const corio::cancelled_error&) {
                }
                // Cleanup that would take 5 s; the second signal cuts it short.
                auto again = corio::spawn(send_after(5ms, SIGINT));
                co_await corio::shield(corio::sleep(5s));
                std::_Exit(3);
            }());
        } catch (...) {
            std::_Exit(4);
        }
        std::_Exit(5);
    }
    auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
}

TEST_CASE("signals: bad input is rejected with a clear message") {
    auto message = [](auto f) -> std::string {
        try {
            f();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no exception";
    };
    CHECK(message([] { (void)corio::wait_for_signal(0); }).find("0 is not a signal") != std::string::npos);
    CHECK(message([] { (void)corio::wait_for_signal(SIGKILL); }).find("is not a signal that can be caught") !=
          std::string::npos);
    CHECK(message([] { (void)corio::wait_for_signal(std::initializer_list<int>{}); }).find("at least one signal") !=
          std::string::npos);
    std::string msg = message(
        [] { corio::run([]() -> task<void> { co_return; }(), corio::run_options{.cancel_on_signals = {SIGSTOP}}); });
    CHECK(msg.find("is not a signal that can be caught") != std::string::npos);
}

TEST_CASE("signals: a signal is caught only while someone waits for it") {
    auto disposition = [](int sig) {
        struct sigaction sa {};
        ::sigaction(sig, nullptr, &sa);
        return sa.sa_handler;
    };
    REQUIRE(disposition(SIGUSR1) == SIG_DFL);
    run_real([&]() -> task<void> {
        auto waiting = [&]() -> task<void> {
            auto r = co_await corio::move_on_after(20ms, corio::wait_for_signal(SIGUSR1));
            CHECK_FALSE(r);
        };
        auto h = corio::spawn(waiting());
        co_await corio::sleep(5ms);
        CHECK(disposition(SIGUSR1) != SIG_DFL);  // caught while the task waits
        co_await h;
        CHECK(disposition(SIGUSR1) == SIG_DFL);  // given back when it stopped waiting
    });
    CHECK(disposition(SIGINT) == SIG_DFL);  // run()'s cancel-on-signal ended with it
}
