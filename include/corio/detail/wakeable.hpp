// corio/detail/wakeable.hpp: wakeable, the one-function-pointer base of
// everything the loop wakes, and waiter_base, its name as a chain's waiter.
//
// - A wakeable is woken through `notify(this)`, on the loop thread: a timer
//   node when its deadline comes (timer_heap.hpp), a chain's waiter when the
//   chain's scope is cancelled (scheduler.hpp: chain::waiter).
// - notify never resumes anything inline: it unlinks the waiter from what it
//   waits on and queues the chain (which then throws cancelled_error, or
//   goes on after its deadline).
// - 8 bytes, no virtual table: it sits in every suspended frame.
#pragma once

namespace corio::detail {

/// Something the loop wakes through one function pointer: a chain's waiter
/// when its scope is cancelled (see waiter_base), a timer_node when its
/// deadline comes.
struct wakeable {
    void (*notify)(wakeable*) noexcept = nullptr;
};

/// A suspension that cancellation can interrupt. notify is called on the
/// loop thread when the chain's scope is cancelled: it must unlink the waiter
/// from whatever it waits on and arrange for the chain to resume (and then
/// throw cancelled_error), never resume inline.
using waiter_base = wakeable;

}  // namespace corio::detail
