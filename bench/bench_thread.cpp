// bench_thread: to_thread and loop_pool, against hand-written Asio in the
// same binary and the same run (bench/peers/asyncio_thread.py is the asyncio
// twin of the first workload).
//
// Workloads (N is divided by 10 with --quick):
//
//   to_thread_roundtrip  N = 50,000 sequential round trips of an empty
//                        function, one task: `co_await corio::to_thread(empty)`
//                        (to_thread's pool has hardware_concurrency threads).
//                        asio: the same chain written by hand with callbacks:
//                        asio::post(pool, [..]{ empty(); asio::post(ctx, next); })
//                        on an asio::thread_pool of the same size, the next
//                        round trip started from the handler on the io_context
//                        thread. ns/op = wall / N. Also reported as
//                        to_thread_roundtrip_cpu: the process's CPU time
//                        (every thread) per round trip, which shows what
//                        corio's bounded polling costs (docs/design.md).
//   fanout_cpu           1,000 CPU-bound tasks (each 4 slices of ~50 us of
//                        integer work, yield_now() between slices), spawned
//                        all at once and joined.
//                        one_loop: corio::run(main), corio::spawn / co_await.
//                        loop_pool2: corio::loop_pool(2).run(main), pool.spawn
//                        (round-robin) / co_await remote_join_handle.
//                        Reported as ns per task and as the speed-up
//                        one_loop / loop_pool2.
//
// Every workload is repeated --reps times (default 5); ns/op is the median
// (the minimum is printed too). Output: '#' lines for humans and
// `RESULT <workload> <impl> ns_per_op <value>` lines (bench/report.py format).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <corio/corio.hpp>

#include "common.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct options {
    int reps = 5;
    bool quick = false;
    std::vector<std::string> filters;
    bool wants(const std::string& name) const { return corio_bench::selected(filters, name); }
};

using corio_bench::median;

void report(const char* workload, const char* impl, std::size_t n, const std::vector<double>& ns) {
    corio_bench::report_ns_per_op(workload, impl, static_cast<long long>(n), corio_bench::summarize(ns));
}

[[gnu::noinline]] void empty_fn() noexcept { asm volatile(""); }

double process_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// ------------------------------------------------------------ to_thread ---

double corio_roundtrip(std::size_t n) {
    return corio::run([](std::size_t count) -> corio::task<double> {
        auto t0 = steady::now();
        for (std::size_t i = 0; i < count; ++i) co_await corio::to_thread(&empty_fn);
        co_return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / double(count);
    }(n));
}

struct asio_chain {
    asio::io_context& ctx;
    asio::thread_pool& pool;
    std::size_t left;
    void next() {
        if (left-- == 0) return;
        asio::post(pool, [this] {
            empty_fn();
            asio::post(ctx, [this] { next(); });
        });
    }
};

double asio_roundtrip(std::size_t n, asio::thread_pool& pool) {
    asio::io_context ctx(1);
    asio_chain chain{ctx, pool, n};
    auto t0 = steady::now();
    asio::post(ctx, [&] { chain.next(); });
    {
        auto work = asio::make_work_guard(ctx);
        // The chain ends when `left` reaches 0; the guard keeps ctx running
        // while a function is on the pool. Stop once the chain is done.
        asio::post(ctx, [] {});
        while (chain.left != static_cast<std::size_t>(-1)) ctx.run_one();
    }
    return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / double(n);
}

// ------------------------------------------------------------ fan-out -----

constexpr int slices = 4;
constexpr std::uint64_t slice_iters = 20000;  // ~50 us of integer work here (unloaded)

[[gnu::noinline]] std::uint64_t cpu_slice(std::uint64_t x) {
    for (std::uint64_t i = 0; i < slice_iters; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

corio::task<std::uint64_t> cpu_task(std::uint64_t seed) {
    std::uint64_t x = seed | 1;
    for (int s = 0; s < slices; ++s) {
        x = cpu_slice(x);
        co_await corio::yield_now();
    }
    co_return x;
}

double fanout_one_loop(std::size_t tasks) {
    return corio::run([](std::size_t count) -> corio::task<double> {
        auto t0 = steady::now();
        std::vector<corio::join_handle<std::uint64_t>> hs;
        hs.reserve(count);
        for (std::size_t i = 0; i < count; ++i) hs.push_back(corio::spawn(cpu_task(i)));
        std::uint64_t sum = 0;
        for (auto& h : hs) sum += co_await h;
        if (sum == 42) std::puts("");
        co_return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / double(count);
    }(tasks));
}

double fanout_pool(std::size_t tasks, std::size_t loops) {
    corio::loop_pool pool(loops);
    auto main = [&](std::size_t count) -> corio::task<double> {
        auto t0 = steady::now();
        std::vector<corio::remote_join_handle<std::uint64_t>> hs;
        hs.reserve(count);
        for (std::size_t i = 0; i < count; ++i) hs.push_back(pool.spawn(cpu_task(i)));
        std::uint64_t sum = 0;
        for (auto& h : hs) sum += co_await h;
        if (sum == 42) std::puts("");
        co_return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / double(count);
    };
    return pool.run(main(tasks));
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) opt.quick = true;
        else if (std::strncmp(argv[i], "--reps=", 7) == 0) opt.reps = std::max(1, std::atoi(argv[i] + 7));
        else opt.filters.emplace_back(argv[i]);
    }
    const std::size_t div = opt.quick ? 10 : 1;
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    std::printf("# bench_thread: corio vs hand-written Asio, reps=%d, hardware threads=%u\n", opt.reps, hw);

    if (opt.wants("to_thread_roundtrip")) {
        const std::size_t n = 50000 / div;
        asio::thread_pool pool(hw);
        std::vector<double> c, a, c_cpu, a_cpu;
        for (int r = 0; r < opt.reps; ++r) {  // interleaved, so load hits both alike
            double t0 = process_cpu_ns();
            c.push_back(corio_roundtrip(n));
            double t1 = process_cpu_ns();
            a.push_back(asio_roundtrip(n, pool));
            double t2 = process_cpu_ns();
            c_cpu.push_back((t1 - t0) / double(n));
            a_cpu.push_back((t2 - t1) / double(n));
        }
        report("to_thread_roundtrip", "corio", n, c);
        report("to_thread_roundtrip", "asio", n, a);
        std::printf("# to_thread_roundtrip asio/corio = %.2f\n", median(a) / median(c));
        report("to_thread_roundtrip_cpu", "corio", n, c_cpu);
        report("to_thread_roundtrip_cpu", "asio", n, a_cpu);
    }
    if (opt.wants("fanout_cpu")) {
        const std::size_t n = 1000;
        std::vector<double> one, two;
        for (int r = 0; r < opt.reps; ++r) {
            one.push_back(fanout_one_loop(n));
            two.push_back(fanout_pool(n, 2));
        }
        report("fanout_cpu", "one_loop", n, one);
        report("fanout_cpu", "loop_pool2", n, two);
        std::printf("# fanout_cpu speed-up loop_pool(2) / one loop = %.2fx (best runs: %.2fx)\n",
                    median(one) / median(two),
                    *std::min_element(one.begin(), one.end()) / *std::min_element(two.begin(), two.end()));
    }
    return 0;
}
