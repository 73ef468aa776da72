// corio/detail/heap_store.hpp: heap_store<T, Compare>, priority_queue's item
// storage: a binary heap over a std::vector (std::push_heap/pop_heap with
// Compare, std::priority_queue's meaning). Same interface as fifo_store.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace corio::detail {

template <class T, class Compare>
class heap_store {
public:
    std::size_t size() const noexcept { return items_.size(); }
    template <class U>
    void push(U&& v) {
        items_.emplace_back(std::forward<U>(v));
        std::push_heap(items_.begin(), items_.end(), comp_);
    }
    T pop() {
        std::pop_heap(items_.begin(), items_.end(), comp_);
        T v = std::move(items_.back());
        items_.pop_back();
        return v;
    }

private:
    std::vector<T> items_;
    [[no_unique_address]] Compare comp_{};
};

}  // namespace corio::detail
