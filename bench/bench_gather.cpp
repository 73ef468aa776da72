// bench_gather: corio's structured combinators against the same fan-out in
// raw Asio, in the same binary and the same run (report ratios, not absolute
// numbers). The asyncio twin is bench/peers/asyncio_gather.py.
//
// Workloads (N is divided by 10 with --quick):
//
//   gather_1m        N = 1,000,000 trivial children (`co_return i`), gathered,
//                    ns per child; the clock covers creating the children,
//                    the fan-out and summing the results.
//                    corio: std::vector<corio::task<int>> of trivial(i), then
//                      `auto v = co_await corio::gather(std::move(ts));`.
//                    asio:  the usual raw-Asio fan-out: asio::co_spawn(ex,
//                      trivial(i), handler) for every i, the handler stores the
//                      value into a preallocated vector and counts down; the
//                      last one cancels a steady_timer the parent waits on.
//                      (make_parallel_group is variadic only in Asio 1.22,
//                      and `&&` has a fixed arity: see gather_pairs.)
//   gather_1m_yield  as gather_1m, but every child suspends once first
//                    (corio::yield_now() / co_await asio::post(ex, use_awaitable)),
//                    so the concurrent path is measured, not only the
//                    synchronous one.
//   gather_pairs     N/2 rounds of gathering two trivial children, ns per child:
//                    corio `co_await corio::gather(trivial(i), trivial(i + 1))`;
//                    asio_and `co_await (trivial(i) && trivial(i + 1))`
//                    (asio::experimental::awaitable_operators);
//                    asio_parallel_group `make_parallel_group(co_spawn(ex, a,
//                    deferred), co_spawn(ex, b, deferred)).async_wait(wait_for_all(),
//                    use_awaitable)`.
//   task_group_100k  with_task_group with M = 100,000 children that all suspend
//                    on one corio::event, then are released; ns per child, and
//                    (in a forked child process, so earlier workloads' freed
//                    heap does not hide growth) the peak RSS (VmHWM) per child
//                    minus the child's own frame. The frame size is measured
//                    the same way: M unstarted frames of the same coroutine,
//                    RSS growth / M.
//
// Every timed workload is repeated --reps times (default 5) on a fresh loop /
// io_context, after one untimed warm-up run; ns/op is the median (the minimum
// is printed too). Two clocks:
// wall time (metric ns_per_op) and the thread's CPU time (cpu_ns_per_op, user
// + sys, so page faults count), the one to compare on a loaded machine.
// Output: a table plus lines `RESULT <workload> <impl> <metric> <value>`
// (the format of bench_core).
#include <corio/corio.hpp>
#include <corio/gather.hpp>
#include <corio/sync.hpp>
#include <corio/task_group.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/core.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

struct measurement {
    double ns_per_op = 0;      // wall clock
    double cpu_ns_per_op = 0;  // this thread's CPU time (user + sys, page faults included)
    std::int64_t check = 0;
};

struct probe {
    corio_bench::stopwatch sw;
    void begin() { sw.restart(); }
    measurement end(std::uint64_t n, std::int64_t check) const {
        double cpu = sw.cpu_ns();
        double ns = sw.wall_ns();
        return {ns / static_cast<double>(n), cpu / static_cast<double>(n), check};
    }
};

struct stats {
    double median = 0, min = 0, cpu_median = 0;
};

template <class F>
stats repeat(int reps, F f) {
    std::vector<double> v, c;
    (void)f();  // warm-up: the frame pool and malloc's thresholds settle
    for (int r = 0; r < reps; ++r) {
        measurement m = f();
        v.push_back(m.ns_per_op);
        c.push_back(m.cpu_ns_per_op);
    }
    auto wall = corio_bench::summarize(std::move(v));
    return {wall.median, wall.min, corio_bench::median(std::move(c))};
}

std::map<std::string, double>* results_table() {
    static std::map<std::string, double> t;
    return &t;
}

void report(const std::string& workload, const std::string& impl, stats s) {
    fmt::print("  {:<18} {:<22} {:>10.1f} ns/op (min {:.1f}), cpu {:.1f} ns/op\n", workload, impl, s.median, s.min,
               s.cpu_median);
    corio_bench::result(workload, impl, "ns_per_op", s.median, 2);
    corio_bench::result(workload, impl, "cpu_ns_per_op", s.cpu_median, 2);
    (*results_table())[workload + "/" + impl] = s.median;
    (*results_table())[workload + "/" + impl + "/cpu"] = s.cpu_median;
    std::fflush(stdout);
}

long status_kib(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    std::size_t k = std::strlen(key);
    while (std::getline(f, line))
        if (line.compare(0, k, key) == 0) return std::strtol(line.c_str() + k + 1, nullptr, 10);
    return -1;
}

// ------------------------------------------------------------------ corio ---

namespace corio_side {

corio::task<int> trivial(int i) { co_return i; }
corio::task<int> yielding(int i) {
    co_await corio::yield_now();
    co_return i;
}

template <class T>
T run(corio::task<T> t) {
    return corio::run(std::move(t));
}

corio::task<measurement> gather_1m(std::uint64_t n, bool yield) {
    probe p;
    p.begin();
    std::vector<corio::task<int>> ts;
    ts.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i)
        ts.push_back(yield ? yielding(static_cast<int>(i)) : trivial(static_cast<int>(i)));
    std::vector<int> v = co_await corio::gather(std::move(ts));
    std::int64_t sum = 0;
    for (int x : v) sum += x;
    co_return p.end(n, sum);
}

corio::task<measurement> gather_pairs(std::uint64_t n) {
    probe p;
    p.begin();
    std::int64_t sum = 0;
    for (std::uint64_t i = 0; i < n; i += 2) {
        auto [a, b] = co_await corio::gather(trivial(static_cast<int>(i)), trivial(static_cast<int>(i + 1)));
        sum += a + b;
    }
    co_return p.end(n, sum);
}

corio::task<void> waiter(corio::event& ev, std::int64_t& sum, int i) {
    co_await ev.wait();
    sum += i;
}

corio::task<measurement> task_group_timed(std::uint64_t n) {
    probe p;
    p.begin();
    corio::event ev;
    std::int64_t sum = 0;
    auto body = [&](corio::task_group& tg) -> corio::task<void> {
        for (std::uint64_t i = 0; i < n; ++i) tg.spawn(waiter(ev, sum, static_cast<int>(i)));
        co_await corio::yield_now();  // every child has started and is parked on ev
        ev.set();
    };
    co_await corio::with_task_group(body);
    co_return p.end(n, sum);
}

// In a forked process: RSS growth of n unstarted frames of waiter().
long frame_bytes(std::uint64_t n) {
    corio::event ev;
    std::int64_t sum = 0;
    std::vector<corio::task<void>> frames;
    frames.reserve(n);
    long base = status_kib("VmRSS:");
    for (std::uint64_t i = 0; i < n; ++i) frames.push_back(waiter(ev, sum, static_cast<int>(i)));
    long after = status_kib("VmRSS:");
    return (after - base) * 1024 / static_cast<long>(n);
}

// In a forked process: peak RSS growth while n children are parked in a group.
struct group_rss {
    long base_kib = 0, peak_kib = 0, hwm_kib = 0;
};
group_rss group_peak(std::uint64_t n) {
    group_rss r;
    corio::run([&]() -> corio::task<void> {
        corio::event ev;
        std::int64_t sum = 0;
        r.base_kib = status_kib("VmRSS:");
        auto body = [&](corio::task_group& tg) -> corio::task<void> {
            for (std::uint64_t i = 0; i < n; ++i) tg.spawn(waiter(ev, sum, static_cast<int>(i)));
            co_await corio::yield_now();
            r.peak_kib = status_kib("VmRSS:");
            ev.set();
        };
        co_await corio::with_task_group(body);
        r.hwm_kib = status_kib("VmHWM:");
    }());
    return r;
}

}  // namespace corio_side

// ------------------------------------------------------------------- asio ---

namespace asio_side {

using namespace asio::experimental::awaitable_operators;

template <class T>
T run(asio::awaitable<T> main) {
    asio::io_context ctx{1};
    asio::steady_timer idle(ctx);  // a real program has a reactor (corio's loop owns a timer)
    std::optional<T> out;
    std::exception_ptr err;
    asio::co_spawn(ctx, std::move(main), [&](std::exception_ptr e, T v) {
        err = e;
        if (!e) out.emplace(std::move(v));
    });
    ctx.run();
    if (err) std::rethrow_exception(err);
    return std::move(*out);
}

asio::awaitable<int> trivial(int i) { co_return i; }
asio::awaitable<int> yielding(int i) {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return i;
}

struct join_all {
    std::size_t remaining;
    asio::steady_timer done;
    join_all(const asio::any_io_executor& ex, std::size_t n)
        : remaining(n), done(ex, asio::steady_timer::time_point::max()) {}
    void one_done() {
        if (--remaining == 0) done.cancel();
    }
    asio::awaitable<void> wait() {
        while (remaining != 0) {
            std::error_code ec;
            co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }
};

asio::awaitable<measurement> gather_1m(std::uint64_t n, bool yield) {
    auto ex = co_await asio::this_coro::executor;
    probe p;
    p.begin();
    std::vector<int> results(n);
    join_all j(ex, n);
    for (std::uint64_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, yield ? yielding(static_cast<int>(i)) : trivial(static_cast<int>(i)),
                       [&results, &j, i](std::exception_ptr e, int v) {
                           if (e) std::rethrow_exception(e);
                           results[i] = v;
                           j.one_done();
                       });
    }
    co_await j.wait();
    std::int64_t sum = 0;
    for (int v : results) sum += v;
    co_return p.end(n, sum);
}

asio::awaitable<measurement> gather_pairs_and(std::uint64_t n) {
    probe p;
    p.begin();
    std::int64_t sum = 0;
    for (std::uint64_t i = 0; i < n; i += 2) {
        auto [a, b] = co_await (trivial(static_cast<int>(i)) && trivial(static_cast<int>(i + 1)));
        sum += a + b;
    }
    co_return p.end(n, sum);
}

asio::awaitable<measurement> gather_pairs_group(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    probe p;
    p.begin();
    std::int64_t sum = 0;
    for (std::uint64_t i = 0; i < n; i += 2) {
        auto [order, e1, a, e2, b] =
            co_await asio::experimental::make_parallel_group(
                asio::co_spawn(ex, trivial(static_cast<int>(i)), asio::experimental::deferred),
                asio::co_spawn(ex, trivial(static_cast<int>(i + 1)), asio::experimental::deferred))
                .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        (void)order;
        if (e1) std::rethrow_exception(e1);
        if (e2) std::rethrow_exception(e2);
        sum += a + b;
    }
    co_return p.end(n, sum);
}

}  // namespace asio_side

/// Runs `f` in a forked child process that writes one long per line to a pipe.
template <class F>
std::vector<long> in_child(F f) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        std::vector<long> out = f();
        std::string text;
        for (long v : out) text += std::to_string(v) + "\n";
        if (write(fds[1], text.data(), text.size()) < 0) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    std::string text;
    char buf[256];
    for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(k));
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    std::vector<long> out;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t nl = text.find('\n', pos);
        out.push_back(std::strtol(text.c_str() + pos, nullptr, 10));
        pos = nl == std::string::npos ? text.size() : nl + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t scale = 1;
    int reps = 5;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") scale = 10;
        else if (a.rfind("--reps=", 0) == 0) reps = std::atoi(a.c_str() + 7);
    }
    const std::uint64_t n = 1000000 / scale;
    const std::uint64_t m = 100000 / scale;
    fmt::print("# bench_gather: N = {}, M = {}, reps = {}\n", n, m, reps);

    // The RSS measurements first, each in a fresh process.
    auto frame = in_child([&] { return std::vector<long>{corio_side::frame_bytes(m)}; });
    auto peak = in_child([&] {
        auto r = corio_side::group_peak(m);
        return std::vector<long>{r.base_kib, r.peak_kib, r.hwm_kib};
    });

    report("gather_1m", "corio", repeat(reps, [&] { return corio_side::run(corio_side::gather_1m(n, false)); }));
    report("gather_1m", "asio_co_spawn", repeat(reps, [&] { return asio_side::run(asio_side::gather_1m(n, false)); }));
    report("gather_1m_yield", "corio", repeat(reps, [&] { return corio_side::run(corio_side::gather_1m(n, true)); }));
    report("gather_1m_yield", "asio_co_spawn",
           repeat(reps, [&] { return asio_side::run(asio_side::gather_1m(n, true)); }));
    report("gather_pairs", "corio", repeat(reps, [&] { return corio_side::run(corio_side::gather_pairs(n)); }));
    report("gather_pairs", "asio_and", repeat(reps, [&] { return asio_side::run(asio_side::gather_pairs_and(n)); }));
    report("gather_pairs", "asio_parallel_group",
           repeat(reps, [&] { return asio_side::run(asio_side::gather_pairs_group(n)); }));
    report("task_group_100k", "corio", repeat(reps, [&] { return corio_side::run(corio_side::task_group_timed(m)); }));

    if (frame.size() == 1 && peak.size() == 3) {
        double per_child = static_cast<double>(std::max(peak[1], peak[2]) - peak[0]) * 1024.0 / static_cast<double>(m);
        double beyond = per_child - static_cast<double>(frame[0]);
        fmt::print("  task_group_100k rss: frame {} B/child, peak {:.0f} B/child, beyond the frame {:.0f} B/child\n",
                   frame[0], per_child, beyond);
        corio_bench::result("task_group_100k", "corio", "frame_bytes", static_cast<double>(frame[0]));
        corio_bench::result("task_group_100k", "corio", "peak_bytes_per_child", per_child, 0);
        corio_bench::result("task_group_100k", "corio", "rss_bytes_per_child_beyond_frame", beyond, 0);
    }

    auto& t = *results_table();
    auto ratio = [&](const char* w, const char* a, const char* b) {
        std::string ka = std::string(w) + "/" + a, kb = std::string(w) + "/" + b;
        if (t.count(ka) && t.count(kb))
            fmt::print("  ratio {:<16} {} / {} = {:.1f}x wall, {:.1f}x cpu\n", w, b, a, t[kb] / t[ka],
                       t[kb + "/cpu"] / t[ka + "/cpu"]);
    };
    ratio("gather_1m", "corio", "asio_co_spawn");
    ratio("gather_1m_yield", "corio", "asio_co_spawn");
    ratio("gather_pairs", "corio", "asio_and");
    ratio("gather_pairs", "corio", "asio_parallel_group");
    return 0;
}
