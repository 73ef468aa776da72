// expect: corio: task<T> does not support over-aligned T; return it in a std::unique_ptr
// A task whose result type is aligned beyond 16 bytes: the scheduler finds a
// promise from its frame's address, which holds only up to that alignment.
#include <corio/task.hpp>

struct alignas(64) cache_line {
    char bytes[64];
};

corio::task<cache_line> make() { co_return cache_line{}; }

int main() { auto t = make(); }
