// Tests for corio/result.hpp: result<T> and result<void> hold a value or an
// exception_ptr; value() rethrows; cancelled() recognises cancelled_error.
#include <corio/result.hpp>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "support/corio_test.hpp"

using corio::result;

TEST_CASE("result<T>: a value") {
    result<int> r(7);
    CHECK(r.has_value());
    CHECK(static_cast<bool>(r));
    CHECK(r.value() == 7);
    CHECK(r.error() == nullptr);
    CHECK_FALSE(r.cancelled());

    r.value() = 8;  // value() gives access to the stored value
    CHECK(r.value() == 8);

    const result<std::string> s(std::string("text"));
    CHECK(s.value() == "text");

    const result<int> d;  // default: a value-initialised T
    CHECK(d.has_value());
    CHECK(d.value() == 0);
}

TEST_CASE("result<T>: a move-only value can be moved out") {
    result<std::unique_ptr<int>> r(std::make_unique<int>(5));
    std::unique_ptr<int> p = std::move(r).value();
    REQUIRE(p);
    CHECK(*p == 5);
}

TEST_CASE("result<T>: an error; value() rethrows it") {
    auto e = std::make_exception_ptr(std::invalid_argument("bad"));
    result<int> r(e);
    CHECK_FALSE(r.has_value());
    CHECK_FALSE(static_cast<bool>(r));
    CHECK(r.error() == e);
    CHECK_FALSE(r.cancelled());
    std::string message;
    try {
        (void)r.value();
    } catch (const std::invalid_argument& ex) {
        message = ex.what();
    }
    CHECK(message == "bad");
    CHECK_THROWS_AS(std::move(r).value(), std::invalid_argument);
}

TEST_CASE("result<T>: cancelled() is true only for a cancelled_error") {
    result<int> c(std::make_exception_ptr(corio::cancelled_error{}));
    CHECK_FALSE(c.has_value());
    CHECK(c.cancelled());
    CHECK_THROWS_AS(c.value(), corio::cancelled_error);

    result<int> t(std::make_exception_ptr(corio::timeout_error{}));
    CHECK_FALSE(t.cancelled());
    CHECK(result<int>::is_cancelled(c.error()));
    CHECK_FALSE(result<int>::is_cancelled(t.error()));
    CHECK_FALSE(result<int>::is_cancelled(nullptr));
}

TEST_CASE("result<void>: success, error, cancelled") {
    result<void> ok;
    CHECK(ok.has_value());
    CHECK(static_cast<bool>(ok));
    CHECK(ok.error() == nullptr);
    CHECK_FALSE(ok.cancelled());
    CHECK_NOTHROW(ok.value());

    auto e = std::make_exception_ptr(std::out_of_range("range"));
    result<void> bad(e);
    CHECK_FALSE(bad.has_value());
    CHECK_FALSE(static_cast<bool>(bad));
    CHECK(bad.error() == e);
    CHECK_FALSE(bad.cancelled());
    CHECK_THROWS_AS(bad.value(), std::out_of_range);

    result<void> c(std::make_exception_ptr(corio::cancelled_error{}));
    CHECK_FALSE(c.has_value());
    CHECK(c.cancelled());
    CHECK_THROWS_AS(c.value(), corio::cancelled_error);
}

TEST_CASE("result: error_message() gives the error's text without the caller rethrowing") {
    CHECK(corio::result<int>(7).error_message().empty());
    CHECK(corio::result<void>().error_message().empty());
    CHECK(corio::result<int>(std::make_exception_ptr(std::runtime_error("no route to host"))).error_message() ==
          "no route to host");
    CHECK(corio::result<void>(std::make_exception_ptr(corio::timeout_error())).error_message() ==
          corio::timeout_error().what());
    CHECK(corio::result<int>(std::make_exception_ptr(corio::cancelled_error())).error_message() ==
          "corio: operation cancelled");
    CHECK(corio::result<int>(std::make_exception_ptr(42)).error_message() ==
          "an exception of type int (not derived from std::exception)");
}
