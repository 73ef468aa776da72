// Catch2 v2's main(), compiled once into corio_test_main. (With Catch2 v3 the
// tests link Catch2::Catch2WithMain instead and this file is not built, so it
// includes v2's header directly rather than the ladder of support/catch.hpp.)
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
