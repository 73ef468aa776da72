// corio/detail/observer.hpp: observer, one entry of the list of those
// waiting for a spawned task to finish (a join_handle's awaiter, wait(), a
// task group).
//
// - The list's head lives in the spawned task's outermost frame, in the
//   promise's `link` word (an outermost frame has no continuation to keep
//   there): see spawn_state::add_observer / notify_observers.
// - Every link of the list carries promise_base::root_bit (tag), so the head
//   keeps marking the frame as outermost whatever is linked or unlinked.
// - An observer unlinks itself in O(1) through `pprev`; unlinking one that
//   is not linked does nothing.
#pragma once

#include <cstdint>

#include "promise.hpp"

namespace corio::detail {

/// Something to notify when a spawned task finishes (an awaiting join, a
/// wait(), a task group). The list's head is the task frame's
/// promise_base::link, whose bit 0 marks the frame as a chain's outermost:
/// every link of the list carries that bit, so unlinking through `pprev`
/// keeps it wherever it writes.
struct observer {
    static constexpr std::uintptr_t tag = promise_base::root_bit;
    // `next` stays the first member: notify_observers walks back through pprev.

    std::uintptr_t next = tag;  // tagged link to the next observer (tag alone: none)
    std::uintptr_t* pprev = nullptr;
    void (*fn)(observer*) noexcept = nullptr;

    static observer* at(std::uintptr_t link) noexcept { return reinterpret_cast<observer*>(link & ~tag); }
    std::uintptr_t as_link() noexcept { return reinterpret_cast<std::uintptr_t>(this) | tag; }

    void unlink() noexcept {
        if (!pprev) return;
        *pprev = next;
        if (observer* n = at(next)) n->pprev = pprev;
        next = tag;
        pprev = nullptr;
    }
};

}  // namespace corio::detail
