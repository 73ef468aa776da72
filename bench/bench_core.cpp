// bench_core: corio against raw Asio coroutines, in the same binary and the
// same run, so that the ratios (not the absolute numbers) are what we report.
//
// Workloads (N is divided by 10 with --quick):
//
//   spawn_join_all   N = 1,000,000 trivial tasks, all spawned, then all joined.
//                    corio: inside corio::run(main), push corio::spawn(trivial(i))
//                      into a std::vector<corio::join_handle<int>>, then
//                      `sum += co_await h` for each handle, then destroy the
//                      handles (all inside the timed region).
//                    asio: inside a co_spawned parent awaitable,
//                      asio::co_spawn(ex, trivial(i), handler) where the
//                      completion handler stores the result in a slot of a
//                      preallocated std::vector<int>, decrements a counter and,
//                      on the last one, cancels a steady_timer the parent is
//                      waiting on (the usual raw-Asio "join all" idiom). Then
//                      the parent sums the slots.
//   spawn_join_one   N = 1,000,000 times: spawn one trivial task and await it
//                    (the steady state of spawn+join).
//                    corio: `auto h = corio::spawn(trivial(i)); sum += co_await h;`
//                    asio:  `sum += co_await asio::co_spawn(ex, trivial(i), asio::use_awaitable);`
//   await_ready      N = 10,000,000 awaits of a child coroutine that completes
//                    without suspending: `sum += co_await child(i);` with
//                    corio::task<int> / asio::awaitable<int>.
//   sleep_random     N = 100,000 tasks, each sleeping a pseudo-random 0..10 ms
//                    (same 64-bit LCG sequence, seed 42, as the asyncio peer),
//                    spawned all at once and joined; ns/op = wall time / N.
//                    corio: `co_await corio::sleep(milliseconds(k))`, spawn/join as
//                      in spawn_join_all.
//                    asio: each coroutine constructs its own asio::steady_timer
//                      and awaits `async_wait(asio::use_awaitable)`; spawn/join as
//                      in spawn_join_all.
//   rss_sleepers     N = 1,000,000 live spawned tasks, each suspended in a 30 s
//                    sleep; VmRSS is read before spawning and once all have
//                    started (peak), then all are cancelled and joined. The
//                    per-task bookkeeping (handle slots / timer pointers) is
//                    allocated and touched before the baseline. Runs in
//                    a fresh child process (fork + exec of /proc/self/exe) so
//                    that earlier workloads' freed heap does not hide the growth.
//                    corio: corio::spawn(long_sleeper()); h.cancel(); co_await h
//                      (cancelled_error caught).
//                    asio: co_spawn of awaitables that each wait on their own
//                      steady_timer (on the coroutine frame; a std::vector of
//                      timer pointers lets the parent cancel them), joined with
//                      the counter + timer idiom above. --skip-asio-rss skips it,
//                      --asio-rss-n=K caps its N.
//   allocs_spawn_join   global operator new calls per spawn+join pair in the
//                    steady state: 1000 warm-up pairs, then the count over
//                    100,000 pairs (the spawn_join_one pattern). This binary
//                    replaces the global operator new/delete with counting
//                    versions (a thread_local counter, main thread only), and
//                    also counts C aligned_alloc calls (Asio's recycling
//                    allocator) and mmap calls (corio's frame-pool slabs).
//
// Every timed workload is repeated --reps times (default 5) in a fresh
// corio::run / io_context; ns/op is the median wall time (the minimum is
// printed too). "cpu ns/op" is the median of this thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID, user + system), which a busy machine disturbs less
// than wall time (for sleep_random it excludes the time spent asleep).
// The clock starts inside the top-level coroutine (loop construction is not
// timed) and stops after the last join. "allocs/op" is the number of global
// operator new, aligned_alloc and mmap calls during the last repetition divided
// by N.
//
// Output: a human-readable table plus machine-readable lines
//     RESULT <workload> <impl> <metric> <value>
// that bench/report.py merges with the asyncio peer's output.
//
// Usage: bench_core [--quick] [--reps=R] [--skip-asio-rss] [--asio-rss-n=K]
//                   [--asio-reactor] [filter ...]
// A filter is a substring matched against "<workload>:<impl>", e.g.
// `bench_core spawn`, `bench_core rss_sleepers:corio`, `bench_core :asio`.
//
// Asio side: default asio::awaitable<T> (any_io_executor), asio::use_awaitable,
// an asio::io_context with concurrency hint 1, run on the main thread. In the
// spawn/await workloads that io_context owns no timer or socket, so Asio never
// calls epoll_wait there, while corio's loop always owns a steady_timer (each
// io_context turn then makes an epoll_wait call). --asio-reactor adds an idle
// steady_timer to every raw-Asio io_context, as a real program would have.
//
// Build with -DCORIO_BENCH_ASIO_ONLY to compile the Asio half alone.

#include <asio.hpp>
#ifndef CORIO_BENCH_ASIO_ONLY
#include <corio/corio.hpp>
#endif

#include <fmt/core.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Counting global operator new / delete.
// ---------------------------------------------------------------------------

namespace alloc_count {
// thread_local: no atomics on the measured path, and only the benchmark
// thread's allocations are counted.
thread_local std::uint64_t calls = 0;    // global operator new (all forms)
thread_local std::uint64_t aligned = 0;  // aligned_alloc (see below)
thread_local std::uint64_t mmaps = 0;    // mmap called from this binary's code (see below)
thread_local std::uint64_t bytes = 0;    // bytes requested from either
}  // namespace alloc_count

// Both sides also allocate through C aligned_alloc, which an operator-new
// counter does not see: Asio's per-thread recycling allocator
// (asio::detail::aligned_new, used for awaitable frames and handler memory)
// and corio's frame-pool slabs (64 KiB each). This definition interposes the C
// library's for the code in this binary (it is not called through operator
// new, so nothing is counted twice).
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
    ++alloc_count::aligned;
    alloc_count::bytes += n;
    if (alignment < sizeof(void*)) alignment = sizeof(void*);
    void* p = nullptr;
    if (posix_memalign(&p, alignment, n != 0 ? n : 1) != 0) return nullptr;
    return p;
}

// An allocator may also take its blocks straight from the kernel (corio's
// frame pool can mmap its slabs). Calls from this binary's code bind to this
// definition; glibc's malloc uses its internal mmap and is not counted here.
extern "C" void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) noexcept {
    ++alloc_count::mmaps;
    alloc_count::bytes += len;
    return reinterpret_cast<void*>(::syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

namespace {
void* counted_alloc(std::size_t n) {
    ++alloc_count::calls;
    alloc_count::bytes += n;
    if (void* p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
void* counted_alloc_aligned(std::size_t n, std::align_val_t al) {
    ++alloc_count::calls;
    alloc_count::bytes += n;
    std::size_t a = static_cast<std::size_t>(al);
    if (a < sizeof(void*)) a = sizeof(void*);
    void* p = nullptr;
    if (posix_memalign(&p, a, n != 0 ? n : 1) == 0) return p;
    throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new(std::size_t n, std::align_val_t al) { return counted_alloc_aligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return counted_alloc_aligned(n, al); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc_aligned(n, al);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc_aligned(n, al);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Measurement helpers.
// ---------------------------------------------------------------------------

struct measurement {
    std::int64_t ns = 0;              // elapsed wall time of the timed region
    std::int64_t cpu_ns = 0;          // CPU time of this thread (user + system) in the region
    std::uint64_t ops = 0;            // operations in the timed region
    std::uint64_t new_calls = 0;      // global operator new calls in the region
    std::uint64_t aligned_calls = 0;  // aligned_alloc calls in the region
    std::uint64_t mmap_calls = 0;     // mmap calls in the region
    std::uint64_t bytes = 0;          // bytes requested from either
    std::int64_t check = 0;           // a checksum, verified by the caller

    double per_op(std::uint64_t v) const { return static_cast<double>(v) / static_cast<double>(ops); }
    double allocs_per_op() const { return per_op(new_calls + aligned_calls + mmap_calls); }
};

std::int64_t thread_cpu_ns() { return static_cast<std::int64_t>(corio_bench::thread_cpu_ns()); }

struct probe {
    clock_type::time_point t0{};
    std::int64_t cpu0 = 0;
    std::uint64_t calls0 = 0;
    std::uint64_t aligned0 = 0;
    std::uint64_t mmaps0 = 0;
    std::uint64_t bytes0 = 0;

    void begin() {
        calls0 = alloc_count::calls;
        aligned0 = alloc_count::aligned;
        mmaps0 = alloc_count::mmaps;
        bytes0 = alloc_count::bytes;
        cpu0 = thread_cpu_ns();
        t0 = clock_type::now();
    }
    measurement end(std::uint64_t ops, std::int64_t check) const {
        auto t1 = clock_type::now();
        const std::int64_t cpu1 = thread_cpu_ns();
        measurement m;
        m.ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
        m.cpu_ns = cpu1 - cpu0;
        m.ops = ops;
        m.new_calls = alloc_count::calls - calls0;
        m.aligned_calls = alloc_count::aligned - aligned0;
        m.mmap_calls = alloc_count::mmaps - mmaps0;
        m.bytes = alloc_count::bytes - bytes0;
        m.check = check;
        return m;
    }
};

[[noreturn]] void fail(const std::string& what) {
    std::fflush(stdout);
    std::fprintf(stderr, "bench_core: %s\n", what.c_str());
    std::exit(2);
}

void expect_check(const char* what, std::int64_t got, std::int64_t want) {
    if (got != want) fail(fmt::format("{}: checksum {} != expected {}", what, got, want));
}

std::int64_t triangular(std::uint64_t n) {
    return static_cast<std::int64_t>(n) * (static_cast<std::int64_t>(n) - 1) / 2;
}

// Same generator as bench/peers/asyncio_core.py: 64-bit LCG (Knuth MMIX
// constants), seed 42, k = (x >> 33) % 11 milliseconds.
struct lcg {
    std::uint64_t x = 42;
    int next_ms() {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<int>((x >> 33) % 11);
    }
};

std::vector<int> sleep_plan(std::uint64_t n) {
    std::vector<int> v(n);
    lcg g;
    for (auto& k : v) k = g.next_ms();
    return v;
}

std::int64_t sum_of(const std::vector<int>& v) {
    std::int64_t s = 0;
    for (int k : v) s += k;
    return s;
}

// VmRSS / VmHWM from /proc/self/status, in bytes.
std::uint64_t proc_status_kb(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const std::size_t klen = std::strlen(key);
    while (std::getline(f, line)) {
        if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
            return std::strtoull(line.c_str() + klen + 1, nullptr, 10);
        }
    }
    return 0;
}
std::uint64_t vm_rss_bytes() { return proc_status_kb("VmRSS") * 1024; }
std::uint64_t vm_hwm_bytes() { return proc_status_kb("VmHWM") * 1024; }
void reset_hwm() {
    // Writing 5 to clear_refs resets the peak RSS (VmHWM) counter.
    int fd = ::open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) {
        [[maybe_unused]] auto r = ::write(fd, "5", 1);
        ::close(fd);
    }
}

constexpr double mib = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------
// Results.
// ---------------------------------------------------------------------------

struct result_store {
    std::vector<std::string> workloads;  // first-seen order
    std::map<std::string, std::map<std::string, std::map<std::string, double>>> data;

    void add(const std::string& w, const std::string& impl, const std::string& metric, double v) {
        if (std::find(workloads.begin(), workloads.end(), w) == workloads.end()) workloads.push_back(w);
        data[w][impl][metric] = v;
        corio_bench::result(w, impl, metric, v);
    }
    std::optional<double> get(const std::string& w, const std::string& impl, const std::string& metric) const {
        auto a = data.find(w);
        if (a == data.end()) return std::nullopt;
        auto b = a->second.find(impl);
        if (b == a->second.end()) return std::nullopt;
        auto c = b->second.find(metric);
        if (c == b->second.end()) return std::nullopt;
        return c->second;
    }
};

struct options {
    bool quick = false;
    int reps = 5;
    bool skip_asio_rss = false;
    std::uint64_t asio_rss_n = 0;  // 0: same N as corio
    std::vector<std::string> filters;
    std::string self;  // argv[0]
};

std::uint64_t scaled(const options& o, std::uint64_t n) { return o.quick ? n / 10 : n; }

// Repeats `run(n)` o.reps times and records median / min ns per op and the
// allocation count of the last repetition.
template <class Run>
void timed(result_store& rs, const options& o, const std::string& workload, const std::string& impl, std::uint64_t n,
           std::int64_t want_check, Run run) {
    std::vector<double> per_op, cpu_per_op;
    measurement last;
    for (int r = 0; r < o.reps; ++r) {
        last = run(n);
        expect_check((workload + ":" + impl).c_str(), last.check, want_check);
        per_op.push_back(static_cast<double>(last.ns) / static_cast<double>(last.ops));
        cpu_per_op.push_back(static_cast<double>(last.cpu_ns) / static_cast<double>(last.ops));
    }
    auto median_of = [](std::vector<double>& v) {
        std::sort(v.begin(), v.end());
        const std::size_t k = v.size();
        return (k % 2 == 1) ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    };
    const double median = median_of(per_op);
    const double cpu_median = median_of(cpu_per_op);
    fmt::print(
        "# {:<18} {:<6} n={:<9} median {:9.1f} ns/op  min {:9.1f}  cpu {:9.1f} ns/op  "
        "allocs/op {:.3f} (new {:.3f} + aligned_alloc {:.4f} + mmap {:.4f})  last wall {:.1f} ms\n",
        workload, impl, n, median, per_op.front(), cpu_median, last.allocs_per_op(), last.per_op(last.new_calls),
        last.per_op(last.aligned_calls), last.per_op(last.mmap_calls), static_cast<double>(last.ns) / 1e6);
    rs.add(workload, impl, "n", static_cast<double>(n));
    rs.add(workload, impl, "ns_per_op", median);
    rs.add(workload, impl, "ns_per_op_min", per_op.front());
    rs.add(workload, impl, "cpu_ns_per_op", cpu_median);
    rs.add(workload, impl, "allocs_per_op", last.allocs_per_op());
    rs.add(workload, impl, "new_calls_per_op", last.per_op(last.new_calls));
    rs.add(workload, impl, "aligned_alloc_calls_per_op", last.per_op(last.aligned_calls));
    rs.add(workload, impl, "mmap_calls_per_op", last.per_op(last.mmap_calls));
    rs.add(workload, impl, "alloc_bytes_per_op", last.per_op(last.bytes));
    rs.add(workload, impl, "wall_ms", static_cast<double>(last.ns) / 1e6);
}

// ---------------------------------------------------------------------------
// Raw Asio side.
// ---------------------------------------------------------------------------

namespace asio_side {

// --asio-reactor: give every raw-Asio io_context an idle steady_timer, so that
// its reactor exists and every io_context turn makes an epoll_wait call, as in
// a real program with a socket or timer (corio's loop always owns a timer).
bool with_reactor = false;

template <class T>
T run(asio::awaitable<T> main) {
    asio::io_context ctx{1};
    std::optional<asio::steady_timer> idle;
    if (with_reactor) idle.emplace(ctx);
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
asio::awaitable<int> child(int i) { co_return i; }

// Join-all idiom for raw Asio: completion handlers count down, the last one
// cancels a timer the parent is parked on.
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

asio::awaitable<measurement> spawn_join_all(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<int> results(n);
    join_all j(ex, n);
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, trivial(static_cast<int>(i)), [&results, &j, i](std::exception_ptr e, int v) {
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

asio::awaitable<measurement> spawn_join_one(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    std::int64_t sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i)
        sum += co_await asio::co_spawn(ex, trivial(static_cast<int>(i)), asio::use_awaitable);
    co_return p.end(n, sum);
}

asio::awaitable<measurement> await_ready(std::uint64_t n) {
    std::int64_t sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) sum += co_await child(static_cast<int>(i));
    co_return p.end(n, sum);
}

asio::awaitable<int> sleeper(int ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::use_awaitable);
    co_return ms;
}

asio::awaitable<measurement> sleep_random(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    const std::vector<int> plan = sleep_plan(n);
    std::vector<int> results(n);
    join_all j(ex, n);
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, sleeper(plan[i]), [&results, &j, i](std::exception_ptr e, int v) {
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

asio::awaitable<measurement> allocs_spawn_join(std::uint64_t n) {
    auto ex = co_await asio::this_coro::executor;
    std::int64_t sum = 0;
    for (int i = 0; i < 1000; ++i) sum += co_await asio::co_spawn(ex, trivial(i), asio::use_awaitable);
    sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i)
        sum += co_await asio::co_spawn(ex, trivial(static_cast<int>(i)), asio::use_awaitable);
    co_return p.end(n, sum);
}

struct rss_report {
    std::uint64_t base = 0, peak = 0, hwm_live = 0, hwm = 0, after = 0;
    std::int64_t spawn_ns = 0, teardown_ns = 0;
    std::int64_t spawn_cpu_ns = 0, teardown_cpu_ns = 0;
    std::uint64_t started = 0, finished = 0;
};

asio::awaitable<void> long_sleeper(std::vector<asio::steady_timer*>& registry, std::size_t idx,
                                   std::uint64_t& started) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::seconds(30));
    registry[idx] = &t;  // registry is allocated and touched before the baseline
    ++started;
    std::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    registry[idx] = nullptr;
}

asio::awaitable<int> rss_sleepers(std::uint64_t n, rss_report& rep) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<asio::steady_timer*> registry(n, nullptr);
    std::uint64_t started = 0;
    join_all j(ex, n);
    reset_hwm();
    rep.base = vm_rss_bytes();
    const std::int64_t c0 = thread_cpu_ns();
    auto t0 = clock_type::now();
    for (std::uint64_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, long_sleeper(registry, i, started), [&j](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
            j.one_done();
        });
    }
    while (started < n) co_await asio::post(ex, asio::use_awaitable);
    auto t1 = clock_type::now();
    const std::int64_t c1 = thread_cpu_ns();
    rep.peak = vm_rss_bytes();
    rep.hwm_live = vm_hwm_bytes();  // the highest RSS while spawning and starting them
    rep.started = started;
    for (auto* t : registry)
        if (t) t->cancel();
    co_await j.wait();
    auto t2 = clock_type::now();
    const std::int64_t c2 = thread_cpu_ns();
    rep.spawn_cpu_ns = c1 - c0;
    rep.teardown_cpu_ns = c2 - c1;
    rep.finished = n - j.remaining;
    rep.spawn_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    rep.teardown_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t2 - t1).count();
    co_return 0;
}

}  // namespace asio_side

// ---------------------------------------------------------------------------
// corio side.
// ---------------------------------------------------------------------------

#ifndef CORIO_BENCH_ASIO_ONLY
namespace corio_side {

corio::task<int> trivial(int i) { co_return i; }
corio::task<int> child(int i) { co_return i; }

corio::task<measurement> spawn_join_all(std::uint64_t n) {
    std::vector<corio::join_handle<int>> hs;
    hs.reserve(n);
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) hs.push_back(corio::spawn(trivial(static_cast<int>(i))));
    std::int64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    hs.clear();  // handle destruction is part of the per-task cost
    co_return p.end(n, sum);
}

corio::task<measurement> spawn_join_one(std::uint64_t n) {
    std::int64_t sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) {
        auto h = corio::spawn(trivial(static_cast<int>(i)));
        sum += co_await h;
    }
    co_return p.end(n, sum);
}

corio::task<measurement> await_ready(std::uint64_t n) {
    std::int64_t sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) sum += co_await child(static_cast<int>(i));
    co_return p.end(n, sum);
}

corio::task<int> sleeper(int ms) {
    co_await corio::sleep(std::chrono::milliseconds(ms));
    co_return ms;
}

corio::task<measurement> sleep_random(std::uint64_t n) {
    const std::vector<int> plan = sleep_plan(n);
    std::vector<corio::join_handle<int>> hs;
    hs.reserve(n);
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) hs.push_back(corio::spawn(sleeper(plan[i])));
    std::int64_t sum = 0;
    for (auto& h : hs) sum += co_await h;
    hs.clear();
    co_return p.end(n, sum);
}

corio::task<measurement> allocs_spawn_join(std::uint64_t n) {
    std::int64_t sum = 0;
    for (int i = 0; i < 1000; ++i) {
        auto h = corio::spawn(trivial(i));
        sum += co_await h;
    }
    sum = 0;
    probe p;
    p.begin();
    for (std::uint64_t i = 0; i < n; ++i) {
        auto h = corio::spawn(trivial(static_cast<int>(i)));
        sum += co_await h;
    }
    co_return p.end(n, sum);
}

corio::task<void> long_sleeper(std::uint64_t& started) {
    ++started;
    co_await corio::sleep(std::chrono::seconds(30));
}

corio::task<int> rss_sleepers(std::uint64_t n, asio_side::rss_report& rep) {
    // The handle slots are allocated and touched before the baseline, like the
    // Asio side's timer registry: bytes/task excludes this bookkeeping.
    std::vector<corio::join_handle<void>> hs(n);
    std::uint64_t started = 0;
    reset_hwm();
    rep.base = vm_rss_bytes();
    const std::int64_t c0 = thread_cpu_ns();
    auto t0 = clock_type::now();
    for (auto& h : hs) h = corio::spawn(long_sleeper(started));
    while (started < n) co_await corio::yield_now();
    auto t1 = clock_type::now();
    const std::int64_t c1 = thread_cpu_ns();
    rep.peak = vm_rss_bytes();
    rep.hwm_live = vm_hwm_bytes();  // the highest RSS while spawning and starting them
    rep.started = started;
    for (auto& h : hs) h.cancel();
    std::uint64_t cancelled = 0;
    for (auto& h : hs) {
        try {
            co_await h;
        } catch (const corio::cancelled_error&) {
            ++cancelled;
        }
    }
    hs.clear();
    auto t2 = clock_type::now();
    const std::int64_t c2 = thread_cpu_ns();
    rep.spawn_cpu_ns = c1 - c0;
    rep.teardown_cpu_ns = c2 - c1;
    rep.finished = cancelled;
    rep.spawn_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    rep.teardown_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t2 - t1).count();
    co_return 0;
}

}  // namespace corio_side
#endif

// ---------------------------------------------------------------------------
// RSS workload: runs in a child process.
// ---------------------------------------------------------------------------

// In the child: run one implementation and print RESULT lines on stdout.
int rss_child(const std::string& impl, std::uint64_t n) {
    asio_side::rss_report rep;
    std::size_t handle_bytes = 0;
    if (impl == "asio") {
        asio_side::run(asio_side::rss_sleepers(n, rep));
        handle_bytes = sizeof(asio::steady_timer*);
    }
#ifndef CORIO_BENCH_ASIO_ONLY
    else if (impl == "corio") {
        corio::run(corio_side::rss_sleepers(n, rep));
        handle_bytes = sizeof(corio::join_handle<void>);
    }
#endif
    else {
        fail("unknown impl " + impl);
    }
    rep.hwm = vm_hwm_bytes();
    rep.after = vm_rss_bytes();
    const double dn = static_cast<double>(n);
    const auto growth = static_cast<double>(rep.peak) - static_cast<double>(rep.base);
    corio_bench::result("rss_sleepers", impl, "n", static_cast<double>(n));
    corio_bench::result("rss_sleepers", impl, "started", static_cast<double>(rep.started));
    corio_bench::result("rss_sleepers", impl, "finished", static_cast<double>(rep.finished));
    corio_bench::result("rss_sleepers", impl, "rss_base_mib", static_cast<double>(rep.base) / mib);
    corio_bench::result("rss_sleepers", impl, "rss_peak_mib", static_cast<double>(rep.peak) / mib);
    corio_bench::result("rss_sleepers", impl, "hwm_live_mib", static_cast<double>(rep.hwm_live) / mib);
    corio_bench::result("rss_sleepers", impl, "hwm_mib", static_cast<double>(rep.hwm) / mib);
    corio_bench::result("rss_sleepers", impl, "rss_after_mib", static_cast<double>(rep.after) / mib);
    corio_bench::result("rss_sleepers", impl, "bytes_per_task", static_cast<double>(growth / dn));
    corio_bench::result("rss_sleepers", impl, "handle_bytes", static_cast<double>(handle_bytes));
    corio_bench::result("rss_sleepers", impl, "spawn_ns_per_task", static_cast<double>(rep.spawn_ns) / dn);
    corio_bench::result("rss_sleepers", impl, "teardown_ns_per_task", static_cast<double>(rep.teardown_ns) / dn);
    corio_bench::result("rss_sleepers", impl, "spawn_cpu_ns_per_task", static_cast<double>(rep.spawn_cpu_ns) / dn);
    corio_bench::result("rss_sleepers", impl, "teardown_cpu_ns_per_task",
                        static_cast<double>(rep.teardown_cpu_ns) / dn);
    std::fflush(stdout);
    return 0;
}

// In the parent: fork + exec ourselves with --child-rss, parse its RESULT lines.
void rss_in_child(result_store& rs, const options& o, const std::string& impl, std::uint64_t n) {
    int fds[2];
    if (::pipe(fds) != 0) fail("pipe failed");
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = ::fork();
    if (pid < 0) fail("fork failed");
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        std::string a1 = "--child-rss=" + impl;
        std::string a2 = "--n=" + std::to_string(n);
        char* argv[] = {const_cast<char*>(o.self.c_str()), a1.data(), a2.data(), nullptr};
        ::execv("/proc/self/exe", argv);
        std::_Exit(127);
    }
    ::close(fds[1]);
    std::string buf;
    char tmp[4096];
    for (;;) {
        ssize_t k = ::read(fds[0], tmp, sizeof tmp);
        if (k <= 0) break;
        buf.append(tmp, static_cast<std::size_t>(k));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::size_t pos = 0;
    while (pos < buf.size()) {
        std::size_t nl = buf.find('\n', pos);
        if (nl == std::string::npos) nl = buf.size();
        std::string line = buf.substr(pos, nl - pos);
        pos = nl + 1;
        char w[64], im[64], metric[64];
        double v = 0;
        if (std::sscanf(line.c_str(), "RESULT %63s %63s %63s %lf", w, im, metric, &v) == 4) rs.add(w, im, metric, v);
        else if (!line.empty()) fmt::print("{}\n", line);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fmt::print("# rss_sleepers {}: child process failed (status {:#x}{})\n", impl, status,
                   WIFSIGNALED(status) ? fmt::format(", signal {}", WTERMSIG(status)) : "");
        rs.add("rss_sleepers", impl, "failed", 1);
        return;
    }
    auto per = rs.get("rss_sleepers", impl, "bytes_per_task").value_or(0);
    auto peak = rs.get("rss_sleepers", impl, "rss_peak_mib").value_or(0);
    auto base = rs.get("rss_sleepers", impl, "rss_base_mib").value_or(0);
    auto sp = rs.get("rss_sleepers", impl, "spawn_ns_per_task").value_or(0);
    auto td = rs.get("rss_sleepers", impl, "teardown_ns_per_task").value_or(0);
    auto spc = rs.get("rss_sleepers", impl, "spawn_cpu_ns_per_task").value_or(0);
    auto tdc = rs.get("rss_sleepers", impl, "teardown_cpu_ns_per_task").value_or(0);
    auto hwm = rs.get("rss_sleepers", impl, "hwm_mib").value_or(0);
    auto hwm_live = rs.get("rss_sleepers", impl, "hwm_live_mib").value_or(0);
    auto after = rs.get("rss_sleepers", impl, "rss_after_mib").value_or(0);
    fmt::print(
        "# rss_sleepers       {:<6} n={:<9} RSS {:.1f} -> {:.1f} MiB = {:.0f} bytes/task "
        "(VmHWM {:.1f} MiB until all slept, {:.1f} MiB incl. cancelling all at once; {:.1f} MiB after the loop ended); "
        "spawn+start {:.1f} ns/task "
        "(cpu {:.1f}), cancel+join {:.1f} ns/task (cpu {:.1f})\n",
        impl, n, base, peak, per, hwm_live, hwm, after, sp, spc, td, tdc);
}

// ---------------------------------------------------------------------------
// Driver.
// ---------------------------------------------------------------------------

bool selected(const options& o, const std::string& workload, const std::string& impl) {
    return corio_bench::selected(o.filters, workload + ":" + impl);
}

void print_table(const result_store& rs) {
    auto num = [](std::optional<double> v, const char* f) {
        return v ? fmt::format(fmt::runtime(f), *v) : std::string("-");
    };
    const bool any_timed =
        std::any_of(rs.workloads.begin(), rs.workloads.end(), [](const std::string& w) { return w != "rss_sleepers"; });
    if (any_timed) {
        fmt::print("\n(allocs/op = global operator new + aligned_alloc + mmap calls per op, last repetition)\n");
        fmt::print("{:<18} {:>12} {:>12} {:>11} {:>14} {:>14}\n", "workload", "corio ns/op", "asio ns/op", "asio/corio",
                   "corio allocs/op", "asio allocs/op");
    }
    for (const auto& w : rs.workloads) {
        if (w == "rss_sleepers") continue;
        auto c = rs.get(w, "corio", "ns_per_op");
        auto a = rs.get(w, "asio", "ns_per_op");
        std::optional<double> ratio;
        if (c && a && *c > 0) ratio = *a / *c;
        fmt::print("{:<18} {:>12} {:>12} {:>11} {:>14} {:>14}\n", w, num(c, "{:.1f}"), num(a, "{:.1f}"),
                   num(ratio, "{:.2f}x"), num(rs.get(w, "corio", "allocs_per_op"), "{:.3f}"),
                   num(rs.get(w, "asio", "allocs_per_op"), "{:.3f}"));
    }
    if (rs.data.count("rss_sleepers")) {
        fmt::print("\n{:<18} {:>6} {:>10} {:>12} {:>12} {:>12} {:>14}\n", "rss_sleepers", "impl", "n", "peak MiB",
                   "bytes/task", "spawn ns/t", "teardown ns/t");
        for (const char* impl : {"corio", "asio"}) {
            if (!rs.get("rss_sleepers", impl, "n")) continue;
            fmt::print("{:<18} {:>6} {:>10} {:>12} {:>12} {:>12} {:>14}\n", "", impl,
                       num(rs.get("rss_sleepers", impl, "n"), "{:.0f}"),
                       num(rs.get("rss_sleepers", impl, "rss_peak_mib"), "{:.1f}"),
                       num(rs.get("rss_sleepers", impl, "bytes_per_task"), "{:.0f}"),
                       num(rs.get("rss_sleepers", impl, "spawn_ns_per_task"), "{:.1f}"),
                       num(rs.get("rss_sleepers", impl, "teardown_ns_per_task"), "{:.1f}"));
        }
    }
    for (const char* impl : {"corio", "asio"}) {
        if (auto v = rs.get("allocs_spawn_join", impl, "new_calls_per_op"))
            fmt::print(
                "operator new calls per spawn+join ({}): {:.3f}  (+ aligned_alloc {:.4f}, "
                "mmap {:.4f}; {:.1f} bytes)\n",
                impl, *v, rs.get("allocs_spawn_join", impl, "aligned_alloc_calls_per_op").value_or(0),
                rs.get("allocs_spawn_join", impl, "mmap_calls_per_op").value_or(0),
                rs.get("allocs_spawn_join", impl, "alloc_bytes_per_op").value_or(0));
    }
}

int usage(const char* self) {
    std::fprintf(stderr,
                 "usage: %s [--quick] [--reps=R] [--skip-asio-rss] [--asio-rss-n=K] [--asio-reactor]\n"
                 "          [filter ...]\n"
                 "workloads: rss_sleepers spawn_join_all spawn_join_one await_ready sleep_random "
                 "allocs_spawn_join; impls: corio asio; filter = substring of <workload>:<impl>\n",
                 self);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    o.self = argv[0];
    std::string child_impl;
    std::uint64_t child_n = 0;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--quick") o.quick = true;
        else if (a == "--skip-asio-rss") o.skip_asio_rss = true;
        else if (a == "--asio-reactor") asio_side::with_reactor = true;
        else if (a.rfind("--reps=", 0) == 0) o.reps = std::max(1, std::atoi(argv[i] + 7));
        else if (a.rfind("--asio-rss-n=", 0) == 0) o.asio_rss_n = std::strtoull(argv[i] + 13, nullptr, 10);
        else if (a.rfind("--child-rss=", 0) == 0) child_impl = std::string(a.substr(12));
        else if (a.rfind("--n=", 0) == 0) child_n = std::strtoull(argv[i] + 4, nullptr, 10);
        else if (a == "-h" || a == "--help") return usage(argv[0]);
        else if (a.rfind("--", 0) == 0) return usage(argv[0]);
        else o.filters.emplace_back(a);
    }
    if (!child_impl.empty()) return rss_child(child_impl, child_n);

    std::vector<std::string> impls;
#ifndef CORIO_BENCH_ASIO_ONLY
    impls.push_back("corio");
#endif
    impls.push_back("asio");

    fmt::print("# bench_core: corio vs raw Asio {}.{}.{}, reps={}{}{}\n", ASIO_VERSION / 100000,
               ASIO_VERSION / 100 % 1000, ASIO_VERSION % 100, o.reps, o.quick ? " (quick)" : "",
               asio_side::with_reactor ? ", Asio io_contexts own an idle timer (--asio-reactor)" : "");
    result_store rs;

    try {
        // RSS first: each implementation in a fresh child process.
        for (const auto& impl : impls) {
            if (!selected(o, "rss_sleepers", impl)) continue;
            std::uint64_t n = scaled(o, 1'000'000);
            if (impl == "asio") {
                if (o.skip_asio_rss) {
                    fmt::print("# rss_sleepers asio skipped (--skip-asio-rss)\n");
                    continue;
                }
                if (o.asio_rss_n != 0) n = std::min(n, o.asio_rss_n);
            }
            rss_in_child(rs, o, impl, n);
        }

        const std::uint64_t n_spawn = scaled(o, 1'000'000);
        const std::uint64_t n_ready = scaled(o, 10'000'000);
        const std::uint64_t n_sleep = scaled(o, 100'000);
        const std::uint64_t n_alloc = scaled(o, 100'000);
        const std::int64_t sleep_sum = sum_of(sleep_plan(n_sleep));

        for (const auto& impl : impls) {
            const bool c = impl == "corio";
            if (!selected(o, "spawn_join_all", impl)) continue;
            timed(rs, o, "spawn_join_all", impl, n_spawn, triangular(n_spawn), [&](std::uint64_t n) {
#ifndef CORIO_BENCH_ASIO_ONLY
                if (c) return corio::run(corio_side::spawn_join_all(n));
#endif
                (void)c;
                return asio_side::run(asio_side::spawn_join_all(n));
            });
        }
        for (const auto& impl : impls) {
            const bool c = impl == "corio";
            if (!selected(o, "spawn_join_one", impl)) continue;
            timed(rs, o, "spawn_join_one", impl, n_spawn, triangular(n_spawn), [&](std::uint64_t n) {
#ifndef CORIO_BENCH_ASIO_ONLY
                if (c) return corio::run(corio_side::spawn_join_one(n));
#endif
                (void)c;
                return asio_side::run(asio_side::spawn_join_one(n));
            });
        }
        for (const auto& impl : impls) {
            const bool c = impl == "corio";
            if (!selected(o, "await_ready", impl)) continue;
            timed(rs, o, "await_ready", impl, n_ready, triangular(n_ready), [&](std::uint64_t n) {
#ifndef CORIO_BENCH_ASIO_ONLY
                if (c) return corio::run(corio_side::await_ready(n));
#endif
                (void)c;
                return asio_side::run(asio_side::await_ready(n));
            });
        }
        for (const auto& impl : impls) {
            const bool c = impl == "corio";
            if (!selected(o, "sleep_random", impl)) continue;
            timed(rs, o, "sleep_random", impl, n_sleep, sleep_sum, [&](std::uint64_t n) {
#ifndef CORIO_BENCH_ASIO_ONLY
                if (c) return corio::run(corio_side::sleep_random(n));
#endif
                (void)c;
                return asio_side::run(asio_side::sleep_random(n));
            });
        }
        for (const auto& impl : impls) {
            const bool c = impl == "corio";
            if (!selected(o, "allocs_spawn_join", impl)) continue;
            measurement m;
#ifndef CORIO_BENCH_ASIO_ONLY
            if (c) m = corio::run(corio_side::allocs_spawn_join(n_alloc));
#endif
            if (!c) m = asio_side::run(asio_side::allocs_spawn_join(n_alloc));
            expect_check("allocs_spawn_join", m.check, triangular(n_alloc));
            fmt::print(
                "# allocs_spawn_join  {:<6} n={:<9} operator new calls per spawn+join: {:.3f}; "
                "aligned_alloc calls: {:.4f}; mmap calls: {:.4f}; {:.1f} bytes\n",
                impl, n_alloc, m.per_op(m.new_calls), m.per_op(m.aligned_calls), m.per_op(m.mmap_calls),
                m.per_op(m.bytes));
            rs.add("allocs_spawn_join", impl, "n", static_cast<double>(n_alloc));
            rs.add("allocs_spawn_join", impl, "new_calls_per_op", m.per_op(m.new_calls));
            rs.add("allocs_spawn_join", impl, "aligned_alloc_calls_per_op", m.per_op(m.aligned_calls));
            rs.add("allocs_spawn_join", impl, "mmap_calls_per_op", m.per_op(m.mmap_calls));
            rs.add("allocs_spawn_join", impl, "alloc_bytes_per_op", m.per_op(m.bytes));
            rs.add("allocs_spawn_join", impl, "allocs_per_op", m.allocs_per_op());
            rs.add("allocs_spawn_join", impl, "ns_per_op", static_cast<double>(m.ns) / static_cast<double>(m.ops));
        }
    } catch (const std::exception& e) {
        fail(std::string("exception: ") + e.what());
    }
#ifndef CORIO_BENCH_ASIO_ONLY
    catch (const corio::cancelled_error&) {
        fail("unexpected corio::cancelled_error");
    }
#endif

    print_table(rs);
    return 0;
}
