// corio/detail/lifo_store.hpp: lifo_store<T>, lifo_queue<T>'s item storage (newest
// item first): a std::vector used as a stack. Same interface as fifo_store.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace corio::detail {

template <class T>
class lifo_store {
public:
    std::size_t size() const noexcept { return items_.size(); }
    template <class U>
    void push(U&& v) {
        items_.emplace_back(std::forward<U>(v));
    }
    T pop() {
        T v = std::move(items_.back());
        items_.pop_back();
        return v;
    }

private:
    std::vector<T> items_;
};

}  // namespace corio::detail
