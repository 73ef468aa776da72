// corio/detail/operand.hpp: operand<A>, how a scoped awaiter holds what it
// awaits: by value (a temporary moved in) or by reference (an lvalue), and,
// once the await begins, the operand's awaiter built in place beside it.
//
// - An awaitable that is its own awaiter (get_awaiter returns a reference)
//   stores nothing more; any other gets a slot for its awaiter, constructed
//   by start() and destroyed with the operand.
// - Movable until started (the slot is empty then); pinned after.
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "awaitable_traits.hpp"

namespace corio::detail {

/// Holds an operand (by value, or by reference for an lvalue) and, once the
/// await begins, its awaiter.
template <class A>
class operand {
    using raw = decltype(get_awaiter(std::declval<A&&>()));

public:
    static constexpr bool is_self = std::is_reference_v<raw>;
    using awaiter_type = std::remove_reference_t<raw>;

    template <class U>
    explicit operand(U&& u) : aw_(std::forward<U>(u)) {}
    operand(operand&& o) noexcept(std::is_nothrow_move_constructible_v<A>) : aw_(static_cast<A&&>(o.aw_)) {}
    operand(const operand&) = delete;
    ~operand() {
        if constexpr (!is_self)
            if (slot_.started) std::destroy_at(ptr());
    }

    awaiter_type& start() {
        if constexpr (is_self) {
            return aw_;
        } else {
            ::new (static_cast<void*>(slot_.bytes)) awaiter_type(get_awaiter(static_cast<A&&>(aw_)));
            slot_.started = true;
            return *ptr();
        }
    }
    awaiter_type& get() noexcept {
        if constexpr (is_self) return aw_;
        else return *ptr();
    }

private:
    awaiter_type* ptr() noexcept {
        if constexpr (is_self) return nullptr;
        else return std::launder(reinterpret_cast<awaiter_type*>(slot_.bytes));
    }
    struct empty {};
    struct storage {
        alignas(awaiter_type) unsigned char bytes[sizeof(awaiter_type)];
        bool started = false;
    };
    A aw_;
    [[no_unique_address]] std::conditional_t<is_self, empty, storage> slot_{};
};

}  // namespace corio::detail
