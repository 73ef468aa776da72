// Catch2 for corio's tests: `#include "support/catch.hpp"`.
//
// Which Catch2 (v3 or v2) is decided in one place, corio/detail/catch2.hpp,
// the include ladder corio/testing.hpp uses too (tests/CMakeLists.txt
// defines CORIO_CATCH2_MAJOR from the package CMake found). On v3 this adds
// <catch2/catch_all.hpp>: the matchers and generators v2's single header
// already has.
//
// contains_text(s): the matcher "the string contains s" for
// CHECK_THROWS_WITH and CHECK_THAT, spelled the same on both versions (v2's
// Catch::Contains became Catch::Matchers::ContainsSubstring in v3, and v3's
// Catch::Matchers::Contains matches a range element instead).
//
// REQUIRE/CHECK around a co_await: corio/testing.hpp (which
// support/corio_test.hpp includes) makes them evaluate their expression
// once; without it, await into a local first.
#pragma once

#include <string>

#include <corio/detail/catch2.hpp>

#if CORIO_CATCH2_MAJOR == 3
#include <catch2/catch_all.hpp>
#endif

namespace corio_test {

/// Matches a string that contains `s` (case-sensitive), on Catch2 v2 and v3.
inline auto contains_text(const std::string& s) {
#if CORIO_CATCH2_MAJOR == 3
    return Catch::Matchers::ContainsSubstring(s);
#else
    return Catch::Matchers::Contains(s);
#endif
}

}  // namespace corio_test
