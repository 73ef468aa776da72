// Built by tests/package_consumer/run.cmake against an installed corio
// (find_package) and against corio's source tree (add_subdirectory).
#include <corio/corio.hpp>

int main() {
    return corio::run([]() -> corio::task<int> { co_return 0; }());
}
