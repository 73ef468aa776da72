// debug.hpp: slow-step warnings, task dumps, the deadlock report and the
// dump-on-signal hook. stderr is captured into a temporary file.
#include <corio/debug.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "support/corio_test.hpp"

using corio::task;
using namespace std::chrono_literals;

namespace {

/// Redirects stderr (fd 2) into a temporary file for its lifetime.
class capture_stderr {
public:
    capture_stderr() : file_(std::tmpfile()), saved_(::dup(2)) {
        std::fflush(stderr);
        ::dup2(::fileno(file_), 2);
    }
    ~capture_stderr() {
        restore();
        std::fclose(file_);
    }
    std::string text() {
        restore();
        std::string s;
        std::rewind(file_);
        char buf[512];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, file_)) s.append(buf, n);
        return s;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_;
    int saved_;
};

void busy_for(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

task<void> hog() {
    co_await corio::yield_now();
    busy_for(60ms);  // one step that holds the loop
}

task<void> polite() {
    for (int i = 0; i < 5; ++i) {
        busy_for(std::chrono::milliseconds(0));
        co_await corio::yield_now();
    }
}

task<void> run_both() {
    auto a = corio::spawn(hog(), "hog");
    auto b = corio::spawn(polite(), "polite");
    co_await a;
    co_await b;
}

const corio::task_dump* find(const std::vector<corio::task_dump>& d, std::string_view name) {
    for (const auto& t : d)
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace

TEST_CASE("debug: a step longer than the threshold is reported, naming the task") {
    capture_stderr cap;
    corio::run(run_both(), corio::run_options{.debug = true, .slow_step_threshold = 20ms});
    std::string err = cap.text();
    CHECK(err.find("slow step: task 'hog' held the loop for") != std::string::npos);
    CHECK(err.find("threshold 20.0 ms") != std::string::npos);
    INFO(err);
    CHECK(err.find("'polite'") == std::string::npos);
}

TEST_CASE("debug: off by default, nothing is timed or reported") {
    capture_stderr cap;
    corio::run(run_both(), corio::run_options{.slow_step_threshold = 10ms});
    CHECK(cap.text().find("slow step") == std::string::npos);
}

TEST_CASE("debug: CORIO_DEBUG=1 in the environment turns it on") {
    ::setenv("CORIO_DEBUG", "1", 1);
    capture_stderr cap;
    corio::event_loop loop(corio::run_options{.slow_step_threshold = 10ms});
    ::unsetenv("CORIO_DEBUG");
    CHECK(loop.debug());
    loop.run_until_complete(run_both());
    CHECK(cap.text().find("task 'hog'") != std::string::npos);
}

CORIO_TEST_CASE("dump_tasks: names, states and what each task awaits, as a tree") {
    auto sleeper = corio::spawn([]() -> task<void> { co_await corio::sleep(corio_test::forever); }(), "sleeper");
    auto gatherer = corio::spawn(
        []() -> task<void> {
            co_await corio::gather(corio::sleep(corio_test::forever), corio::sleep(corio_test::forever));
        }(),
        "gatherer");
    auto later = corio::spawn([]() -> task<void> { co_return; }(), "not-started");
    later.cancel();
    co_await corio_test::settle(1);
    auto d = corio::dump_tasks();
    const auto* main = find(d, "main");
    const auto* s = find(d, "sleeper");
    const auto* g = find(d, "gatherer");
    REQUIRE(main);
    REQUIRE(s);
    REQUIRE(g);
    CHECK(main->state == "running");
    CHECK(s->state == "waiting");
    CHECK(s->depth == 0);
    CHECK(s->awaiting.find("sleep_awaiter") != std::string::npos);
    CHECK(g->state == "joining");
    std::size_t children = 0;
    for (std::size_t i = static_cast<std::size_t>(g - d.data()) + 1; i < d.size() && d[i].depth > 0; ++i) {
        CHECK(d[i].kind == "child");
        CHECK(d[i].awaiting.find("sleep_awaiter") != std::string::npos);
        ++children;
    }
    CHECK(children == 2);
    std::string text = corio::format_tasks(d);
    CHECK(text.find("task 'sleeper' [waiting] in ") != std::string::npos);
    CHECK(text.find("    - child '' [waiting]") != std::string::npos);
    gatherer.cancel();
    auto d2 = corio::dump_tasks();
    const auto* g2 = find(d2, "gatherer");
    REQUIRE(g2);
    CHECK(g2->cancel_requested);
    CHECK_FALSE(find(d2, "sleeper")->cancel_requested);
    sleeper.cancel();
    co_await corio_test::ended_cancelled(sleeper);
    co_await corio_test::ended_cancelled(gatherer);
    CHECK(find(corio::dump_tasks(), "sleeper") == nullptr);
}

CORIO_TEST_CASE("dump_tasks: a task group's children sit below the task that runs the group") {
    auto body = [](corio::task_group& tg) -> task<void> {
        tg.spawn([]() -> task<void> { co_await corio::sleep(corio_test::U); }(), "tg-child");
        co_await corio_test::settle(1);
        auto d = corio::dump_tasks();
        const auto* c = find(d, "tg-child");
        REQUIRE(c);
        CHECK(c->depth == 1);
        CHECK(c->kind == "task");
    };
    co_await corio::with_task_group(body);
}

TEST_CASE("the deadlock report lists the live tasks") {
    std::string msg;
    try {
        corio::run(
            []() -> task<void> {
                corio::event never;
                co_await never.wait();
            }(),
            corio::run_options{.virtual_time = true});
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("deadlock") != std::string::npos);
    CHECK(msg.find("task 'main' [waiting]") != std::string::npos);
    CHECK(msg.find("event::wait_awaiter") != std::string::npos);
}

TEST_CASE("dump_tasks_on_signal: SIGQUIT prints the dump") {
    capture_stderr cap;
    corio::testing::run_virtual(
        []() -> task<void> {
            auto dumper = corio::spawn(corio::dump_tasks_on_signal(SIGQUIT), "dumper");
            co_await corio::sleep(5ms);  // the dumper waits for the signal now
            ::kill(::getpid(), SIGQUIT);
            co_await corio::sleep(20ms);
            dumper.cancel();
            co_await corio_test::ended_cancelled(dumper);
        },
        corio::testing::real_time);
    std::string err = cap.text();
    CHECK(err.find("task 'dumper' [running]") != std::string::npos);
    CHECK(err.find("task 'main' [waiting]") != std::string::npos);
}

// ------------------------------------------------ reports a user reads ---

task<void> fails_unobserved() {
    co_await corio::sleep(1ms);
    throw std::runtime_error("disk on fire");
}

TEST_CASE("an unnamed task's unobserved error is reported under the coroutine it runs") {
    capture_stderr cap;
    corio::run(
        []() -> task<void> {
            { auto h = corio::spawn(fails_unobserved()); }  // detached: nobody takes its error
            co_await corio::sleep(2ms);
        },
        corio::run_options{.virtual_time = true});
    const std::string err = cap.text();
    CHECK(err.find("corio: unhandled exception in unnamed task running fails_unobserved: disk on fire\n") !=
          std::string::npos);
    CHECK(err.find("task ''") == std::string::npos);
}

TEST_CASE("a named task's unobserved error is reported under its name") {
    capture_stderr cap;
    corio::run(
        []() -> task<void> {
            { auto h = corio::spawn(fails_unobserved(), "indexer"); }
            co_await corio::sleep(2ms);
        },
        corio::run_options{.virtual_time = true});
    CHECK(cap.text().find("corio: unhandled exception in task 'indexer': disk on fire\n") != std::string::npos);
}

TEST_CASE("an unobserved error that is no std::exception is reported with its type") {
    capture_stderr cap;
    corio::run(
        []() -> task<void> {
            {
                auto h = corio::spawn(
                    []() -> task<void> {
                        co_await corio::sleep(1ms);
                        throw 42;
                    }(),
                    "thrower");
            }
            co_await corio::sleep(2ms);
        },
        corio::run_options{.virtual_time = true});
    CHECK(cap.text().find("corio: unhandled exception in task 'thrower': an exception of type int (not derived from "
                          "std::exception)\n") != std::string::npos);
}

TEST_CASE("the deadlock report names what each suspended task awaits, without debug hooks' help") {
    corio::event never;  // outlives the loop: both tasks' frames still wait on it when it is torn down
    std::string msg;
    try {
        corio::run(
            [&]() -> task<void> {
                auto stuck = corio::spawn([&]() -> task<void> { co_await never.wait(); }, "stuck");
                co_await stuck;
            },
            corio::run_options{.virtual_time = true});
    } catch (const corio::invalid_state_error& e) {
        msg = e.what();
    }
    CHECK(msg.find("(deadlock: nothing can ever wake it)\ncorio: 2 live task(s) and child chain(s):\n") !=
          std::string::npos);
    CHECK(msg.find("  - task 'main' [waiting] in ") != std::string::npos);
    CHECK(msg.find(", awaiting join_handle<void>::awaiter::on_cancel\n") != std::string::npos);
    CHECK(msg.find("  - task 'stuck' [waiting] in ") != std::string::npos);
    CHECK(msg.find(", awaiting event::wait_awaiter") != std::string::npos);
}
