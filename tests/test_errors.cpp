// Tests for corio/errors.hpp: the exception hierarchy (cancelled_error is not a
// std::exception; timeout_error, invalid_state_error, queue_closed,
// broken_barrier derive from the standard types) and exception_group.
#include <corio/errors.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "support/corio_test.hpp"

using corio::cancelled_error;
using corio::exception_group;

// cancelled_error must escape `catch (const std::exception&)` (Python's
// BaseException), so it must not derive from std::exception at all.
static_assert(!std::is_base_of_v<std::exception, cancelled_error>);
static_assert(std::is_final_v<cancelled_error>);
static_assert(std::is_base_of_v<std::runtime_error, corio::timeout_error>);
static_assert(std::is_base_of_v<std::logic_error, corio::invalid_state_error>);
static_assert(std::is_base_of_v<std::runtime_error, corio::queue_closed>);
static_assert(std::is_base_of_v<std::runtime_error, corio::broken_barrier>);
static_assert(std::is_base_of_v<std::exception, exception_group>);

namespace {

template <class E>
std::exception_ptr make(E e) {
    return std::make_exception_ptr(std::move(e));
}

}  // namespace

TEST_CASE("errors: cancelled_error is not caught by catch (const std::exception&)") {
    std::string seen;
    try {
        try {
            throw cancelled_error{};
        } catch (const std::exception&) {
            seen = "std::exception";  // must not happen
        }
    } catch (const cancelled_error& e) {
        seen = "cancelled_error";
        CHECK(std::string(e.what()).find("cancelled") != std::string::npos);
    }
    CHECK(seen == "cancelled_error");
}

TEST_CASE("errors: timeout_error is a std::runtime_error with a message") {
    std::string message;
    try {
        throw corio::timeout_error{};
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    CHECK(message == "corio: timeout expired");

    try {
        throw corio::timeout_error("fetch took too long");
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    CHECK(message == "fetch took too long");
}

TEST_CASE("errors: invalid_state_error is a std::logic_error carrying its message") {
    std::string message;
    try {
        throw corio::invalid_state_error("handle already awaited");
    } catch (const std::logic_error& e) {
        message = e.what();
    }
    CHECK(message == "handle already awaited");
}

TEST_CASE("errors: queue_closed and broken_barrier have default messages") {
    CHECK(std::string(corio::queue_closed{}.what()) == "corio: queue is closed");
    CHECK(std::string(corio::broken_barrier{}.what()) == "corio: barrier is broken");
}

TEST_CASE("errors: exception_group keeps its members in order") {
    std::vector<std::exception_ptr> errors{make(std::invalid_argument("first")), make(std::out_of_range("second")),
                                           make(corio::timeout_error("third"))};
    const exception_group g(errors);
    REQUIRE(g.size() == 3);
    REQUIRE(g.exceptions().size() == 3);
    std::vector<std::string> order;
    for (const auto& e : g.exceptions()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            order.emplace_back(ex.what());
        }
    }
    CHECK(order == std::vector<std::string>{"first", "second", "third"});
    CHECK(g.exceptions()[0] == errors[0]);  // the same exception objects, not copies
    CHECK(g.exceptions()[2] == errors[2]);
}

TEST_CASE("errors: exception_group::what() lists every member's message") {
    const exception_group g(
        {make(std::invalid_argument("bad input")), make(std::runtime_error("disk full")), make(42)});
    const std::string what = g.what();
    CHECK(what == "corio: 3 errors in task group: [1] bad input; [2] disk full; [3] non-standard exception");

    const exception_group one({make(std::runtime_error("only"))});
    CHECK(std::string(one.what()) == "corio: 1 error in task group: [1] only");

    const exception_group none({});
    CHECK(none.size() == 0);
    CHECK(std::string(none.what()) == "corio: 0 errors in task group");
}

TEST_CASE("errors: exception_group contains<E>() and find<E>()") {
    const exception_group g(
        {make(std::invalid_argument("arg")), make(std::out_of_range("range 1")), make(std::out_of_range("range 2"))});
    CHECK(g.contains<std::invalid_argument>());
    CHECK(g.contains<std::out_of_range>());
    CHECK(g.contains<std::logic_error>());  // a base class matches
    CHECK_FALSE(g.contains<std::runtime_error>());
    CHECK_FALSE(g.contains<corio::timeout_error>());

    const std::out_of_range* r = g.find<std::out_of_range>();
    REQUIRE(r != nullptr);
    CHECK(std::string(r->what()) == "range 1");  // the first match
    CHECK(g.find<std::runtime_error>() == nullptr);
    CHECK(g.find<exception_group>() == nullptr);

    const std::logic_error* l = g.find<std::logic_error>();
    REQUIRE(l != nullptr);
    CHECK(std::string(l->what()) == "arg");

    // Nested groups are not searched.
    const exception_group outer({std::make_exception_ptr(g)});
    CHECK(outer.contains<exception_group>());
    CHECK_FALSE(outer.contains<std::invalid_argument>());
    const exception_group* inner = outer.find<exception_group>();
    REQUIRE(inner != nullptr);
    CHECK(inner->size() == 3);
}

TEST_CASE("errors: exception_group::rethrow_if_single()") {
    const exception_group single({make(std::out_of_range("the one"))});
    std::string message;
    try {
        single.rethrow_if_single();
    } catch (const std::out_of_range& e) {
        message = e.what();
    }
    CHECK(message == "the one");

    const exception_group two({make(std::out_of_range("a")), make(std::out_of_range("b"))});
    CHECK_NOTHROW(two.rethrow_if_single());
    const exception_group empty({});
    CHECK_NOTHROW(empty.rethrow_if_single());
}
