// tests/test_compose.cpp: every awaitable corio offers, passed as a temporary
// to every combinator, compiled and run.
//
// The matrix is two lists, each in ONE place below:
// - `awaitables`: one "row" struct per awaitable (a task, a join_handle&,
//   sleep, each primitive's waiting operation, use_task operations, ...).
// - `combinators`: one "column" struct per combinator (timeout, timeout_at,
//   move_on_after, move_on_at, shield, with_token, cancel_scope::run, gather,
//   gather_settled, race, and the range forms incl. gather_limited).
// Every row runs under every column (a SECTION per column, a
// TEMPLATE_LIST_TEST_CASE per row), each cell on a fresh fixture under
// virtual time (run_virtual also checks no task, timer or error is left over).
//
// How to add a row (a new awaitable):
//   1. Write `struct row_foo : row_defaults<row_foo>` with
//        static constexpr const char* name;
//        struct fixture { ... };             // the state one cell needs, built in the task
//        static auto pending(fixture&);      // an operation that would complete at 2U (or
//                                            // never) and not before; a temporary
//        static auto ready(fixture&);        // an operation that completes now, without
//                                            // virtual time passing; called once per cell
//        static void check_value(fixture&, V&);    // V: its result, std::monostate for void
//        static task<void> check_untouched(fixture&);  // after a pending one was cut
//                                            // short at U: nothing was consumed
//      and override what row_defaults assumes when it does not hold:
//        setup/teardown (async preparation and cleanup of the fixture),
//        release(f) (makes ONE pending operation complete; no-op for
//        operations that complete at 2U by themselves), has_pending (false
//        for operations that never wait, like yield_now), has_release
//        (false when nothing can make a pending one finish, e.g. an Asio
//        timer far away: the shield cell is then skipped), in_child (false
//        when the operation must run in the caller's own task, as
//        condition_variable::wait: gather/race then must throw
//        invalid_state_error), value_leaves_child (false when the value
//        is bound to the task that produced it, as a mutex::guard: the
//        child columns then skip the ready cell), outside_work (true when a
//        ready operation still completes from outside the loop, on another
//        thread or by real I/O: virtual time jumps to the next deadline
//        whenever the loop has nothing ready, so a combinator's far deadline
//        would fire first; such a row's ready cells run in real time, its
//        pending cells stay in virtual time), pending_range/ready_range (the
//        default builds a std::vector of pending()/ready()).
//   2. Add it to `awaitables`. That is all: it now runs in every column.
// How to add a column (a new combinator): write a `col_*` struct with
// `name`, `pending<Row>(f, t0)` and `ready<Row>(f, t0)` and add it to
// `combinators`.
//
// Not a ThreadSanitizer file: the to_thread row crosses threads, but what it
// exercises there is covered by test_thread under TSan, and the matrix is the
// suite's heaviest build.
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <corio/corio.hpp>

#include "support/corio_test.hpp"
#ifdef CORIO_TEST_HAVE_HTTP
#include <corio/http.hpp>

#include "support/http_server.hpp"
#endif

namespace {

using namespace std::chrono_literals;
using corio::task;
using corio_test::forever;
using corio_test::since;
using corio_test::U;
using tcp = asio::ip::tcp;

struct test_error : std::runtime_error {
    test_error() : std::runtime_error("test_error") {}
};

template <class A>
using result_of_t = corio::detail::await_result_t<A>;
template <class T>
using vm_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Awaits `a` and returns its value (std::monostate for void).
template <class A>
task<vm_t<result_of_t<A>>> value_of(A a) {
    if constexpr (std::is_void_v<result_of_t<A>>) {
        co_await std::move(a);
        co_return std::monostate{};
    } else {
        co_return co_await std::move(a);
    }
}

/// The value inside an absorbing scope's result (optional<T>, or bool for void).
template <class R>
auto inside(R& r) {
    if constexpr (std::is_same_v<R, bool>) {
        REQUIRE(r);
        return std::monostate{};
    } else {
        REQUIRE(r.has_value());
        return std::move(*r);
    }
}

template <class T>
T settled_value(corio::result<T>& r) {
    REQUIRE(r.has_value());
    return std::move(r).value();
}
inline std::monostate settled_value(corio::result<void>& r) {
    REQUIRE(r.has_value());
    return {};
}

task<void> fail_after(corio::clock::duration d) {
    co_await corio::sleep(d);
    throw test_error{};
}

task<void> cancel_after(corio::cancellation_source& src, corio::clock::duration d) {
    co_await corio::sleep(d);
    src.cancel();
}

template <class Row>
task<void> release_after(typename Row::fixture& f, corio::clock::duration d) {
    co_await corio::sleep(d);
    Row::release(f);
}

// ================================================================== rows ===

template <class Self>
struct row_defaults {
    static constexpr bool has_pending = true;
    static constexpr bool has_release = true;
    static constexpr bool in_child = true;
    static constexpr bool value_leaves_child = true;
    static constexpr bool outside_work = false;
    template <class F>
    static task<void> setup(F&) {
        co_return;
    }
    template <class F>
    static task<void> teardown(F&) {
        co_return;
    }
    template <class F>
    static void release(F&) {}
    template <class F>
    static auto pending_range(F& f) {
        std::vector<decltype(Self::pending(f))> v;
        v.push_back(Self::pending(f));
        v.push_back(Self::pending(f));
        return v;
    }
    template <class F>
    static auto ready_range(F& f) {
        std::vector<decltype(Self::ready(f))> v;
        v.push_back(Self::ready(f));
        return v;
    }
};

// ---- tasks and handles

struct task_fixture {
    bool started = false, finished = false, cleaned = false;
};

task<int> slow_value(task_fixture& f) {
    corio_test::set_on_exit on_exit{f.cleaned};
    f.started = true;
    co_await corio::sleep(2 * U);
    f.finished = true;
    co_return 42;
}

task<int> quick_value() { co_return 42; }

struct row_task : row_defaults<row_task> {
    static constexpr const char* name = "task<int>";
    using fixture = task_fixture;
    static task<int> pending(fixture& f) { return slow_value(f); }
    static task<int> ready(fixture&) { return quick_value(); }
    static void check_value(fixture&, int v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) {
        // Owned: the task was cancelled and its frame cleaned up.
        CHECK(f.started);
        CHECK_FALSE(f.finished);
        CHECK(f.cleaned);
        co_return;
    }
};

/// A callable returning a task: corio calls it inside a task that keeps the
/// lambda (and its captures, read after suspending) alive.
struct row_callable : row_defaults<row_callable> {
    static constexpr const char* name = "callable returning task<int>";
    using fixture = task_fixture;
    static auto pending(fixture& f) {
        return [&f, answer = 42]() -> task<int> {
            corio_test::set_on_exit on_exit{f.cleaned};
            f.started = true;
            co_await corio::sleep(2 * U);
            f.finished = true;
            co_return answer;
        };
    }
    static auto ready(fixture&) {
        return [answer = 42]() -> task<int> { co_return answer; };
    }
    static void check_value(fixture&, int v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) { return row_task::check_untouched(f); }
};

struct row_join_handle : row_defaults<row_join_handle> {
    static constexpr const char* name = "join_handle<int>&";
    struct fixture {
        task_fixture tf;
        std::vector<corio::join_handle<int>> slow, quick;
        corio::clock::time_point t0 = corio::now();
    };
    template <class F>
    static task<void> setup(F& f) {
        f.slow.push_back(corio::spawn(slow_value(f.tf)));
        f.slow.push_back(corio::spawn(slow_value(f.tf)));
        f.quick.push_back(corio::spawn(quick_value()));
        co_await corio::yield_now();  // every task has started; quick has finished
    }
    template <class F>
    static task<void> teardown(F& f) {
        // Observed, not owned: the tasks run on to their end (wait() takes no result).
        co_await corio::wait(f.slow);
        CHECK(f.tf.finished);
        CHECK(since(f.t0) == 2 * U);
    }
    static corio::join_handle<int>& pending(fixture& f) { return f.slow[0]; }
    static corio::join_handle<int>& ready(fixture& f) { return f.quick[0]; }
    static std::vector<corio::join_handle<int>>& pending_range(fixture& f) { return f.slow; }
    static std::vector<corio::join_handle<int>>& ready_range(fixture& f) { return f.quick; }
    static void check_value(fixture&, int v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) {
        // Observed: cutting the await short leaves the task running.
        CHECK_FALSE(f.slow[0].done());
        CHECK_FALSE(f.tf.finished);
        co_return;
    }
};

// ---- time

struct no_state {};

struct row_sleep : row_defaults<row_sleep> {
    static constexpr const char* name = "sleep";
    using fixture = no_state;
    static auto pending(fixture&) { return corio::sleep(2 * U); }
    static auto ready(fixture&) { return corio::sleep(0ms); }
    static void check_value(fixture&, std::monostate) {}
    static task<void> check_untouched(fixture&) {
        CHECK(corio::current_loop().pending_timers() == 0);  // the cut sleep left no timer
        co_return;
    }
};

struct row_sleep_until : row_defaults<row_sleep_until> {
    static constexpr const char* name = "sleep_until";
    struct fixture {
        corio::clock::time_point t0 = corio::now();
    };
    static auto pending(fixture& f) { return corio::sleep_until(f.t0 + 2 * U); }
    static auto ready(fixture& f) { return corio::sleep_until(f.t0 - U); }
    static void check_value(fixture&, std::monostate) {}
    static task<void> check_untouched(fixture&) {
        CHECK(corio::current_loop().pending_timers() == 0);
        co_return;
    }
};

struct row_yield_now : row_defaults<row_yield_now> {
    static constexpr const char* name = "yield_now";
    static constexpr bool has_pending = false;  // never waits for anything
    using fixture = no_state;
    static auto pending(fixture&) { return corio::yield_now(); }
    static auto ready(fixture&) { return corio::yield_now(); }
    static void check_value(fixture&, std::monostate) {}
    static task<void> check_untouched(fixture&) { co_return; }
};

// ---- semaphores

template <class Sem>
struct row_semaphore : row_defaults<row_semaphore<Sem>> {
    static constexpr const char* name =
        std::is_same_v<Sem, corio::semaphore> ? "semaphore::acquire" : "bounded_semaphore::acquire";
    struct fixture {
        Sem sem{1};
        std::optional<corio::semaphore::permit> held = sem.try_acquire();  // exhausted
    };
    static auto pending(fixture& f) { return f.sem.acquire(); }
    static void release(fixture& f) { f.held.reset(); }
    static auto ready(fixture& f) {
        f.held.reset();
        return f.sem.acquire();
    }
    static void check_value(fixture& f, corio::semaphore::permit& p) {
        CHECK(p.owns_permit());
        CHECK(f.sem.available() == 0);
    }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.sem.waiters() == 0);
        CHECK(f.sem.available() == 0);
        f.held.reset();  // the permit comes back to the count: no cut waiter took it
        CHECK(f.sem.available() == 1);
        co_return;
    }
};

// ---- sync.hpp

task<void> hold_until(corio::mutex& m, corio::event& ev) {
    auto g = co_await m.lock();
    co_await ev.wait();
}

struct row_mutex : row_defaults<row_mutex> {
    static constexpr const char* name = "mutex::lock";
    // A guard belongs to the task (chain) that locked: one taken in a
    // gather/race child cannot be released by the parent (it asserts).
    static constexpr bool value_leaves_child = false;
    struct fixture {
        corio::mutex m, free;
        corio::event unlock;
        std::optional<corio::join_handle<void>> holder;
        bool joined = false;
    };
    template <class F>
    static task<void> setup(F& f) {
        f.holder = corio::spawn(hold_until(f.m, f.unlock));
        co_await corio::yield_now();
        REQUIRE(f.m.locked());
    }
    template <class F>
    static task<void> teardown(F& f) {
        f.unlock.set();
        if (!f.joined) co_await *f.holder;
    }
    static auto pending(fixture& f) { return f.m.lock(); }
    static void release(fixture& f) { f.unlock.set(); }
    static auto ready(fixture& f) { return f.free.lock(); }
    static void check_value(fixture& f, corio::mutex::guard& g) {
        CHECK(g.owns_lock());
        CHECK(f.free.locked());
    }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.m.waiters() == 0);
        f.unlock.set();
        co_await *f.holder;
        f.joined = true;
        CHECK_FALSE(f.m.locked());  // nobody was handed the mutex
    }
};

struct row_event : row_defaults<row_event> {
    static constexpr const char* name = "event::wait";
    struct fixture {
        corio::event ev;
    };
    static auto pending(fixture& f) { return f.ev.wait(); }
    static void release(fixture& f) { f.ev.set(); }
    static auto ready(fixture& f) {
        f.ev.set();
        return f.ev.wait();
    }
    static void check_value(fixture& f, std::monostate) { CHECK(f.ev.is_set()); }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.ev.waiters() == 0);
        CHECK_FALSE(f.ev.is_set());
        co_return;
    }
};

struct row_condition_variable : row_defaults<row_condition_variable> {
    static constexpr const char* name = "condition_variable::wait";
    static constexpr bool in_child = false;  // the mutex is owned by the calling task itself
    struct fixture {
        corio::mutex m;
        corio::condition_variable cv;
        corio::mutex::guard g;
    };
    template <class F>
    static task<void> setup(F& f) {
        f.g = co_await f.m.lock();
    }
    static auto pending(fixture& f) { return f.cv.wait(f.g); }
    static void release(fixture& f) { f.cv.notify_one(); }
    static auto ready(fixture& f) {
        return f.cv.wait(f.g, [] { return true; });
    }
    static void check_value(fixture& f, std::monostate) { CHECK(f.g.owns_lock()); }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.cv.waiters() == 0);
        CHECK(f.g.owns_lock());  // re-acquired before the cancellation was delivered
        CHECK(f.m.locked());
        co_return;
    }
};

task<void> arrive(corio::barrier& b) { (void)co_await b.arrive_and_wait(); }

struct row_barrier : row_defaults<row_barrier> {
    static constexpr const char* name = "barrier::arrive_and_wait";
    // Three parties: the two pending arrivals of a range do not trip it.
    struct fixture {
        corio::barrier b{3}, solo{1};
        std::vector<corio::join_handle<void>> others;
    };
    template <class F>
    static task<void> teardown(F& f) {
        for (auto& h : f.others) co_await h;
    }
    static auto pending(fixture& f) { return f.b.arrive_and_wait(); }
    static void release(fixture& f) {
        f.others.push_back(corio::spawn(arrive(f.b)));
        f.others.push_back(corio::spawn(arrive(f.b)));
    }
    static auto ready(fixture& f) { return f.solo.arrive_and_wait(); }
    static void check_value(fixture&, std::ptrdiff_t i) { CHECK(i == 0); }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.b.n_waiting() == 0);  // the arrival was withdrawn
        // The round still needs three: two more arrivals wait, the third trips it.
        release(f);
        co_await corio::yield_now();
        CHECK(f.b.n_waiting() == 2);
        std::ptrdiff_t last = co_await f.b.arrive_and_wait();
        CHECK(last == 2);
    }
};

// ---- queues

template <class Q>
constexpr const char* queue_name(const char* fifo, const char* prio, const char* lifo) {
    if (std::is_same_v<Q, corio::queue<int>>) return fifo;
    if (std::is_same_v<Q, corio::priority_queue<int>>) return prio;
    return lifo;
}

template <class Q>
struct row_get : row_defaults<row_get<Q>> {
    static constexpr const char* name = queue_name<Q>("queue::get", "priority_queue::get", "lifo_queue::get");
    struct fixture {
        Q q;
    };
    static auto pending(fixture& f) { return f.q.get(); }
    static void release(fixture& f) { REQUIRE(f.q.try_put(7)); }
    static auto ready(fixture& f) {
        REQUIRE(f.q.try_put(5));
        return f.q.get();
    }
    static void check_value(fixture& f, int v) {
        CHECK(v == 5);
        CHECK(f.q.empty());
    }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.q.getters() == 0);
        REQUIRE(f.q.try_put(7));  // an item put later goes to the next get
        int v = co_await f.q.get();
        CHECK(v == 7);
    }
};

template <class Q>
struct row_put : row_defaults<row_put<Q>> {
    static constexpr const char* name = queue_name<Q>("queue::put", "priority_queue::put", "lifo_queue::put");
    struct fixture {
        Q q{1};
        bool filled = q.try_put(1);  // full
    };
    static auto pending(fixture& f) { return f.q.put(2); }
    static void release(fixture& f) { REQUIRE(f.q.try_get() == 1); }
    static auto ready(fixture& f) {
        REQUIRE(f.q.try_get() == 1);
        return f.q.put(2);
    }
    static void check_value(fixture& f, std::monostate) {
        CHECK(f.q.size() == 1);
        CHECK(f.q.try_get() == 2);
    }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.q.putters() == 0);
        CHECK(f.q.size() == 1);  // the cut put inserted nothing
        CHECK(f.q.try_get() == 1);
        CHECK(f.q.empty());
        co_return;
    }
};

template <class Q>
struct row_join : row_defaults<row_join<Q>> {
    static constexpr const char* name = queue_name<Q>("queue::join", "priority_queue::join", "lifo_queue::join");
    struct fixture {
        Q q;
        bool filled = q.try_put(1);  // one unfinished item
    };
    static auto pending(fixture& f) { return f.q.join(); }
    static void release(fixture& f) {
        REQUIRE(f.q.try_get() == 1);
        f.q.task_done();
    }
    static auto ready(fixture& f) {
        release(f);
        return f.q.join();
    }
    static void check_value(fixture& f, std::monostate) { CHECK(f.q.unfinished() == 0); }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.q.unfinished() == 1);
        release(f);
        co_await f.q.join();  // the next join returns at once
    }
};

// ---- limiter

struct row_limiter : row_defaults<row_limiter> {
    static constexpr const char* name = "limiter::acquire";
    struct fixture {
        corio::limiter lim{50.0, 1};  // a token every 2U
        corio::limiter full{50.0, 1};
        corio::clock::time_point t0 = corio::now();
        bool drained = lim.try_acquire();
    };
    static auto pending(fixture& f) { return f.lim.acquire(); }
    static auto ready(fixture& f) { return f.full.acquire(); }
    static void check_value(fixture& f, std::monostate) { CHECK(f.full.available() == 0); }
    static task<void> check_untouched(fixture& f) {
        CHECK(f.lim.waiters() == 0);
        co_await f.lim.acquire();  // the token of 2U is still there for the next one
        CHECK(since(f.t0) == 2 * U);
    }
};

// ---- Asio operations with use_task

struct row_asio_timer : row_defaults<row_asio_timer> {
    static constexpr const char* name = "asio::steady_timer::async_wait(use_task)";
    static constexpr bool has_release = false;
    struct fixture {
        asio::steady_timer far{corio::current_loop().get_executor(), std::chrono::hours(1)};
        asio::steady_timer past{corio::current_loop().get_executor(), std::chrono::steady_clock::time_point{}};
    };
    static auto pending(fixture& f) { return f.far.async_wait(corio::use_task); }
    static auto ready(fixture& f) { return f.past.async_wait(corio::use_task); }
    static void check_value(fixture&, std::monostate) {}
    static task<void> check_untouched(fixture& f) {
        // The wait was cancelled through its slot: the timer is idle and usable.
        CHECK(f.far.cancel() == 0);
        f.far.expires_at(std::chrono::steady_clock::time_point{});
        co_await f.far.async_wait(corio::use_task);
    }
};

struct row_socket_read : row_defaults<row_socket_read> {
    static constexpr const char* name = "tcp::socket::async_read_some(use_task)";
    struct fixture {
        tcp::socket server{corio::current_loop().get_executor()};
        tcp::socket client{corio::current_loop().get_executor()};
        char buf[8] = {};
    };
    template <class F>
    static task<void> setup(F& f) {
        tcp::acceptor acceptor(corio::current_loop().get_executor(),
                               tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        auto accepting = acceptor.async_accept(corio::use_task);
        f.client.connect(acceptor.local_endpoint());
        f.server = co_await std::move(accepting);
    }
    static auto pending(fixture& f) { return f.server.async_read_some(asio::buffer(f.buf), corio::use_task); }
    static void release(fixture& f) { REQUIRE(asio::write(f.client, asio::buffer("x", 1)) == 1); }
    static auto ready(fixture& f) {
        release(f);
        return asio::async_read(f.server, asio::buffer(f.buf, 1), corio::use_task);
    }
    static void check_value(fixture& f, std::size_t n) {
        CHECK(n == 1);
        CHECK(f.buf[0] == 'x');
    }
    static task<void> check_untouched(fixture& f) {
        // The cut read took no byte: the next read gets the next byte written.
        REQUIRE(asio::write(f.client, asio::buffer("y", 1)) == 1);
        std::size_t n = co_await asio::async_read(f.server, asio::buffer(f.buf, 1), corio::use_task);
        CHECK(n == 1);
        CHECK(f.buf[0] == 'y');
    }
};

// ---- generators (generator.hpp)

/// Counts how many generator bodies were entered and how many frames were destroyed.
struct gen_state {
    int started = 0, cleaned = 0;
    std::vector<int> seen;  // what for_each's fn was called with
};

struct count_on_exit {
    int& n;
    ~count_on_exit() { ++n; }
};

corio::async_generator<int> slow_gen(gen_state& s) {
    count_on_exit on_exit{s.cleaned};
    ++s.started;
    co_await corio::sleep(2 * U);
    co_yield 42;
}

corio::async_generator<int> quick_gen() { co_yield 42; }

struct row_generator_next : row_defaults<row_generator_next> {
    static constexpr const char* name = "async_generator<int>::next";
    // One next() at a time per generator: each pending operation has its own.
    struct fixture {
        gen_state st;
        corio::async_generator<int> slow[2] = {slow_gen(st), slow_gen(st)};
        corio::async_generator<int> quick = quick_gen();
        int used = 0;
    };
    static auto pending(fixture& f) { return f.slow[f.used++ % 2].next(); }
    static auto ready(fixture& f) { return f.quick.next(); }
    static void check_value(fixture&, std::optional<int>& v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) {
        // The cut next() cancelled the body's pending sleep: the cancellation
        // left the body, so the generator ended and its frame was cleaned up.
        // (gather_limited(1) never started the second of a range.)
        REQUIRE(f.st.started >= 1);
        CHECK(f.st.cleaned == f.st.started);
        int ended = 0;
        for (int i = 0; i < f.used; ++i) {
            if (!f.slow[i].done()) continue;
            ++ended;
            std::optional<int> v = co_await f.slow[i].next();
            CHECK_FALSE(v.has_value());  // finished: empty, again and again
        }
        CHECK(ended == f.st.started);
    }
};

struct row_for_each : row_defaults<row_for_each> {
    static constexpr const char* name = "for_each(async_generator<int>, fn)";
    using fixture = gen_state;
    static auto pending(fixture& f) {
        return corio::for_each(slow_gen(f), [&f](int x) { f.seen.push_back(x); });
    }
    static auto ready(fixture& f) {
        return corio::for_each(quick_gen(), [&f](int x) { f.seen.push_back(x); });
    }
    static void check_value(fixture& f, std::monostate) { CHECK(f.seen == std::vector<int>{42}); }
    static task<void> check_untouched(fixture& f) {
        // fn never saw an item; the owned generator's frame was destroyed.
        CHECK(f.seen.empty());
        REQUIRE(f.started >= 1);
        CHECK(f.cleaned == f.started);
        co_return;
    }
};

// ---- micro_batcher (batcher.hpp)

task<std::vector<int>> plus_one(std::vector<int>* seen, std::vector<int> xs) {
    for (int& x : xs) {
        seen->push_back(x);
        ++x;
    }
    co_return xs;
}

struct row_batcher_submit : row_defaults<row_batcher_submit> {
    static constexpr const char* name = "micro_batcher::submit";
    struct fixture {
        std::vector<int> seen;  // every item a handler call was given
        // A batch is sent 2U after its first item (it never fills up).
        corio::micro_batcher<int, int> slow{[s = &seen](std::vector<int> xs) { return plus_one(s, std::move(xs)); },
                                            100, 2 * U};
        // A batch of one is sent at once.
        corio::micro_batcher<int, int> quick{[s = &seen](std::vector<int> xs) { return plus_one(s, std::move(xs)); }, 1,
                                             0ms};
    };
    template <class F>
    static task<void> teardown(F& f) {
        co_await f.slow.close();
        co_await f.quick.close();
    }
    static auto pending(fixture& f) { return f.slow.submit(1); }
    static auto ready(fixture& f) { return f.quick.submit(41); }
    static void check_value(fixture& f, int v) {
        CHECK(v == 42);
        CHECK(f.seen == std::vector<int>{41});
    }
    static task<void> check_untouched(fixture& f) {
        // The cut submission was removed from its batch: the batch, left
        // empty, is never sent, and the handler never sees the item.
        CHECK(f.slow.pending() == 0);
        co_await f.slow.close();
        CHECK(f.seen.empty());
    }
};

// ---- with() (resource.hpp)

struct resource_state {
    int acquired = 0, released = 0, body_done = 0;
};

corio::async_context<int> counted_resource(resource_state& s) {
    ++s.acquired;
    int r = 40;
    corio::context_exit how = co_yield r;
    (void)how;
    ++s.released;
}

task<int> slow_body(resource_state& s, int& r) {
    co_await corio::sleep(2 * U);
    ++s.body_done;
    co_return r + 2;
}

task<int> quick_body(resource_state& s, int& r) {
    ++s.body_done;
    co_return r + 2;
}

struct row_with : row_defaults<row_with> {
    static constexpr const char* name = "with(async_context<int>, body)";
    using fixture = resource_state;
    static auto pending(fixture& f) {
        return corio::with(counted_resource(f), [&f](int& r) { return slow_body(f, r); });
    }
    static auto ready(fixture& f) {
        return corio::with(counted_resource(f), [&f](int& r) { return quick_body(f, r); });
    }
    static void check_value(fixture& f, int v) {
        CHECK(v == 42);
        CHECK(f.acquired == 1);
        CHECK(f.released == 1);
    }
    static task<void> check_untouched(fixture& f) {
        // The body was cancelled; each context's release ran exactly once.
        REQUIRE(f.acquired >= 1);
        CHECK(f.released == f.acquired);
        CHECK(f.body_done == 0);
        co_return;
    }
};

// ---- pool (pool.hpp)

task<int> make_seven() { co_return 7; }

bool same_stats(const corio::pool_stats& a, const corio::pool_stats& b) {
    return a.size == b.size && a.idle == b.idle && a.in_use == b.in_use && a.waiters == b.waiters &&
           a.created == b.created && a.closed == b.closed;
}

struct row_pool_acquire : row_defaults<row_pool_acquire> {
    static constexpr const char* name = "pool<int>::acquire";
    struct fixture {
        corio::pool<int> p{make_seven, corio::pool_options<int>{.max_size = 1}};
        corio::pool<int> free{make_seven, corio::pool_options<int>{.max_size = 1}};
        std::optional<corio::pool<int>::lease> held;  // the only resource of p
        corio::pool_stats before{};
    };
    template <class F>
    static task<void> setup(F& f) {
        f.held.emplace(co_await f.p.acquire());
        f.before = f.p.stats();
        REQUIRE(f.before.in_use == 1);
    }
    template <class F>
    static task<void> teardown(F& f) {
        f.held.reset();
        co_await f.p.close();
        co_await f.free.close();
    }
    static auto pending(fixture& f) { return f.p.acquire(); }
    static void release(fixture& f) { f.held.reset(); }
    static auto ready(fixture& f) { return f.free.acquire(); }
    static void check_value(fixture& f, corio::pool<int>::lease& l) {
        CHECK(*l == 7);
        CHECK(f.free.stats().in_use == 1);
    }
    static task<void> check_untouched(fixture& f) {
        CHECK(same_stats(f.p.stats(), f.before));  // the cut acquire left no trace
        f.held.reset();
        auto next = co_await f.p.acquire();  // the next one gets the resource
        CHECK(*next == 7);
        CHECK(f.p.stats().created == 1);
    }
};

// ---- to_thread (thread.hpp)

struct thread_state {
    std::atomic<bool> go{false};  // release: f returns
    std::atomic<int> started{0}, finished{0}, stopped{0};
};

struct row_to_thread : row_defaults<row_to_thread> {
    static constexpr const char* name = "to_thread(f)";
    // f runs on another thread: see outside_work.
    static constexpr bool outside_work = true;
    using fixture = thread_state;
    static auto pending(fixture& f) {
        // Returns when released, or when a cut asks it to stop.
        return corio::to_thread([&f](std::stop_token st) {
            ++f.started;
            while (!f.go && !st.stop_requested()) std::this_thread::sleep_for(std::chrono::microseconds(200));
            if (st.stop_requested()) ++f.stopped;
            ++f.finished;
            return 42;
        });
    }
    static void release(fixture& f) { f.go = true; }
    static auto ready(fixture&) {
        return corio::to_thread([] { return 42; });
    }
    static void check_value(fixture&, int v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) {
        // Cut short, to_thread still waited for f: every f had returned
        // (after its stop was requested) before the combinator did.
        REQUIRE(f.started >= 1);
        CHECK(f.finished == f.started.load());
        CHECK(f.stopped == f.started.load());
        co_return;
    }
};

// ---- asio::awaitable (asio.hpp)

asio::awaitable<int> asio_answer(int v) { co_return v; }

/// Waits `d` on an Asio timer of the loop's io_context; records how the wait ended.
asio::awaitable<int> asio_timer_wait(std::chrono::hours d, std::error_code* seen) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    try {
        co_await t.async_wait(asio::use_awaitable);
    } catch (const std::system_error& e) {
        *seen = e.code();
        throw;
    }
    *seen = std::error_code();
    co_return 1;
}

struct row_asio_awaitable : row_defaults<row_asio_awaitable> {
    static constexpr const char* name = "asio::awaitable<int>";
    static constexpr bool has_release = false;  // an Asio timer an hour away
    struct fixture {
        std::error_code seen = asio::error::would_block;  // not ended yet
    };
    static auto pending(fixture& f) { return asio_timer_wait(std::chrono::hours(1), &f.seen); }
    static auto ready(fixture&) { return asio_answer(42); }
    static void check_value(fixture&, int v) { CHECK(v == 42); }
    static task<void> check_untouched(fixture& f) {
        // The cut await cancelled the awaitable's timer wait, and waited for it to end.
        CHECK(f.seen == asio::error::operation_aborted);
        co_return;
    }
};

#ifdef CORIO_TEST_HAVE_HTTP
// ---- http::client (http.hpp)

struct row_http_get : row_defaults<row_http_get> {
    static constexpr const char* name = "http::client::get";
    static constexpr bool has_release = false;  // /stall never completes
    static constexpr bool outside_work = true;  // real loopback I/O through libcurl
    struct fixture {
        corio_test::http_server srv{corio::current_loop().context()};
        std::optional<corio::join_handle<void>> serving;
        corio::http::client c;
    };
    template <class F>
    static task<void> setup(F& f) {
        f.serving = corio::spawn(f.srv.serve(), "http_server");
        co_return;
    }
    template <class F>
    static task<void> teardown(F& f) {
        f.serving->cancel();
        try {
            co_await corio::shield(*f.serving);
        } catch (const corio::cancelled_error&) {
        }
    }
    static auto pending(fixture& f) { return f.c.get(f.srv.url("/stall")); }
    static auto ready(fixture& f) { return f.c.get(f.srv.url("/hello")); }
    static void check_value(fixture&, corio::http::response& r) {
        CHECK(r.status == 200);
        CHECK(r.body == "hello world");
    }
    static task<void> check_untouched(fixture& f) {
        // The cut transfer was removed; the client goes on with the next request.
        CHECK(f.c.active_transfers() == 0);
        corio::http::response r = co_await f.c.get(f.srv.url("/hello"));
        CHECK(r.body == "hello world");
    }
};
#endif

/// THE list of awaitables. Every awaitable corio offers has a row here.
using awaitables =
    std::tuple<row_task, row_callable, row_join_handle, row_sleep, row_sleep_until, row_yield_now,
               row_semaphore<corio::semaphore>, row_semaphore<corio::bounded_semaphore>, row_mutex, row_event,
               row_condition_variable, row_barrier, row_get<corio::queue<int>>, row_get<corio::priority_queue<int>>,
               row_get<corio::lifo_queue<int>>, row_put<corio::queue<int>>, row_put<corio::priority_queue<int>>,
               row_put<corio::lifo_queue<int>>, row_join<corio::queue<int>>, row_join<corio::priority_queue<int>>,
               row_join<corio::lifo_queue<int>>, row_limiter, row_asio_timer, row_socket_read, row_generator_next,
               row_for_each, row_batcher_submit, row_with, row_pool_acquire, row_to_thread, row_asio_awaitable
#ifdef CORIO_TEST_HAVE_HTTP
               ,
               row_http_get
#endif
               >;

// =============================================================== columns ===
//
// pending<Row>(f, t0): the combinator cuts a pending operation short at U
// (or, for shield, keeps it running until it completes at 2U); then
// check_untouched. ready<Row>(f, t0): the value comes back, at once.

using tp = corio::clock::time_point;

template <class Row, class F>
task<void> expect_cut_at_u(F& f, tp t0) {
    CHECK(since(t0) == U);
    co_await Row::check_untouched(f);
}

struct col_timeout {
    static constexpr const char* name = "timeout";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        REQUIRE_THROWS_AS(co_await corio::timeout(U, Row::pending(f)), corio::timeout_error);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        auto v = co_await value_of(corio::timeout(forever, Row::ready(f)));
        Row::check_value(f, v);
    }
};

struct col_timeout_at {
    static constexpr const char* name = "timeout_at";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        REQUIRE_THROWS_AS(co_await corio::timeout_at(t0 + U, Row::pending(f)), corio::timeout_error);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp t0) {
        auto v = co_await value_of(corio::timeout_at(t0 + forever, Row::ready(f)));
        Row::check_value(f, v);
    }
};

struct col_move_on_after {
    static constexpr const char* name = "move_on_after";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        auto r = co_await corio::move_on_after(U, Row::pending(f));
        CHECK_FALSE(r);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        auto r = co_await corio::move_on_after(forever, Row::ready(f));
        auto v = inside(r);
        Row::check_value(f, v);
    }
};

struct col_move_on_at {
    static constexpr const char* name = "move_on_at";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        auto r = co_await corio::move_on_at(t0 + U, Row::pending(f));
        CHECK_FALSE(r);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp t0) {
        auto r = co_await corio::move_on_at(t0 + forever, Row::ready(f));
        auto v = inside(r);
        Row::check_value(f, v);
    }
};

struct col_cancel_scope_run {
    static constexpr const char* name = "cancel_scope::run";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        corio::cancel_scope s(t0 + U);
        auto r = co_await s.run(Row::pending(f));
        CHECK_FALSE(r);
        CHECK(s.cancelled_caught());
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        corio::cancel_scope s;
        auto r = co_await s.run(Row::ready(f));
        auto v = inside(r);
        Row::check_value(f, v);
        CHECK_FALSE(s.cancelled_caught());
    }
};

struct col_shield {
    static constexpr const char* name = "shield";
    /// Under an outer deadline of U the shielded operation runs on until it
    /// completes at 2U; its value is kept.
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (Row::has_release) {
            auto releaser = corio::spawn(release_after<Row>(f, 2 * U));
            auto r = co_await corio::move_on_after(U, corio::shield(Row::pending(f)));
            CHECK(r);
            CHECK(since(t0) == 2 * U);
            co_await releaser;
        }
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        auto v = co_await value_of(corio::shield(Row::ready(f)));
        Row::check_value(f, v);
    }
};

struct col_with_token {
    static constexpr const char* name = "with_token";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        corio::cancellation_source src;
        auto canceller = corio::spawn(cancel_after(src, U));
        REQUIRE_THROWS_AS(co_await corio::with_token(src.token(), Row::pending(f)), corio::cancelled_error);
        co_await canceller;
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        corio::cancellation_source src;
        auto v = co_await value_of(corio::with_token(src.token(), Row::ready(f)));
        Row::check_value(f, v);
    }
};

// Operations that need the caller's own task (in_child false) fail loudly
// with invalid_state_error when a combinator runs them in a child.

struct col_gather {
    static constexpr const char* name = "gather";
    /// A sibling failing at U cancels the pending operation.
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather(Row::pending(f), fail_after(U)), corio::invalid_state_error);
            co_return;
        }
        REQUIRE_THROWS_AS(co_await corio::gather(Row::pending(f), fail_after(U)), test_error);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather(Row::ready(f), corio::yield_now()), corio::invalid_state_error);
            co_return;
        }
        auto t = co_await corio::gather(Row::ready(f), corio::yield_now());
        Row::check_value(f, std::get<0>(t));
    }
};

struct col_gather_settled {
    static constexpr const char* name = "gather_settled";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            auto r = co_await corio::gather_settled(Row::pending(f));
            REQUIRE_THROWS_AS(std::get<0>(r).value(), corio::invalid_state_error);
        } else {
            auto r = co_await corio::move_on_after(U, corio::gather_settled(Row::pending(f), corio::sleep(U / 2)));
            CHECK_FALSE(r);
            co_await expect_cut_at_u<Row>(f, t0);
        }
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (Row::in_child) {
            auto r = co_await corio::gather_settled(Row::ready(f), corio::yield_now());
            auto v = settled_value(std::get<0>(r));
            Row::check_value(f, v);
        }
    }
};

struct col_race {
    static constexpr const char* name = "race";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::race(Row::pending(f), corio::sleep(U)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::race(Row::pending(f), corio::sleep(U));
        CHECK(r.index() == 1);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::race(Row::ready(f), corio::sleep(forever)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::race(Row::ready(f), corio::sleep(forever));
        REQUIRE(r.index() == 0);
        Row::check_value(f, std::get<0>(r));
    }
};

/// The range forms: a std::vector of the operation (an lvalue vector of
/// handles for join_handle), cut short at U by an outer deadline.
struct col_gather_range {
    static constexpr const char* name = "gather(range)";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather(Row::pending_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::move_on_after(U, corio::gather(Row::pending_range(f)));
        CHECK_FALSE(r);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather(Row::ready_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto v = co_await corio::gather(Row::ready_range(f));
        REQUIRE(v.size() == 1);
        Row::check_value(f, v[0]);
    }
};

struct col_gather_limited {
    static constexpr const char* name = "gather_limited(range)";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather_limited(1, Row::pending_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::move_on_after(U, corio::gather_limited(1, Row::pending_range(f)));
        CHECK_FALSE(r);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::gather_limited(1, Row::ready_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto v = co_await corio::gather_limited(1, Row::ready_range(f));
        REQUIRE(v.size() == 1);
        Row::check_value(f, v[0]);
    }
};

struct col_gather_settled_range {
    static constexpr const char* name = "gather_settled(range)";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (Row::in_child) {
            auto r = co_await corio::move_on_after(U, corio::gather_settled(Row::pending_range(f)));
            CHECK_FALSE(r);
            co_await expect_cut_at_u<Row>(f, t0);
        }
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (Row::in_child) {
            auto v = co_await corio::gather_settled(Row::ready_range(f));
            REQUIRE(v.size() == 1);
            auto x = settled_value(v[0]);
            Row::check_value(f, x);
        }
    }
};

struct col_race_range {
    static constexpr const char* name = "race(range)";
    template <class Row, class F>
    static task<void> pending(F& f, tp t0) {
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::race(Row::pending_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::move_on_after(U, corio::race(Row::pending_range(f)));
        CHECK_FALSE(r);
        co_await expect_cut_at_u<Row>(f, t0);
    }
    template <class Row, class F>
    static task<void> ready(F& f, tp) {
        if constexpr (!Row::value_leaves_child) co_return;
        if constexpr (!Row::in_child) {
            REQUIRE_THROWS_AS(co_await corio::race(Row::ready_range(f)), corio::invalid_state_error);
            co_return;
        }
        auto r = co_await corio::race(Row::ready_range(f));
        CHECK(r.first == 0);
        Row::check_value(f, r.second);
    }
};

/// THE list of combinators.
using combinators = std::tuple<col_timeout, col_timeout_at, col_move_on_after, col_move_on_at, col_cancel_scope_run,
                               col_shield, col_with_token, col_gather, col_gather_settled, col_race, col_gather_range,
                               col_gather_limited, col_gather_settled_range, col_race_range>;

// ================================================================= cells ===

template <class Row, class Col>
task<void> pending_cell() {
    typename Row::fixture f;
    co_await Row::setup(f);
    const tp t0 = corio::now();
    co_await Col::template pending<Row>(f, t0);
    co_await Row::teardown(f);
}

template <class Row, class Col>
task<void> ready_cell() {
    typename Row::fixture f;
    co_await Row::setup(f);
    const tp t0 = corio::now();
    co_await Col::template ready<Row>(f, t0);
    if constexpr (Row::outside_work) {
        CHECK(since(t0) < forever / 2);  // real time: well before any far deadline
    } else {
        CHECK(since(t0) == 0ns);  // a ready operation takes no loop time
    }
    co_await Row::teardown(f);
}

template <class Row, class Col>
void run_column() {
    SECTION(std::string(Col::name) + ": cuts a pending operation short, consuming nothing") {
        if constexpr (Row::has_pending) corio::testing::run_virtual([] { return pending_cell<Row, Col>(); });
    }
    SECTION(std::string(Col::name) + ": returns a ready operation's value") {
        corio::testing::run_virtual([] { return ready_cell<Row, Col>(); },
                                    corio::testing::options{.virtual_time = !Row::outside_work});
    }
}

template <class Row, class... Col>
void run_columns(std::tuple<Col...>*) {
    (run_column<Row, Col>(), ...);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("an awaitable passed as a temporary composes with every combinator", "[compose]", awaitables) {
    INFO("awaitable: " << TestType::name);
    run_columns<TestType>(static_cast<combinators*>(nullptr));
}
