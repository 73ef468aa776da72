// corio/detail/catch2.hpp: the one place that picks Catch2's headers, for
// corio/testing.hpp and for corio's own tests (tests/support/catch.hpp).
//
// Catch2 v3 splits its API over headers: TEST_CASE, SECTION, REQUIRE, CHECK,
// FAIL in <catch2/catch_test_macros.hpp>; INFO, UNSCOPED_INFO, WARN in
// <catch2/catch_message.hpp>; matchers and generators in headers of their
// own (not included here). Catch2 v2 is one header, <catch2/catch.hpp>.
// The version is picked in this order:
//   1. Catch2 already included (v2's single header, v3's amalgamated header
//      or v3's catch_test_macros.hpp): that one;
//   2. CORIO_CATCH2_MAJOR defined as 2 or 3 (corio's CMake defines it from
//      the Catch2 package it found): that major version;
//   3. <catch2/catch_test_macros.hpp> exists: v3; else <catch2/catch.hpp>: v2;
//   otherwise an #error says Catch2 is missing.
// Afterwards CORIO_CATCH2_MAJOR is 2 or 3. What this includes offers, in
// both versions, every macro corio/testing.hpp uses (TEST_CASE, CHECK,
// FAIL, INFO, UNSCOPED_INFO and the internals behind REQUIRE/CHECK), which
// it reaches through the CORIO_CATCH_* names defined at the end: Catch2's
// CATCH_-prefixed macros when the user's build defines
// CATCH_CONFIG_PREFIX_ALL (then TEST_CASE, CHECK, ... do not exist), the
// plain ones otherwise.
#pragma once

#if defined(CATCH_AMALGAMATED_HPP_INCLUDED)
#if !defined(CORIO_CATCH2_MAJOR)
#define CORIO_CATCH2_MAJOR 3
#endif
#elif defined(CATCH_TEST_MACROS_HPP_INCLUDED) || defined(TWOBLUECUBES_CATCH_TEST_MACROS_HPP_INCLUDED)
#if !defined(CORIO_CATCH2_MAJOR)
#define CORIO_CATCH2_MAJOR 3
#endif
#include <catch2/catch_message.hpp>
#elif defined(CATCH_VERSION_MAJOR) && CATCH_VERSION_MAJOR == 2
#if !defined(CORIO_CATCH2_MAJOR)
#define CORIO_CATCH2_MAJOR 2
#endif
#elif !defined(CORIO_CATCH2_MAJOR)
#if __has_include(<catch2/catch_test_macros.hpp>)
#define CORIO_CATCH2_MAJOR 3
#elif __has_include(<catch2/catch.hpp>)
#define CORIO_CATCH2_MAJOR 2
#else
#error "corio: Catch2 not found, neither v3 (<catch2/catch_test_macros.hpp>) nor v2 (<catch2/catch.hpp>)"
#endif
#endif

#if !defined(CATCH_VERSION_MAJOR) && !defined(CATCH_AMALGAMATED_HPP_INCLUDED) && \
    !defined(CATCH_TEST_MACROS_HPP_INCLUDED) && !defined(TWOBLUECUBES_CATCH_TEST_MACROS_HPP_INCLUDED)
#if CORIO_CATCH2_MAJOR == 3
#include <catch2/catch_message.hpp>
#include <catch2/catch_test_macros.hpp>
#elif CORIO_CATCH2_MAJOR == 2
#include <catch2/catch.hpp>
#else
#error "corio: CORIO_CATCH2_MAJOR must be 2 or 3"
#endif
#endif

#if defined(CATCH_CONFIG_PREFIX_ALL)
#define CORIO_CATCH_TEST_CASE(...) CATCH_TEST_CASE(__VA_ARGS__)
#define CORIO_CATCH_CHECK(...) CATCH_CHECK(__VA_ARGS__)
#define CORIO_CATCH_FAIL(...) CATCH_FAIL(__VA_ARGS__)
#define CORIO_CATCH_INFO(msg) CATCH_INFO(msg)
#define CORIO_CATCH_UNSCOPED_INFO(msg) CATCH_UNSCOPED_INFO(msg)
#else
#define CORIO_CATCH_TEST_CASE(...) TEST_CASE(__VA_ARGS__)
#define CORIO_CATCH_CHECK(...) CHECK(__VA_ARGS__)
#define CORIO_CATCH_FAIL(...) FAIL(__VA_ARGS__)
#define CORIO_CATCH_INFO(msg) INFO(msg)
#define CORIO_CATCH_UNSCOPED_INFO(msg) UNSCOPED_INFO(msg)
#endif
