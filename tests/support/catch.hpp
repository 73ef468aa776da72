// Catch2 shim for corio's tests: `#include "support/catch.hpp"`.
//
// Includes Catch2 v3 (<catch2/catch_all.hpp>) or v2 (<catch2/catch.hpp>),
// whichever the build found. tests/CMakeLists.txt defines CORIO_CATCH2_MAJOR;
// without it the header that exists is used, v3 first.
//
// Reminder: Catch2 2.13's REQUIRE/CHECK may evaluate their
// expression up to three times on g++, so never `co_await` inside one:
// await into a local first. REQUIRE_THROWS_AS(co_await x, E) is safe.
#pragma once

#if defined(CORIO_CATCH2_MAJOR)
#if CORIO_CATCH2_MAJOR >= 3
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
#elif __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_all.hpp>
#elif __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
#else
#error "Catch2 not found (Debian/Ubuntu: apt-get install catch2)"
#endif
