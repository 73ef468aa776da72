// expect: corio: this awaitable can only be awaited from a corio coroutine
// A corio task awaited from a coroutine type that is not corio's: the
// awaiter needs the awaiting frame's chain, so this must not compile, and the
// message must say why.
#include <coroutine>

#include <corio/task.hpp>

struct plain {
    struct promise_type {
        plain get_return_object() { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() {}
    };
};

corio::task<void> work() { co_return; }

plain outside() { co_await work(); }
