// corio/detail/spawn_state.hpp: spawn_state, the task context of a spawned
// task (what a join_handle points to), and the helpers that read it.
//
// - One pooled block per spawned task: its root scope, its chain and its
//   outermost frame (a chain_root), 72 bytes on 64-bit targets. Names live in
//   the scheduler's side table (scheduler::task_names_), only for named tasks.
// - Owned jointly by the running task and the join_handle (chain_root::refs);
//   the last release() destroys the frame and frees the block.
// - The frame's promise keeps the result until the handle lets go; until the
//   task finishes, the same word holds the list of observers (observer.hpp).
// - The ready queue marks an entry that starts a spawned task by bit 0
//   (tag_start): the loop then runs start_spawned instead of resuming a frame.
#pragma once

#include <coroutine>
#include <cstdint>
#include <string>
#include <string_view>

#include "../errors.hpp"
#include "frame_allocator.hpp"
#include "observer.hpp"
#include "promise.hpp"
#include "scheduler.hpp"
#include "task_promise.hpp"

namespace corio::detail {

/// The task context of a spawned task: its root scope, its chain and its
/// outermost frame (a chain_root), whose promise keeps the result until the
/// handle lets go and, until the task finishes, the list of observers (in
/// the continuation slot an outermost frame does not use). Owned jointly by
/// the running task and the join_handle (refs). Kept small on purpose (a
/// million sleeping tasks pay for every byte): 72 bytes, names in a side table.
struct spawn_state : chain_root, pooled {
    spawn_state() noexcept { spawned = true; }

    bool finished() const noexcept { return status >= task_status::done; }
    scope_node* root() noexcept { return this; }

    /// The frame's promise (found from the frame: see promise_of).
    promise_base& promise() const noexcept { return promise_of(frame); }

    /// Adds `o` to the observers notified when the task finishes (only while
    /// it has not finished: the list lives in the running frame).
    void add_observer(observer* o) noexcept {
        std::uintptr_t& head = promise().link;
        o->next = head;
        o->pprev = &head;
        if (observer* first = observer::at(head)) first->pprev = &o->next;
        head = o->as_link();
    }

    /// Unlinks and calls every observer, oldest first, so joiners resume in
    /// the order they began to wait. An observer's fn only schedules (nothing
    /// runs inline), but it may unlink other observers of this task: a task
    /// group's observer cancels the group's scope, whose waiters (a joiner of
    /// this very task, a wait() over it) unlink themselves. So the next
    /// observer is taken from the list as it is after each call, never from a
    /// pointer fetched before it: an unlinked observer is never called, and
    /// none behind it is skipped.
    void notify_observers() noexcept {
        std::uintptr_t& head = promise().link;
        observer* o = oldest_observer(head);
        while (o) {
            observer* newer = newer_observer(o, head);
            o->unlink();
            o->fn(o);
            // Still linked: nothing older is left, it is the oldest. Unlinked
            // by fn: find the oldest again (rare: only after a cancellation).
            o = newer && newer->pprev ? newer : oldest_observer(head);
        }
    }

    static observer* oldest_observer(std::uintptr_t head) noexcept {
        observer* o = observer::at(head);
        if (o)
            while (observer* n = observer::at(o->next)) o = n;  // the list is newest first
        return o;
    }
    /// The observer linked just before `o` (newer), or null. `next` is an
    /// observer's first member: a pprev that is not the head points into it.
    static observer* newer_observer(observer* o, std::uintptr_t& head) noexcept {
        return o->pprev == &head ? nullptr : reinterpret_cast<observer*>(o->pprev);
    }

    /// Drops one reference; the last one frees the task. Safe after the
    /// loop is gone: the loop then detached it (ch.sched null, no name).
    void release() noexcept {
        if (--refs != 0) return;
        unlink();  // from the loop's list of held, finished tasks
        if (frame) frame.destroy();
        if (named) ch.sched->task_names_.erase(this);
        delete this;
    }

    std::string_view name() const noexcept {
        if (!named) return {};
        auto it = ch.sched->task_names_.find(this);
        return it == ch.sched->task_names_.end() ? std::string_view() : std::string_view(it->second);
    }

    static spawn_state* from_chain(chain* c) noexcept { return static_cast<spawn_state*>(chain_root::from_chain(c)); }
    static spawn_state* from_root(scope_node* s) noexcept { return static_cast<spawn_state*>(s); }
};

// A million sleeping tasks pay for every byte: keep it at 72 on 64-bit targets.
static_assert(sizeof(void*) != 8 || sizeof(spawn_state) == 72, "corio: spawn_state grew");
static_assert(alignof(spawn_state) <= 8, "corio: pooled objects use 8-byte size classes");

inline void* tag_start(spawn_state* s) noexcept {
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(s) | 1u);
}

template <class T>
T take_result(spawn_state* s) {
    if (s->result_taken) throw invalid_state_error("corio: the result of this join_handle was already taken");
    s->result_taken = true;
    if (s->status == task_status::cancelled && !s->frame) throw cancelled_error{};
    auto& p = static_cast<task_promise<T>&>(s->promise());
    return p.take();
}

/// The name of the spawned task a frame runs in (a combinator child's frame
/// is named after the task that awaits the combinator), or "".
inline std::string task_name_of(std::coroutine_handle<> h) {
    chain* c = promise_of(h).ch;
    scope_node* s = c ? chain_root::from_chain(c) : nullptr;
    for (; s; s = s->parent) {
        if (s->kind == scope_kind::chain_root && static_cast<chain_root*>(s)->spawned)
            return std::string(static_cast<spawn_state*>(s)->name());
    }
    return {};
}

}  // namespace corio::detail
