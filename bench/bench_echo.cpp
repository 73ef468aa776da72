// bench_echo: corio on real I/O and awaiting Asio coroutines, against raw
// Asio in the same binary and the same run.
//
// Workloads:
//
//   echo             TCP echo over loopback: --conns connections (default 100)
//                    x --rounds round trips (default 10,000) of 64 bytes. The
//                    server runs on its own thread, written twice:
//                    corio: corio::run(main); main accepts the connections with
//                      corio::use_task and spawns one task per connection:
//                      `n = co_await sock.async_read_some(buf, use_task);
//                       co_await asio::async_write(sock, buffer(buf, n), use_task);`
//                    asio: the same with asio::co_spawn, asio::awaitable and
//                      asio::use_awaitable on an io_context (concurrency hint 1).
//                    The client is the same for both: raw Asio callbacks on the
//                    main thread (its own io_context), each connection writes 64
//                    bytes, reads the 64 back, and records the round trip with
//                    steady_clock. Throughput = round trips / wall time (from
//                    all connected to all done); p50 / p99 round-trip latency;
//                    the server thread's CPU time per round trip
//                    (CLOCK_THREAD_CPUTIME_ID), which a busy machine disturbs
//                    less than throughput.
//   await_asio_ready N = 2,000,000 awaits of an asio::awaitable<int> that
//                    completes without suspending (`co_return i;`):
//                    corio: from a corio::task (`sum += co_await child(i);`);
//                    asio: from an asio::awaitable (co_spawned).
//   await_asio_post  N = 200,000 awaits of an asio::awaitable<int> that
//                    suspends once (`co_await asio::post(ex, use_awaitable)`),
//                    from a corio::task vs from an asio::awaitable. The raw Asio
//                    io_context gets an idle steady_timer, so that it pays the
//                    epoll_wait per turn that corio's loop (which owns a timer)
//                    and any program with a socket pays.
//
// Flags: --quick (rounds / 10, N / 10), --conns=C, --rounds=R, --reps=K
// (default 5: echo runs K pairs corio + asio, alternating which goes first,
// and reports medians, of throughput, of the pair ratios, of p50/p99 and of
// the server's CPU time per round trip; the await rows report the median of
// K after a warm-up), --only=<substring of workload>, --impl=corio|asio (echo
// with that server only, once: for callgrind).
//
// Output: a table plus lines `RESULT <workload> <impl> <metric> <value>`
// (bench/report.py reads them).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <time.h>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/core.h>

#include <corio/corio.hpp>

#include "common.hpp"

using asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t message_size = 64;

struct options {
    int conns = 100;
    int rounds = 10'000;
    int reps = 5;
    std::uint64_t ready_n = 2'000'000;
    std::uint64_t post_n = 200'000;
    std::string only;
    std::string impl;  // echo: "corio" or "asio" runs only that server (for profiling)
};

// ------------------------------------------------------------ echo servers

corio::task<void> corio_session(tcp::socket sock) {
    std::array<char, message_size> buf;
    try {
        for (;;) {
            std::size_t n = co_await sock.async_read_some(asio::buffer(buf), corio::use_task);
            co_await asio::async_write(sock, asio::buffer(buf.data(), n), corio::use_task);
        }
    } catch (const std::system_error&) {
        // EOF: the client is done
    }
}

corio::task<void> corio_server(tcp::acceptor& acceptor, int conns) {
    std::vector<corio::join_handle<void>> sessions;
    sessions.reserve(static_cast<std::size_t>(conns));
    for (int i = 0; i < conns; ++i) {
        tcp::socket s = co_await acceptor.async_accept(corio::use_task);
        s.set_option(tcp::no_delay(true));
        sessions.push_back(corio::spawn(corio_session(std::move(s))));
    }
    for (auto& h : sessions) co_await h;
}

asio::awaitable<void> asio_session(tcp::socket sock) {
    std::array<char, message_size> buf;
    try {
        for (;;) {
            std::size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(sock, asio::buffer(buf.data(), n), asio::use_awaitable);
        }
    } catch (const std::system_error&) {
    }
}

asio::awaitable<void> asio_server(tcp::acceptor& acceptor, int conns) {
    for (int i = 0; i < conns; ++i) {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        s.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), asio_session(std::move(s)), asio::detached);
    }
}

// ------------------------------------------------------------ echo client

/// One client connection: write 64 bytes, read 64 back, `rounds` times.
struct client_conn {
    tcp::socket sock;
    std::array<char, message_size> out{};
    std::array<char, message_size> in{};
    int left = 0;
    steady::time_point sent{};
    std::vector<std::uint32_t>* lat = nullptr;
    std::function<void()> on_done;

    explicit client_conn(asio::io_context& ctx) : sock(ctx) {}

    void send() {
        sent = steady::now();
        asio::async_write(sock, asio::buffer(out), [this](std::error_code ec, std::size_t) {
            if (ec) return fail(ec);
            asio::async_read(sock, asio::buffer(in), [this](std::error_code ec2, std::size_t) {
                if (ec2) return fail(ec2);
                lat->push_back(static_cast<std::uint32_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - sent).count()));
                if (--left == 0) {
                    sock.shutdown(tcp::socket::shutdown_send);
                    on_done();
                } else {
                    send();
                }
            });
        });
    }
    void fail(std::error_code ec) {
        fmt::print(stderr, "client error: {}\n", ec.message());
        std::exit(1);
    }
};

struct echo_result {
    double round_trips_per_s = 0;
    double p50_us = 0, p99_us = 0;
    double server_cpu_ns = 0;  // server thread CPU time per round trip
};

using corio_bench::thread_cpu_ns;

/// Drives `conns` connections against `port`; the server runs elsewhere.
echo_result run_client(unsigned short port, const options& o) {
    asio::io_context ctx(1);
    tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
    std::vector<std::unique_ptr<client_conn>> conns;
    std::vector<std::uint32_t> lat;
    lat.reserve(static_cast<std::size_t>(o.conns) * static_cast<std::size_t>(o.rounds));
    int done = 0;
    for (int i = 0; i < o.conns; ++i) {
        auto c = std::make_unique<client_conn>(ctx);
        c->sock.connect(ep);
        c->sock.set_option(tcp::no_delay(true));
        c->left = o.rounds;
        c->lat = &lat;
        std::memset(c->out.data(), 'a' + i % 26, message_size);
        c->on_done = [&done] { ++done; };
        conns.push_back(std::move(c));
    }
    auto t0 = steady::now();
    for (auto& c : conns) c->send();
    ctx.run();
    double secs = std::chrono::duration<double>(steady::now() - t0).count();
    if (done != o.conns) {
        fmt::print(stderr, "client: {} of {} connections finished\n", done, o.conns);
        std::exit(1);
    }
    std::sort(lat.begin(), lat.end());
    echo_result r;
    r.round_trips_per_s = static_cast<double>(lat.size()) / secs;
    r.p50_us = lat[lat.size() / 2] / 1000.0;
    r.p99_us = lat[lat.size() * 99 / 100] / 1000.0;
    return r;
}

echo_result echo_corio(const options& o) {
    corio::event_loop loop;
    tcp::acceptor acceptor(loop.context(), tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    unsigned short port = acceptor.local_endpoint().port();
    double cpu = 0;
    std::thread server([&] {
        double c0 = thread_cpu_ns();
        loop.run_until_complete(corio_server(acceptor, o.conns));
        cpu = thread_cpu_ns() - c0;
    });
    echo_result r = run_client(port, o);
    server.join();
    r.server_cpu_ns = cpu / (static_cast<double>(o.conns) * o.rounds);
    return r;
}

echo_result echo_asio(const options& o) {
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    unsigned short port = acceptor.local_endpoint().port();
    asio::co_spawn(ctx, asio_server(acceptor, o.conns), asio::detached);
    double cpu = 0;
    std::thread server([&] {
        double c0 = thread_cpu_ns();
        ctx.run();
        cpu = thread_cpu_ns() - c0;
    });
    echo_result r = run_client(port, o);
    server.join();
    r.server_cpu_ns = cpu / (static_cast<double>(o.conns) * o.rounds);
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// One server alone (--impl=corio|asio): for callgrind / perf of one side.
void bench_echo_one(const options& o) {
    bool corio_side = o.impl == "corio";
    echo_result r = corio_side ? echo_corio(o) : echo_asio(o);
    fmt::print("echo {}: {:.0f} rt/s (p50 {:.1f} us, p99 {:.1f} us, server cpu {:.0f} ns/rt)\n", o.impl,
               r.round_trips_per_s, r.p50_us, r.p99_us, r.server_cpu_ns);
}

/// Runs the two servers in pairs, alternating which goes first (a machine
/// that gets busier or quieter during a pair favours neither side), and
/// reports medians: of throughput, of the per-pair ratios, of latency and of
/// the server thread's CPU time per round trip (the figure least disturbed
/// by other processes on a shared box).
void bench_echo(const options& o) {
    if (!o.impl.empty()) return bench_echo_one(o);
    fmt::print("echo: {} connections x {} round trips of {} bytes, {} pairs of runs, alternating order\n", o.conns,
               o.rounds, message_size, o.reps);
    std::vector<double> tc, ta, ratio, cpuc, cpua, cpu_ratio, p50c, p50a, p99c, p99a;
    for (int r = 0; r < o.reps; ++r) {
        echo_result c, a;
        if (r % 2 == 0) {
            c = echo_corio(o);
            a = echo_asio(o);
        } else {
            a = echo_asio(o);
            c = echo_corio(o);
        }
        fmt::print(
            "  pair {} ({} first): corio {:.0f} rt/s (p50 {:.1f} us, p99 {:.1f} us, cpu {:.0f} ns/rt) | "
            "asio {:.0f} rt/s (p50 {:.1f} us, p99 {:.1f} us, cpu {:.0f} ns/rt) | ratio {:.3f}\n",
            r + 1, r % 2 == 0 ? "corio" : "asio", c.round_trips_per_s, c.p50_us, c.p99_us, c.server_cpu_ns,
            a.round_trips_per_s, a.p50_us, a.p99_us, a.server_cpu_ns, c.round_trips_per_s / a.round_trips_per_s);
        std::fflush(stdout);
        tc.push_back(c.round_trips_per_s);
        ta.push_back(a.round_trips_per_s);
        ratio.push_back(c.round_trips_per_s / a.round_trips_per_s);
        cpuc.push_back(c.server_cpu_ns);
        cpua.push_back(a.server_cpu_ns);
        cpu_ratio.push_back(c.server_cpu_ns / a.server_cpu_ns);
        p50c.push_back(c.p50_us);
        p50a.push_back(a.p50_us);
        p99c.push_back(c.p99_us);
        p99a.push_back(a.p99_us);
    }
    fmt::print(
        "  median: corio {:.0f} rt/s (p50 {:.1f} us, p99 {:.1f} us), asio {:.0f} rt/s (p50 {:.1f} us, p99 {:.1f} us)\n",
        median(tc), median(p50c), median(p99c), median(ta), median(p50a), median(p99a));
    fmt::print("  corio/asio throughput: median of pair ratios {:.3f}, best vs best {:.3f}\n", median(ratio),
               *std::max_element(tc.begin(), tc.end()) / *std::max_element(ta.begin(), ta.end()));
    fmt::print("  server CPU per round trip: corio {:.0f} ns, asio {:.0f} ns (medians), corio/asio median {:.3f}\n",
               median(cpuc), median(cpua), median(cpu_ratio));
    for (auto [impl, t, p50, p99, cpu] :
         {std::tuple{"corio", &tc, &p50c, &p99c, &cpuc}, std::tuple{"asio", &ta, &p50a, &p99a, &cpua}}) {
        fmt::print("RESULT echo {} round_trips_per_s {:.0f}\n", impl, median(*t));
        fmt::print("RESULT echo {} p50_us {:.2f}\n", impl, median(*p50));
        fmt::print("RESULT echo {} p99_us {:.2f}\n", impl, median(*p99));
        fmt::print("RESULT echo {} server_cpu_ns_per_rt {:.1f}\n", impl, median(*cpu));
    }
    fmt::print("RESULT echo corio throughput_ratio_vs_asio {:.3f}\n", median(ratio));
    fmt::print("RESULT echo corio server_cpu_ratio_vs_asio {:.3f}\n", median(cpu_ratio));
}

// ------------------------------------------------- awaiting asio::awaitable

asio::awaitable<int> ready_child(int i) { co_return i; }

asio::awaitable<int> posted_child(int i) {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return i;
}

template <bool Post>
corio::task<std::int64_t> corio_awaits(std::uint64_t n) {
    std::int64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        if constexpr (Post) sum += co_await posted_child(static_cast<int>(i & 0xff));
        else sum += co_await ready_child(static_cast<int>(i & 0xff));
    }
    co_return sum;
}

template <bool Post>
asio::awaitable<void> asio_awaits(std::uint64_t n, std::int64_t& sum) {
    for (std::uint64_t i = 0; i < n; ++i) {
        if constexpr (Post) sum += co_await posted_child(static_cast<int>(i & 0xff));
        else sum += co_await ready_child(static_cast<int>(i & 0xff));
    }
}

template <bool Post>
double time_corio_awaits(std::uint64_t n, std::int64_t& check) {
    corio::event_loop loop;
    auto t0 = steady::now();
    check = loop.run_until_complete(corio_awaits<Post>(n));
    return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / static_cast<double>(n);
}

template <bool Post>
double time_asio_awaits(std::uint64_t n, std::int64_t& check) {
    asio::io_context ctx(1);
    asio::steady_timer idle(ctx);  // a reactor, like corio's loop (see the header)
    check = 0;
    asio::co_spawn(ctx, asio_awaits<Post>(n, check), asio::detached);
    auto t0 = steady::now();
    ctx.run();
    return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / static_cast<double>(n);
}

template <bool Post>
void bench_await(const char* name, std::uint64_t n, int reps) {
    std::vector<double> c, a;
    std::int64_t cc = 0, ac = 0;
    (void)time_corio_awaits<Post>(n / 10, cc);
    (void)time_asio_awaits<Post>(n / 10, ac);
    for (int r = 0; r < reps; ++r) {
        c.push_back(time_corio_awaits<Post>(n, cc));
        a.push_back(time_asio_awaits<Post>(n, ac));
    }
    if (cc != ac) {
        fmt::print(stderr, "{}: checksums differ ({} vs {})\n", name, cc, ac);
        std::exit(1);
    }
    auto [cm, cmin] = corio_bench::summarize(c);
    auto [am, amin] = corio_bench::summarize(a);
    fmt::print(
        "{}: N = {}, median of {}: corio {:.1f} ns/op (min {:.1f}), asio {:.1f} ns/op (min {:.1f}), corio/asio "
        "{:.2f}\n",
        name, n, reps, cm, cmin, am, amin, cm / am);
    corio_bench::result(name, "corio", "ns_per_op", cm, 2);
    corio_bench::result(name, "asio", "ns_per_op", am, 2);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            o.rounds /= 10;
            o.ready_n /= 10;
            o.post_n /= 10;
        } else if (a.rfind("--conns=", 0) == 0) {
            o.conns = std::atoi(a.c_str() + 8);
        } else if (a.rfind("--rounds=", 0) == 0) {
            o.rounds = std::atoi(a.c_str() + 9);
        } else if (a.rfind("--reps=", 0) == 0) {
            o.reps = std::atoi(a.c_str() + 7);
        } else if (a.rfind("--impl=", 0) == 0) {
            o.impl = a.substr(7);
        } else if (a.rfind("--only=", 0) == 0) {
            o.only = a.substr(7);
        } else {
            fmt::print(stderr,
                       "usage: bench_echo [--quick] [--conns=C] [--rounds=R] [--reps=K] [--only=workload] "
                       "[--impl=corio|asio]\n");
            return 2;
        }
    }
    if (o.conns <= 0 || o.rounds <= 0 || o.reps <= 0) {
        fmt::print(stderr, "bench_echo: --conns, --rounds and --reps must be positive\n");
        return 2;
    }
    auto want = [&](const char* w) { return o.only.empty() || std::string(w).find(o.only) != std::string::npos; };
    if (want("await_asio_ready")) bench_await<false>("await_asio_ready", o.ready_n, o.reps);
    if (want("await_asio_post")) bench_await<true>("await_asio_post", o.post_n, o.reps);
    if (want("echo")) bench_echo(o);
    return 0;
}
