// soak_echo: a real-I/O soak of corio. An echo server and a load client, both
// on one corio loop, over loopback, for a bounded time:
//
//   soak_echo [--seconds N] [--conns C] [--seed S] [--idle-ms MS]
//
// The server: a task group per connection (a reader that puts what it reads
// into a bounded queue, a writer that echoes the queue), an idle timeout on
// every read and write, and a graceful drain when it is cancelled: it stops
// accepting, lets every open connection finish (each is bounded by its idle
// timeout, the whole drain by a grace period after which the rest are
// cancelled through a cancellation_source).
//
// The client: C concurrent connection slots (default 500), each opening
// session after session until the time is up, of four kinds:
//   good      several messages of random size (1 B .. 64 KiB), each written
//             while its echo is read back (gather), compared byte for byte,
//             then a clean shutdown, reading until the server's EOF;
//   abrupt    part of a message, then a close (FIN) or a reset (RST), maybe
//             after reading part of the echo;
//   silent    a message or nothing, then silence: the server must close the
//             connection after its idle timeout;
//   deaf      writes and never reads: the server's write must time out.
// The server is cancelled (drain) while the last sessions are in flight.
//
// Checks: every byte a good session sent came back, in order; silent and deaf
// sessions were closed by the server within its timeout; no session hit an
// unexpected error; the drain needed no forced stop; the process has as many
// descriptors open after the loop is gone as before it existed; resident
// memory is flat after warm-up (the first half of the run): the mean of the
// last quarter's samples within 5% of the third quarter's (not checked under
// sanitizers, whose allocators hold freed memory back, nor in runs shorter
// than 20 s, whose warm-up is too short). Prints connections,
// bytes echoed and peak RSS; the exit status is 0 when every check passed.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <corio/corio.hpp>

#include "support/soak.hpp"

using asio::ip::tcp;
using corio::task;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

namespace {

struct config {
    long seconds = 20;
    long conns = 500;
    long seed = 1;
    ms idle{1000};     // the server's idle timeout per read and per write
    ms grace{10'000};  // the drain's bound
    ms client_timeout{15'000};
    bool trace = false;  // --trace 1: log slow sessions and the server side of every one not closed
};

// ------------------------------------------------------------------- trace

/// Milliseconds since the program started (trace lines only).
double since_start() {
    static const auto t0 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// The server's view of one connection, for the trace: what it is waiting for and since when.
struct conn_trace {
    double accepted = 0, read_since = 0, write_since = 0;
    const char* reader = "-";
    const char* writer = "-";
    std::uint64_t echoed = 0;
};
std::unordered_map<unsigned short, conn_trace*> live_connections;  // by the client's port

/// One trace line: a client session (its kind, port, start and outcome) and
/// what the server's side of it is doing now, if it is still open.
void trace_session(const char* kind, tcp::socket& s, double started, const char* outcome) {
    std::error_code ec;
    unsigned short port = s.local_endpoint(ec).port();
    double t = since_start();
    std::fprintf(stderr, "trace: %s session port %u started %.0f ms, %s at %.0f ms (%.0f ms later)", kind, port,
                 started, outcome, t, t - started);
    auto it = ec ? live_connections.end() : live_connections.find(port);
    if (it == live_connections.end()) {
        std::fprintf(stderr, "; server side: not open\n");
        return;
    }
    const conn_trace& c = *it->second;
    std::fprintf(stderr,
                 "; server side: accepted %.0f ms, reader %s (since %.0f ms), writer %s (since %.0f ms), "
                 "%llu bytes echoed\n",
                 c.accepted, c.reader, c.read_since, c.writer, c.write_since,
                 static_cast<unsigned long long>(c.echoed));
}

// ------------------------------------------------------------------ server

struct server_stats {
    std::size_t accepted = 0, open = 0, max_open = 0;
    std::size_t closed_eof = 0, closed_idle = 0, closed_error = 0;
    std::size_t open_at_drain = 0, forced_at_drain = 0;
    bool drained = false;  // the drain ran (closed the acceptor)
    std::uint64_t bytes_echoed = 0;
};

class echo_server {
public:
    echo_server(asio::io_context& ctx, const config& cfg)
        : acceptor_(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), cfg_(cfg) {
        acceptor_.listen(1024);
    }
    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
    server_stats stats;

    /// Accepts until cancelled, then drains.
    task<void> serve() {
        auto body = [this](corio::task_group& tg) -> task<void> {
            // Several accepts pending at once: one accept completes per
            // reactor turn, and a turn echoes hundreds of messages. The
            // cancellation ends them, and gather, cancelled while it waited,
            // throws cancelled_error once they are done even though each
            // returned: the drain must not sit after it on the normal path
            // (it did once, so the acceptor stayed open, unaccepted
            // connections sat in its backlog and a deaf one was "not closed").
            try {
                co_await corio::gather(accept_loop(tg), accept_loop(tg), accept_loop(tg), accept_loop(tg));
            } catch (const corio::cancelled_error&) {
            }
            drain_started_ = true;
            co_await corio::shield(drain());
            throw corio::cancelled_error{};
        };
        co_await corio::with_task_group(body);
    }

private:
    /// Accepts until the server is cancelled; returns then.
    task<void> accept_loop(corio::task_group& tg) {
        unsigned short port = 0;  // the last accepted client's (--trace)
        try {
            for (;;) {
                tcp::socket s = co_await acceptor_.async_accept(corio::use_task);
                if (cfg_.trace) {
                    std::error_code ec;
                    port = s.remote_endpoint(ec).port();
                }
                // A bounded send buffer: a peer that stops reading blocks the
                // writer soon (and its idle timeout ends the connection).
                s.set_option(asio::socket_base::send_buffer_size(64 * 1024));
                // Shielded: the group's cancellation does not reach a
                // connection; the drain ends it (hard_stop_) if it must.
                tg.spawn(corio::shield(corio::with_token(hard_stop_.token(), session(std::move(s)))));
            }
        } catch (const corio::cancelled_error&) {
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "soak_echo: accept failed: %s\n", e.what());
            throw;
        } catch (const corio::invalid_state_error&) {
            // An accept that completed in the turn the server was cancelled
            // returns its socket; the cancelled group refuses the spawn (the
            // connection is dropped: turned away).
            if (cfg_.trace)
                std::fprintf(stderr, "trace: port %u accepted as the drain began, dropped at %.0f ms\n", port,
                             since_start());
        }
    }

    task<void> drain() {
        acceptor_.close();
        stats.drained = true;
        if (cfg_.trace)
            std::fprintf(stderr, "trace: acceptor closed at %.0f ms, %zu open\n", since_start(), stats.open);
        stats.open_at_drain = stats.open;
        if (stats.open > 0) co_await corio::move_on_after(cfg_.grace, all_closed_.wait());
        stats.forced_at_drain = stats.open;
        if (stats.open > 0) hard_stop_.cancel();
    }

    /// Counts a connection open while it lives and closes its socket at the end, on every path.
    struct open_connection {
        echo_server& srv;
        tcp::socket& s;
        explicit open_connection(echo_server& e, tcp::socket& sock) : srv(e), s(sock) {
            ++srv.stats.accepted;
            srv.stats.max_open = std::max(srv.stats.max_open, ++srv.stats.open);
        }
        ~open_connection() {
            std::error_code ignored;
            s.shutdown(tcp::socket::shutdown_both, ignored);
            s.close(ignored);
            if (--srv.stats.open == 0 && srv.drain_started_) srv.all_closed_.set();
        }
    };

    /// Registers a connection's trace under the client's port while it lives (--trace).
    struct traced {
        unsigned short port = 0;
        conn_trace tr;
        traced(bool on, tcp::socket& s) {
            tr.accepted = since_start();
            if (!on) return;
            std::error_code ec;
            port = s.remote_endpoint(ec).port();
            if (!ec) live_connections[port] = &tr;
        }
        ~traced() {
            if (port) live_connections.erase(port);
        }
    };

    task<void> session(tcp::socket s) {
        open_connection guard(*this, s);
        traced t(cfg_.trace, s);
        corio::queue<std::string> q(4);  // outlives the group: the writer uses it
        auto body = [&](corio::task_group& tg) -> task<void> {
            tg.spawn(writer(s, q, t.tr));
            co_await reader(s, q, t.tr);
        };
        try {
            co_await corio::with_task_group(body);
            ++stats.closed_eof;
        } catch (const corio::exception_group& eg) {
            if (eg.contains<corio::timeout_error>()) ++stats.closed_idle;
            else ++stats.closed_error;  // reset by the peer, broken pipe
        }
    }

    task<void> reader(tcp::socket& s, corio::queue<std::string>& q, conn_trace& tr) {
        std::vector<char> buf(16 * 1024);
        for (;;) {
            std::size_t n = 0;
            try {
                tr.reader = "read";
                tr.read_since = since_start();
                n = co_await corio::timeout(cfg_.idle, s.async_read_some(asio::buffer(buf), corio::use_task));
            } catch (const std::system_error& e) {
                tr.reader = "ended";
                if (e.code() != asio::error::eof) throw;
                q.close();  // the writer echoes what is left, then ends
                co_return;
            }
            std::string chunk;
            chunk.reserve(buf.size());  // one block size for every chunk (see capacity_for)
            chunk.assign(buf.data(), n);
            tr.reader = "put";
            co_await q.put(std::move(chunk));
        }
    }

    task<void> writer(tcp::socket& s, corio::queue<std::string>& q, conn_trace& tr) {
        for (;;) {
            std::string chunk;
            try {
                tr.writer = "get";
                chunk = co_await q.get();
            } catch (const corio::queue_closed&) {
                tr.writer = "ended";
                s.shutdown(tcp::socket::shutdown_send);
                co_return;
            }
            tr.writer = "write";
            tr.write_since = since_start();
            co_await corio::timeout(cfg_.idle, asio::async_write(s, asio::buffer(chunk), corio::use_task));
            stats.bytes_echoed += chunk.size();
            tr.echoed += chunk.size();
        }
    }

    tcp::acceptor acceptor_;
    const config& cfg_;
    corio::cancellation_source hard_stop_;
    corio::event all_closed_;
    bool drain_started_ = false;
};

// ------------------------------------------------------------------ client

struct client_stats {
    std::size_t good = 0, abrupt = 0, silent = 0, deaf = 0;
    std::size_t turned_away = 0;  // connected as the drain began, closed before any echo
    std::size_t connect_failures = 0;
    std::uint64_t good_sent = 0, good_back = 0, messages = 0;
    std::size_t mismatches = 0, unexpected = 0, not_closed = 0, silent_not_closed = 0;
    std::vector<std::string> notes;  // the first few unexpected events

    void note(std::string s) {
        ++unexpected;
        if (notes.size() < 10) notes.push_back(std::move(s));
    }
};

class load_client {
public:
    load_client(tcp::endpoint ep, const config& cfg, corio::clock::time_point deadline)
        : ep_(ep), cfg_(cfg), deadline_(deadline) {}
    client_stats stats;

    task<void> run() {
        auto body = [this](corio::task_group& tg) -> task<void> {
            for (long i = 0; i < cfg_.conns; ++i) tg.spawn(slot(static_cast<std::uint64_t>(i)));
            co_return;
        };
        co_await corio::with_task_group(body);
    }

private:
    using rng_t = std::mt19937_64;

    static std::size_t message_size(rng_t& rng) {
        // Mostly small, sometimes up to 64 KiB: 2^[0,16] scaled by [1,2).
        int bits = std::uniform_int_distribution<int>(0, 15)(rng);
        std::size_t base = std::size_t{1} << bits;
        return base + std::uniform_int_distribution<std::size_t>(0, base - 1)(rng);
    }
    static std::string random_bytes(rng_t& rng, std::size_t n) {
        std::string s;
        fill_random(rng, s, n);
        return s;
    }
    /// Buffers get a power-of-two capacity: few distinct block sizes keep the
    /// allocator's free lists reusable, so memory settles sooner.
    static std::size_t capacity_for(std::size_t n) { return std::bit_ceil(std::max<std::size_t>(n, 64)); }
    static void fill_random(rng_t& rng, std::string& s, std::size_t n) {
        s.reserve(capacity_for(n));
        s.resize(n);
        for (auto& c : s) c = static_cast<char>(rng());
    }

    task<void> slot(std::uint64_t id) {
        rng_t rng(static_cast<std::uint64_t>(cfg_.seed) * 1'000'003 + id);
        while (corio::now() < deadline_) {
            tcp::socket s(corio::current_loop().context());
            int kind = std::uniform_int_distribution<int>(0, 99)(rng);
            if (kind >= 97) {  // deaf: a small receive buffer fills at once
                s.open(tcp::v4());
                s.set_option(asio::socket_base::receive_buffer_size(4096));
            }
            bool connected = false;
            try {
                co_await corio::timeout(cfg_.client_timeout, s.async_connect(ep_, corio::use_task));
                connected = true;
            } catch (const std::exception&) {
                ++stats.connect_failures;  // refused once the drain closed the acceptor
            }
            if (!connected) {
                co_await corio::sleep(10ms);
                continue;
            }
            const double started = since_start();
            const char* name = kind < 85 ? "good" : kind < 93 ? "abrupt" : kind < 97 ? "silent" : "deaf";
            if (kind < 85) co_await good(s, rng, started);
            else if (kind < 93) co_await abrupt(s, rng);
            else if (kind < 97) co_await silent(s, rng, started);
            else co_await deaf(s, started);
            // A session that took more than a few idle timeouts (--trace).
            if (cfg_.trace && since_start() - started > 3.0 * static_cast<double>(cfg_.idle.count()))
                trace_session(name, s, started, "slow, ended");
        }
    }

    /// Messages echoed and checked, then a clean close.
    task<void> good(tcp::socket& s, rng_t& rng, double started) {
        ++stats.good;
        int messages = std::uniform_int_distribution<int>(1, 40)(rng);
        std::uint64_t back = 0;
        try {
            for (int i = 0; i < messages; ++i) {
                std::string out = random_bytes(rng, message_size(rng));
                std::string in;
                in.reserve(capacity_for(out.size()));
                in.resize(out.size());
                co_await corio::timeout(cfg_.client_timeout,
                                        corio::gather(asio::async_write(s, asio::buffer(out), corio::use_task),
                                                      asio::async_read(s, asio::buffer(in), corio::use_task)));
                if (in != out) ++stats.mismatches;
                back += in.size();
                stats.good_sent += out.size();
                stats.good_back += in.size();
                ++stats.messages;
                if (rng() % 8 == 0) co_await corio::sleep(ms(rng() % 50));  // think, well under the idle timeout
            }
            s.shutdown(tcp::socket::shutdown_send);
            char c;
            try {
                co_await corio::timeout(cfg_.client_timeout, s.async_read_some(asio::buffer(&c, 1), corio::use_task));
                stats.note("good session: a byte after the echo");
            } catch (const std::system_error& e) {
                if (e.code() != asio::error::eof) throw;
            }
        } catch (const std::exception& e) {
            // A connection still in the accept backlog when the drain closed
            // the acceptor is reset before any echo: turned away, not lost.
            // A timeout is no such reset: the server never answered.
            if (cfg_.trace) trace_session("good", s, started, e.what());
            bool reset = dynamic_cast<const std::system_error*>(&e) != nullptr;
            if (reset && back == 0 && corio::now() >= deadline_) ++stats.turned_away;
            else stats.note(std::string("good session: ") + e.what());
        }
    }

    /// Part of a message, maybe part of its echo, then FIN or RST.
    task<void> abrupt(tcp::socket& s, rng_t& rng) {
        ++stats.abrupt;
        std::string out = random_bytes(rng, message_size(rng) + 2);
        std::size_t part = 1 + rng() % (out.size() - 1);
        try {
            co_await asio::async_write(s, asio::buffer(out.data(), part), corio::use_task);
            if (rng() % 2) {
                std::string in(1 + rng() % part, '\0');
                co_await corio::timeout(cfg_.client_timeout, asio::async_read(s, asio::buffer(in), corio::use_task));
                if (in != out.substr(0, in.size())) ++stats.mismatches;
            }
        } catch (const std::exception&) {
            // the drain may have turned it away; it was leaving anyway
        }
        std::error_code ignored;
        if (rng() % 2) s.set_option(asio::socket_base::linger(true, 0), ignored);  // close() sends RST
        s.close(ignored);
    }

    /// Goes silent: the server must close the connection after its idle timeout.
    task<void> silent(tcp::socket& s, rng_t& rng, double started) {
        ++stats.silent;
        std::string out = random_bytes(rng, 1 + rng() % 512);
        try {
            if (rng() % 2) {
                co_await asio::async_write(s, asio::buffer(out), corio::use_task);
                std::string in(out.size(), '\0');
                co_await asio::async_read(s, asio::buffer(in), corio::use_task);
                if (in != out) ++stats.mismatches;
            }
            char c;
            co_await corio::timeout(cfg_.client_timeout, s.async_read_some(asio::buffer(&c, 1), corio::use_task));
            stats.note("silent session: the server sent a byte");
        } catch (const corio::timeout_error&) {
            if (cfg_.trace) trace_session("silent", s, started, "not closed");
            ++stats.not_closed;
            ++stats.silent_not_closed;
        } catch (const std::exception&) {
            // EOF or reset: the server closed it
        }
    }

    /// Writes without reading: the server's writer must give up.
    task<void> deaf(tcp::socket& s, double started) {
        ++stats.deaf;
        try {
            co_await corio::timeout(cfg_.client_timeout, write_forever(s));
        } catch (const corio::timeout_error&) {
            if (cfg_.trace) trace_session("deaf", s, started, "not closed");
            ++stats.not_closed;
        } catch (const std::exception&) {
            // reset or broken pipe: the server closed it
        }
    }
    static task<void> write_forever(tcp::socket& s) {
        std::string junk(256 * 1024, 'x');
        for (;;) co_await asio::async_write(s, asio::buffer(junk), corio::use_task);
    }

    tcp::endpoint ep_;
    const config& cfg_;
    corio::clock::time_point deadline_;
};

// ------------------------------------------------------------------- main

struct memory_log {
    std::vector<std::size_t> samples;  // every 250 ms
    std::size_t warmup_samples = 0;    // taken during warm-up (the first half)
    std::size_t deadline_samples = 0;  // taken before the load stopped
};

task<void> sample_memory(memory_log& log) {
    for (;;) {
        log.samples.push_back(soak::rss_bytes());
        co_await corio::sleep(250ms);
    }
}

struct outcome {
    server_stats server;
    client_stats client;
    memory_log memory;
    bool server_ended_cancelled = false;
};

task<void> soak_main(const config& cfg, outcome& out) {
    auto& ctx = corio::current_loop().context();
    echo_server server(ctx, cfg);
    const auto start = corio::now();
    const auto deadline = start + std::chrono::seconds(cfg.seconds);
    load_client client(server.endpoint(), cfg, deadline);
    auto srv = corio::spawn(server.serve(), "echo_server");
    auto load = corio::spawn(client.run(), "load_client");
    auto mem = corio::spawn(sample_memory(out.memory), "sample_memory");
    const auto warmup = (deadline - start) / 2;
    co_await corio::sleep_until(start + warmup);
    out.memory.warmup_samples = out.memory.samples.size();
    co_await corio::sleep_until(deadline);
    out.memory.deadline_samples = out.memory.samples.size();
    srv.cancel();  // the drain begins while the last sessions are in flight
    if (cfg.trace) std::fprintf(stderr, "trace: deadline at %.0f ms, drain begins\n", since_start());
    co_await load;
    if (cfg.trace) std::fprintf(stderr, "trace: load client done at %.0f ms\n", since_start());
    try {
        co_await srv;
    } catch (const corio::cancelled_error&) {
        out.server_ended_cancelled = true;
    }
    mem.cancel();
    try {
        co_await mem;
    } catch (const corio::cancelled_error&) {
    }
    out.server = server.stats;
    out.client = client.stats;
}

}  // namespace

int main(int argc, char** argv) try {
    config cfg;
    cfg.seconds = soak::flag(argc, argv, "--seconds", cfg.seconds);
    cfg.conns = soak::flag(argc, argv, "--conns", cfg.conns);
    cfg.seed = soak::flag(argc, argv, "--seed", cfg.seed);
    cfg.idle = ms(soak::flag(argc, argv, "--idle-ms", cfg.idle.count()));
    cfg.trace = soak::flag(argc, argv, "--trace", 0) != 0;
    if (cfg.conns == 0 || cfg.idle.count() == 0)
        throw std::invalid_argument("soak_echo: --conns and --idle-ms must be positive");

    const std::size_t fds_before = soak::open_fds();
    outcome out;
    corio::run(
        [&]() -> task<void> { co_await corio::timeout(std::chrono::seconds(cfg.seconds) + 60s, soak_main(cfg, out)); },
        corio::run_options{.cancel_on_signals = {}});
    const std::size_t fds_after = soak::open_fds();

    const auto& s = out.server;
    const auto& c = out.client;
    const auto& m = out.memory.samples;
    std::size_t peak = m.empty() ? 0 : *std::max_element(m.begin(), m.end());
    // Flat after warm-up: the samples from warm-up to the deadline, split in
    // two halves; the second half's mean within 5% of the first's (a peak is
    // noisy: the extreme of many connections' buffer sizes).
    const std::size_t w = out.memory.warmup_samples, d = std::max(out.memory.deadline_samples, w);
    auto mean = [&](std::size_t from, std::size_t to) {
        double sum = 0;
        for (std::size_t i = from; i < to; ++i) sum += static_cast<double>(m[i]);
        return to > from ? sum / static_cast<double>(to - from) : 0.0;
    };
    const double first_half = mean(w, w + (d - w) / 2), second_half = mean(w + (d - w) / 2, d);
    std::printf("soak_echo: %ld s, %ld slots, seed %ld, idle timeout %lld ms\n", cfg.seconds, cfg.conns, cfg.seed,
                static_cast<long long>(cfg.idle.count()));
    std::printf("  connections: %zu accepted, %zu open at most; closed: %zu eof, %zu idle, %zu error\n", s.accepted,
                s.max_open, s.closed_eof, s.closed_idle, s.closed_error);
    std::printf(
        "  sessions: %zu good (%llu messages), %zu abrupt, %zu silent, %zu deaf; %zu turned away at drain, "
        "%zu connects refused\n",
        c.good, static_cast<unsigned long long>(c.messages), c.abrupt, c.silent, c.deaf, c.turned_away,
        c.connect_failures);
    std::printf("  bytes echoed: %llu (good sessions: %llu sent, %llu back)\n",
                static_cast<unsigned long long>(s.bytes_echoed), static_cast<unsigned long long>(c.good_sent),
                static_cast<unsigned long long>(c.good_back));
    std::printf("  drain: %zu connections open, %zu forced\n", s.open_at_drain, s.forced_at_drain);
    std::printf("  descriptors: %zu before, %zu after\n", fds_before, fds_after);
    std::printf("  RSS: peak %.1f MiB; after warm-up, mean %.1f MiB then %.1f MiB (%+.1f%%; %zu samples)\n",
                static_cast<double>(peak) / 1048576.0, first_half / 1048576.0, second_half / 1048576.0,
                first_half > 0 ? 100.0 * (second_half / first_half - 1) : 0.0, m.size());
    for (const auto& n : c.notes) std::printf("  unexpected: %s\n", n.c_str());
    if (soak::flag(argc, argv, "--verbose", 0))
        for (std::size_t i = 0; i < m.size(); ++i)
            std::printf("  rss[%zu] %.1f MiB\n", i, static_cast<double>(m[i]) / 1048576.0);

    soak::verdict v;
    v.check(c.good > 0 && c.good_sent > 0, "no good session ran");
    v.check(c.good_sent == c.good_back, "a good session's bytes did not all come back");
    v.check(c.mismatches == 0, std::to_string(c.mismatches) + " echoes differed from what was sent");
    v.check(c.unexpected == 0, std::to_string(c.unexpected) + " unexpected client events");
    v.check(c.not_closed == 0, std::to_string(c.not_closed) + " silent or deaf sessions (" +
                                   std::to_string(c.silent_not_closed) + " silent) were not closed by the server");
    v.check(s.closed_idle > 0, "no connection was closed for idleness");
    v.check(out.server_ended_cancelled, "the server did not end cancelled");
    v.check(s.drained, "the server's drain never ran (its acceptor stayed open)");
    v.check(s.forced_at_drain == 0, "the drain had to force connections closed");
    v.check(s.open == 0, "connections still open at the end");
    v.check(fds_after == fds_before,
            "descriptors leaked: " + std::to_string(fds_before) + " before, " + std::to_string(fds_after) + " after");
    // Judged after a warm-up of 10 s or more: shorter runs (10 s under load)
    // have not reached every connection's largest buffers yet and grow by
    // up to ~7% with no leak; they print the figures without judging them.
    if (!soak::sanitized && first_half > 0 && cfg.seconds >= 20)
        v.check(second_half <= 1.05 * first_half, "resident memory grew more than 5% after warm-up");
    return v.finish("soak_echo");
} catch (const std::exception& e) {
    std::fprintf(stderr, "soak_echo: %s\n", e.what());
    return 2;
}
