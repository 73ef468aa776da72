// soak_http: corio::http::client against a local server that misbehaves, for
// a bounded number of requests:
//
//   soak_http [--requests N] [--workers W] [--seed S]
//
// W workers (default 50) share N requests (default 100,000) to
// tests/support/http_server.hpp on the same loop. Each request is one of:
//   plain      GET /bytes/K (random K) or /hello; the body is checked
//   reset      the server resets mid-body: http::error
//   stall      the server stops mid-body: the request's timeout fires
//   drip       the body arrives a byte at a time: a short timeout fires,
//              a long one lets it finish
//   cancel     the request runs in a spawned task cancelled mid-transfer
//   move_on    move_on_after cuts a slow request short
//   race       a slow and a fast request race; the loser is cancelled
//   gather     three requests and a reset one: the others are cancelled
// Checks: every outcome is the expected one; the client's live transfers
// (requests whose transfer object still exists) never exceed what is in
// flight and are 0 at the end, as are its active transfers; the process has
// as many descriptors open after the loop is gone as before it existed. Under
// AddressSanitizer this is also the check that no libcurl callback touches a
// cancelled request (its transfer lives in the request's frame). Prints
// requests made per kind, peak RSS and descriptor counts; exit status 0 when
// every check passed.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "support/http_server.hpp"
#include "support/soak.hpp"

using corio::task;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

namespace {

enum kind : int { plain, reset, stall, drip, cancel, move_on, race, gather, kinds };
constexpr std::array<const char*, kinds> kind_names = {"plain",  "reset",   "stall", "drip",
                                                       "cancel", "move_on", "race",  "gather"};

struct config {
    long requests = 100'000;
    long workers = 50;
    long seed = 1;
};

struct stats {
    std::array<std::size_t, kinds> made{};  // requests issued, per kind
    std::size_t http_requests = 0;          // requests handed to the client
    std::size_t unexpected = 0;
    std::size_t max_live = 0, max_in_flight = 0, live_over_in_flight = 0;
    std::vector<std::string> notes;

    void note(std::string s) {
        ++unexpected;
        if (notes.size() < 10) notes.push_back(std::move(s));
    }
};

std::string letters(std::size_t n) {
    std::string b(n, 'a');
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<char>('a' + i % 26);
    return b;
}

class soak_client {
public:
    soak_client(corio::http::client& c, corio_test::http_server& srv, const config& cfg, stats& st)
        : c_(c), srv_(srv), cfg_(cfg), st_(st) {}

    task<void> run() {
        auto body = [this](corio::task_group& tg) -> task<void> {
            for (long w = 0; w < cfg_.workers; ++w) tg.spawn(worker(static_cast<std::uint64_t>(w)));
            co_return;
        };
        co_await corio::with_task_group(body);
    }

private:
    using rng_t = std::mt19937_64;

    /// A request made through the client, counted while it exists.
    task<corio::http::response> get(std::string path, corio::http::request_options o = {}) {
        ++st_.http_requests;
        ++in_flight_;
        st_.max_in_flight = std::max(st_.max_in_flight, in_flight_);
        struct leave {
            std::size_t& n;
            ~leave() { --n; }
        } guard{in_flight_};
        auto r = co_await c_.get(srv_.url(path), std::move(o));
        co_return r;
    }

    void watch_live() {
        std::size_t live = c_.live_transfers();
        st_.max_live = std::max(st_.max_live, live);
        if (live > in_flight_) ++st_.live_over_in_flight;
    }

    task<void> worker(std::uint64_t id) {
        rng_t rng(static_cast<std::uint64_t>(cfg_.seed) * 7'919 + id);
        while (next_ < cfg_.requests) {
            ++next_;
            int k = std::uniform_int_distribution<int>(0, 99)(rng);
            kind what = k < 60 ? plain : static_cast<kind>(1 + (k - 60) / 6);
            if (what >= kinds) what = plain;
            ++st_.made[what];
            try {
                co_await one(what, rng);
            } catch (const std::exception& e) {
                st_.note(std::string(kind_names[what]) + ": " + e.what());
            } catch (const corio::cancelled_error&) {
                st_.note(std::string(kind_names[what]) + ": cancelled_error escaped");
            }
            watch_live();
        }
    }

    task<void> one(kind what, rng_t& rng) {
        switch (what) {
            case plain: co_await do_plain(rng); break;
            case reset: co_await do_reset(); break;
            case stall: co_await do_stall(); break;
            case drip: co_await do_drip(rng); break;
            case cancel: co_await do_cancel(rng); break;
            case move_on: co_await do_move_on(rng); break;
            case race: co_await do_race(); break;
            case gather: co_await do_gather(); break;
            case kinds: break;
        }
    }

    void expect(bool ok, kind what, const std::string& why) {
        if (!ok) st_.note(std::string(kind_names[what]) + ": " + why);
    }

    task<void> do_plain(rng_t& rng) {
        std::size_t n = rng() % 4097;
        auto r = co_await get("/bytes/" + std::to_string(n));
        expect(r.status == 200 && r.body == letters(n), plain, "wrong response to /bytes/" + std::to_string(n));
    }

    task<void> do_reset() {
        bool failed = false;
        try {
            co_await get("/reset");
        } catch (const corio::http::error&) {
            failed = true;
        }
        expect(failed, reset, "a reset transfer did not fail with http::error");
    }

    task<void> do_stall() {
        corio::http::request_options o;
        o.timeout = 30ms;
        bool timed_out = false;
        try {
            co_await get("/stall", o);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        expect(timed_out, stall, "a stalled transfer did not time out");
    }

    task<void> do_drip(rng_t& rng) {
        const bool short_timeout = rng() % 2;
        corio::http::request_options o;
        o.timeout = short_timeout ? ms(10) : ms(10'000);
        bool timed_out = false;
        corio::http::response r;
        try {
            r = co_await get("/drip/8/5", o);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        if (short_timeout) expect(timed_out, drip, "a dripping transfer outlived a 10 ms timeout");
        else expect(!timed_out && r.body == "abcdefgh", drip, "a dripping transfer did not arrive whole");
    }

    task<void> do_cancel(rng_t& rng) {
        auto h = corio::spawn(get("/delay/200"));
        co_await corio::sleep(ms(rng() % 20));
        h.cancel();
        bool cancelled = false;
        try {
            co_await h;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        expect(cancelled, cancel, "a cancelled request did not end cancelled");
    }

    task<void> do_move_on(rng_t& rng) {
        auto r = co_await corio::move_on_after(ms(rng() % 10), get("/delay/200"));
        expect(!r.has_value(), move_on, "move_on_after did not cut a slow request short");
    }

    task<void> do_race() {
        // Which one wins is timing (a loaded or sanitized run can be slow):
        // the winner's response must be whole, the loser is cancelled.
        auto r = co_await corio::race(get("/delay/200"), get("/hello"));
        bool whole = r.index() == 1 ? std::get<1>(r).body == "hello world" : std::get<0>(r).body == "waited 200";
        expect(whole, race, "the race's winner returned a wrong response");
    }

    task<void> do_gather() {
        bool failed = false;
        try {
            co_await corio::gather(get("/delay/200"), get("/bytes/100"), get("/delay/300"), get("/reset"));
        } catch (const corio::http::error&) {
            failed = true;
        }
        expect(failed, gather, "gather did not rethrow the reset request's http::error");
    }

    corio::http::client& c_;
    corio_test::http_server& srv_;
    const config& cfg_;
    stats& st_;
    long next_ = 0;
    std::size_t in_flight_ = 0;
};

struct outcome {
    stats st;
    std::size_t live_at_end = 0, active_at_end = 0, server_open_at_end = 0, server_requests = 0;
    std::size_t fds_in_run = 0;
};

task<void> soak_main(const config& cfg, outcome& out) {
    corio::http::client client;
    auto body = [&](corio_test::http_server& srv) -> task<void> {
        soak_client load(client, srv, cfg, out.st);
        co_await load.run();
        out.live_at_end = client.live_transfers();
        out.active_at_end = client.active_transfers();
        out.fds_in_run = soak::open_fds();
        out.server_requests = srv.requests;
    };
    co_await corio_test::with_http_server(body);
}

}  // namespace

int main(int argc, char** argv) try {
    config cfg;
    cfg.requests = soak::flag(argc, argv, "--requests", cfg.requests);
    cfg.workers = soak::flag(argc, argv, "--workers", cfg.workers);
    cfg.seed = soak::flag(argc, argv, "--seed", cfg.seed);
    if (cfg.workers == 0) throw std::invalid_argument("soak_http: --workers must be positive");

    const std::size_t fds_before = soak::open_fds();
    const auto t0 = std::chrono::steady_clock::now();
    outcome out;
    corio::run([&]() -> task<void> { co_await corio::timeout(600s, soak_main(cfg, out)); },
               corio::run_options{.cancel_on_signals = {}});
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::size_t fds_after = soak::open_fds();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);

    const auto& st = out.st;
    std::printf("soak_http: %ld requests by %ld workers, seed %ld, %.1f s\n", cfg.requests, cfg.workers, cfg.seed,
                secs);
    std::printf("  by kind:");
    for (int k = 0; k < kinds; ++k)
        std::printf(" %s %zu", kind_names[static_cast<std::size_t>(k)], st.made[static_cast<std::size_t>(k)]);
    std::printf("\n  http requests made: %zu (server read %zu); most in flight %zu, most live transfers %zu\n",
                st.http_requests, out.server_requests, st.max_in_flight, st.max_live);
    std::printf("  at the end: %zu live transfers, %zu active\n", out.live_at_end, out.active_at_end);
    std::printf("  descriptors: %zu before, %zu with the client's connections, %zu after\n", fds_before, out.fds_in_run,
                fds_after);
    std::printf("  peak RSS %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
    for (const auto& n : st.notes) std::printf("  unexpected: %s\n", n.c_str());

    soak::verdict v;
    v.check(st.http_requests >= static_cast<std::size_t>(cfg.requests), "fewer requests made than asked");
    v.check(st.unexpected == 0, std::to_string(st.unexpected) + " unexpected outcomes");
    v.check(st.live_over_in_flight == 0, "more live transfers than requests in flight");
    v.check(out.live_at_end == 0, std::to_string(out.live_at_end) + " transfers leaked");
    v.check(out.active_at_end == 0, std::to_string(out.active_at_end) + " transfers left in the multi handle");
    v.check(fds_after == fds_before,
            "descriptors leaked: " + std::to_string(fds_before) + " before, " + std::to_string(fds_after) + " after");
    return v.finish("soak_http");
} catch (const std::exception& e) {
    std::fprintf(stderr, "soak_http: %s\n", e.what());
    return 2;
}
