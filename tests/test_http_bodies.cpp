// Response bodies of corio::http across the sizes the client receives them
// differently: a body of up to 64 KiB goes through a receive buffer the
// client reuses from request to request and is copied into the response when
// the request returns; a larger one is received into the response itself,
// and a body of unknown length (chunked) that grows past 64 KiB moves from
// the one to the other mid-transfer. Every body must arrive whole, whatever
// the size of the previous response on the same client, and a response the
// caller keeps must not share memory with a later transfer. Real time,
// against the local test server (127.0.0.1 only).
#include <cstddef>
#include <string>
#include <vector>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "support/corio_test.hpp"
#include "support/http_server.hpp"

using corio::task;
using corio_test::http_server;
using corio_test::with_http_server;
namespace http = corio::http;

namespace {

/// What /bytes/N serves: N bytes of a-z.
std::string letters(std::size_t n) {
    std::string s(n, 'a');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

/// What /chunked/N serves: "chunk-0;chunk-1;...".
std::string chunks(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "chunk-" + std::to_string(i) + ";";
    return s;
}

template <class F>
void run_http(F body) {
    corio::run(with_http_server(body));
}

}  // namespace

TEST_CASE("bodies below, at and above 64 KiB arrive whole whatever the previous body's size") {
    run_http([](http_server& srv) -> task<void> {
        http::client c;
        const std::vector<std::size_t> sizes{100000, 10, 70000, 65536, 65537, 5000, 0, 1, 65535, 200000, 3, 40000};
        for (std::size_t n : sizes) {
            http::response r = co_await c.get(srv.url("/bytes/" + std::to_string(n)));
            INFO("body of " << n << " bytes");
            REQUIRE(r.status == 200);
            REQUIRE(r.body.size() == n);
            CHECK(r.body == letters(n));
        }
        CHECK(c.live_transfers() == 0);
    });
}

TEST_CASE("a chunked body that grows past 64 KiB mid-transfer arrives whole, and a short one after it too") {
    run_http([](http_server& srv) -> task<void> {
        http::client c;
        http::response big = co_await c.get(srv.url("/chunked/9000"));  // ~86 KB, no Content-Length
        CHECK(big.headers.value_or("transfer-encoding", "") == "chunked");
        REQUIRE(big.body.size() == chunks(9000).size());
        CHECK(big.body == chunks(9000));
        http::response small = co_await c.get(srv.url("/chunked/3"));
        CHECK(small.body == "chunk-0;chunk-1;chunk-2;");
        http::response fixed = co_await c.get(srv.url("/bytes/300"));
        CHECK(fixed.body == letters(300));
    });
}

TEST_CASE("responses kept by the caller stay intact while later requests reuse the client's buffers") {
    run_http([](http_server& srv) -> task<void> {
        http::client c(http::options{.max_connections_per_host = 8});
        std::vector<std::size_t> sizes;
        for (std::size_t i = 0; i < 48; ++i) sizes.push_back(1 + (i * 7919) % 90000);
        std::vector<task<http::response>> first;
        for (std::size_t i = 0; i < sizes.size(); ++i)
            first.push_back(c.get(srv.url("/bytes/" + std::to_string(sizes[i]))));
        std::vector<http::response> kept = co_await corio::gather(std::move(first));
        std::vector<task<http::response>> second;
        for (std::size_t i = 0; i < sizes.size(); ++i)
            second.push_back(c.get(srv.url("/bytes/" + std::to_string(sizes[sizes.size() - 1 - i]))));
        std::vector<http::response> later = co_await corio::gather(std::move(second));
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            INFO("request " << i);
            CHECK(kept[i].body == letters(sizes[i]));
            CHECK(later[i].body == letters(sizes[sizes.size() - 1 - i]));
        }
        CHECK(c.live_transfers() == 0);
    });
}

TEST_CASE("a request cancelled mid-body leaves the client's next bodies whole") {
    run_http([](http_server& srv) -> task<void> {
        http::client c;
        auto cut = co_await corio::move_on_after(std::chrono::milliseconds(30), c.get(srv.url("/drip/1000/1")));
        CHECK(!cut.has_value());
        CHECK(c.active_transfers() == 0);
        http::response r = co_await c.get(srv.url("/bytes/2000"));
        CHECK(r.body == letters(2000));
        http::response r2 = co_await c.get(srv.url("/drip/20/0"));
        CHECK(r2.body == letters(20));
    });
}
