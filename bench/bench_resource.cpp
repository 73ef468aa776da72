// bench_resource: async_context + with(), and pool<T>. The asyncio twins are in
// bench/peers/asyncio_pool.py (same workloads, same output format); run both in
// the same session and compare the RESULT lines.
//
// Workloads (N is divided by 10 with --quick):
//
//   await_ready      baseline: N = 10,000,000 times `co_await body()` of a
//                    task<int> that returns without suspending (one frame).
//   with_ready       N = 10,000,000 times `co_await with(ctx(), body)`: the
//                    context yields an int without suspending, the body (a
//                    task<int>) returns without suspending. Three coroutine
//                    frames per op: with's, the context's and the body's.
//   pool_uncontended N = 100,000,000 times `{ auto l = co_await p.acquire(); }`
//                    on a pool<int> holding one idle resource (acquire never
//                    suspends; the lease's destructor returns it).
//   pool_contended   10,000 tasks x 100 rounds of
//                    `auto l = co_await p.acquire(); co_await yield_now();`
//                    on pool(max_size = 10); all spawned, then all joined.
//                    ns/op = wall time / 1,000,000 acquire+release pairs.
//   sem_contended    the same pattern on semaphore(10), for reference.
//
// Every workload runs --reps times (default 5), each in a fresh corio::run;
// the clock starts inside the top-level coroutine; ns/op is the median.
//
// Output: '#' lines for humans and `RESULT <workload> <impl> ns_per_op <value>`
// (the format bench/report.py reads).
//
// Usage: bench_resource [--quick] [--reps=R] [filter ...]

#include <corio/corio.hpp>
#include <corio/pool.hpp>
#include <corio/resource.hpp>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace {

struct options {
    long div = 1;
    int reps = 5;
    std::vector<std::string> filters;
};

bool selected(const options& o, const std::string& name) { return corio_bench::selected(o.filters, name); }

struct sample {
    double ns = 0;
    std::int64_t check = 0;
    double cpu_ns = 0;
};

/// Wall and CPU clocks started together (CPU time: on a shared machine wall
/// time also counts the time other processes held the core).
struct stopwatch {
    corio_bench::stopwatch sw;
    sample stop(std::int64_t check) const { return sample{sw.wall_ns(), check, sw.cpu_ns()}; }
};

void report(const options& o, const char* workload, long n_ops, std::int64_t want,
            const std::function<sample()>& run_once) {
    std::string name = std::string(workload) + ":corio";
    if (!selected(o, name)) return;
    std::vector<double> per_op, cpu_per_op;
    for (int r = 0; r < o.reps; ++r) {
        sample s = run_once();
        if (s.check != want) {
            std::fprintf(stderr, "bench_resource: %s: checksum %lld != %lld\n", name.c_str(),
                         static_cast<long long>(s.check), static_cast<long long>(want));
            std::exit(1);
        }
        per_op.push_back(s.ns / static_cast<double>(n_ops));
        cpu_per_op.push_back(s.cpu_ns / static_cast<double>(n_ops));
    }
    auto wall = corio_bench::summarize(per_op), cpu = corio_bench::summarize(cpu_per_op);
    std::printf("# %-16s corio  n=%-10ld median %9.2f ns/op  min %9.2f  cpu min %9.2f ns/op\n", workload, n_ops,
                wall.median, wall.min, cpu.min);
    corio_bench::result(workload, "corio", "ns_per_op", wall.median, 3);
    corio_bench::result(workload, "corio", "ns_per_op_min", wall.min, 3);
    corio_bench::result(workload, "corio", "cpu_ns_per_op_min", cpu.min, 3);
}

corio::task<int> ready_body(int& x) { co_return x; }

corio::task<sample> await_ready(long n) {
    std::int64_t acc = 0;
    int one = 1;
    stopwatch t0;
    for (long i = 0; i < n; ++i) acc += co_await ready_body(one);
    co_return t0.stop(acc);
}

corio::async_context<int> ready_context() {
    int x = 1;
    co_yield x;
}

corio::task<sample> with_ready(long n) {
    std::int64_t acc = 0;
    auto body = [](int& x) { return ready_body(x); };
    stopwatch t0;
    for (long i = 0; i < n; ++i) acc += co_await corio::with(ready_context(), body);
    co_return t0.stop(acc);
}

struct make_int {
    corio::task<int> operator()() const { co_return 1; }
};

corio::task<sample> pool_uncontended(long n) {
    corio::pool<int> p(make_int{}, corio::pool_options<int>{.max_size = 1});
    { auto warm = co_await p.acquire(); }
    std::int64_t acc = 0;
    stopwatch t0;
    for (long i = 0; i < n; ++i) {
        auto l = co_await p.acquire();
        acc += *l;
    }
    sample s = t0.stop(acc);
    co_await p.close();
    co_return s;
}

corio::task<std::int64_t> pool_worker(corio::pool<int>& p, int rounds) {
    std::int64_t done = 0;
    for (int r = 0; r < rounds; ++r) {
        auto l = co_await p.acquire();
        co_await corio::yield_now();
        done += *l;
    }
    co_return done;
}

corio::task<sample> pool_contended(long tasks) {
    corio::pool<int> p(make_int{}, corio::pool_options<int>{.max_size = 10});
    std::vector<corio::join_handle<std::int64_t>> hs;
    hs.reserve(static_cast<std::size_t>(tasks));
    stopwatch t0;
    for (long i = 0; i < tasks; ++i) hs.push_back(corio::spawn(pool_worker(p, 100)));
    std::int64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    sample s = t0.stop(sum);
    co_await p.close();
    co_return s;
}

corio::task<std::int64_t> sem_worker(corio::semaphore& s, int rounds) {
    std::int64_t done = 0;
    for (int r = 0; r < rounds; ++r) {
        auto permit = co_await s.acquire();
        co_await corio::yield_now();
        ++done;
    }
    co_return done;
}

corio::task<sample> sem_contended(long tasks) {
    corio::semaphore s(10);
    std::vector<corio::join_handle<std::int64_t>> hs;
    hs.reserve(static_cast<std::size_t>(tasks));
    stopwatch t0;
    for (long i = 0; i < tasks; ++i) hs.push_back(corio::spawn(sem_worker(s, 100)));
    std::int64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    co_return t0.stop(sum);
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") o.div = 10;
        else if (a.rfind("--reps=", 0) == 0) o.reps = std::max(1, std::atoi(a.c_str() + 7));
        else if (a == "-h" || a == "--help") {
            std::printf("usage: bench_resource [--quick] [--reps=R] [filter ...]\n");
            return 0;
        } else o.filters.push_back(a);
    }
    const long n_with = 10'000'000 / o.div;
    const long n_unc = 100'000'000 / o.div;
    const long n_tasks = 10'000 / o.div;

    report(o, "await_ready", n_with, n_with, [&] { return corio::run(await_ready(n_with)); });
    report(o, "with_ready", n_with, n_with, [&] { return corio::run(with_ready(n_with)); });
    report(o, "pool_uncontended", n_unc, n_unc, [&] { return corio::run(pool_uncontended(n_unc)); });
    report(o, "pool_contended", n_tasks * 100, n_tasks * 100, [&] { return corio::run(pool_contended(n_tasks)); });
    report(o, "sem_contended", n_tasks * 100, n_tasks * 100, [&] { return corio::run(sem_contended(n_tasks)); });
    return 0;
}
