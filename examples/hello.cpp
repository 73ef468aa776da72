// examples/hello.cpp: the README's first example, as it appears there (the
// docs_snippets test compares the two). Prints "1 4 too slow" after 20 ms.
//! [readme]
#include <corio/corio.hpp>
#include <cstdio>
using namespace std::chrono_literals;

corio::task<int> square_later(int x) {
    co_await corio::sleep(10ms * x);  // suspends this task only; a cancellation point
    co_return (x * x);
}

corio::task<int> amain() {
    auto [a, b] = co_await corio::gather(square_later(1), square_later(2));       // concurrently: 20 ms
    std::optional<int> c = co_await corio::move_on_after(15ms, square_later(3));  // cancelled at 15 ms
    std::printf("%d %d %s\n", a, b, c ? "in time" : "too slow");
    co_return 0;
}

int main() { return corio::run(amain()); }
//! [readme]
