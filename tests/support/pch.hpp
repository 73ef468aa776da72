// tests/support/pch.hpp: the precompiled header of corio's test programs
// (CMake option CORIO_PCH, ON in scripts/test.sh and .ci/run). Compiled once
// per build directory (target corio_test_pch) and force-included by every
// tests/test_*.cpp, it holds what each of them parses anyway and what costs
// most to parse: Asio (through corio.hpp), Catch2 and the test kit.
//
// A force-included header comes before a test's own first #include, so under
// CORIO_PCH a test no longer shows that its header compiles on its own; the
// target header_self_contained (never precompiled) checks that for every
// public header.
#pragma once

#include <string>
#include <vector>

#include <corio/corio.hpp>

#include "support/catch.hpp"

#include <corio/testing.hpp>
