// Lifetime abuse for corio::http: a loop destroyed while a task is in the
// middle of an HTTP transfer, with the client outliving the loop. The
// transfer lives in the request's frame; destroying the frame must take it
// out of libcurl's multi handle, so that nothing libcurl or Asio does later
// (the server's data arriving, the client's destruction) touches it.
#include <optional>

#include <asio/io_context.hpp>

#include <corio/corio.hpp>
#include <corio/http.hpp>

#include "support/corio_test.hpp"
#include "support/http_server.hpp"

using corio::task;
using corio_test::set_on_exit;
using namespace std::chrono_literals;

TEST_CASE("a loop destroyed mid-transfer removes the transfer; the client outliving the loop is destroyed cleanly") {
    asio::io_context ctx;
    corio_test::http_server srv(ctx);
    std::optional<corio::http::client> client;
    bool frame_exit = false;
    bool got_response = false;
    {
        corio::event_loop loop(ctx);
        client.emplace(loop, corio::http::options{});
        loop.spawn(srv.serve());
        loop.spawn([&]() -> task<void> {
            set_on_exit g{frame_exit};
            auto r = co_await client->get(srv.url("/drip/1000/5"));
            got_response = true;
        });
        for (int i = 0; i < 2000 && srv.requests == 0; ++i) ctx.run_one_for(5ms);
        REQUIRE(srv.requests == 1);
        for (int i = 0; i < 4; ++i) ctx.run_one_for(5ms);  // a few bytes of the body arrive
        REQUIRE(client->active_transfers() == 1);
        REQUIRE(client->live_transfers() == 1);
    }
    CHECK(frame_exit);
    CHECK_FALSE(got_response);
    CHECK(client->active_transfers() == 0);
    CHECK(client->live_transfers() == 0);
    ctx.run_for(30ms);  // whatever is still queued finds nothing
    client.reset();
    ctx.run_for(10ms);
    CHECK_FALSE(got_response);
}
