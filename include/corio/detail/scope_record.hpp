// corio/detail/scope_record.hpp: scope_record, the cancel scope that
// cancel_scope, timeout, move_on_after, shield and with_token run.
//
// - A deadline_scope (an inner scope with a timer node) plus a phase: idle
//   (not entered yet; copyable), running (linked as its chain's innermost
//   scope), finished (left; never entered again).
// - The phase and the "deadline is relative" flag live in the timer node's
//   owner_bits, beside scope_flag: the record is 56 bytes on 64-bit targets,
//   and it sits in every frame awaiting a timeout.
// - A relative deadline is turned into a time point when the scope is
//   entered, on the loop's clock; a deadline already passed cancels the
//   scope at once (the operand may still complete if it never suspends).
// - Leaving removes the deadline from the timer heap: a scope left before its
//   deadline leaves nothing behind. A record destroyed while running (its
//   frame destroyed with the loop) leaves on destruction.
#pragma once

#include <cstdint>

#include "../errors.hpp"
#include "clock.hpp"
#include "running_loop.hpp"
#include "scheduler.hpp"

namespace corio::detail {

/// A scope as run by cancel_scope, timeout, move_on_after and shield.
struct scope_record : deadline_scope {
    enum class phase : unsigned char { idle, running, finished };

    static constexpr std::uint8_t phase_mask = 3, relative_flag = 4;

    explicit scope_record(clock::time_point deadline_at = clock::time_point::max(), bool shield = false) noexcept {
        deadline = deadline_at;
        shielded = shield;
        owner_bits = scope_flag | static_cast<std::uint8_t>(phase::idle);
    }
    scope_record(const scope_record&) = default;  // only while idle (an awaiter moved before it starts)
    /// A record still running is left when it goes: its frame was destroyed
    /// mid-await (the loop was torn down). Whoever holds it destroys the
    /// operand first, so scopes nested inside have left already.
    ~scope_record() { leave(); }

    phase current_phase() const noexcept { return static_cast<phase>(owner_bits & phase_mask); }
    void set_phase(phase p) noexcept {
        owner_bits = static_cast<std::uint8_t>((owner_bits & ~phase_mask) | static_cast<std::uint8_t>(p));
    }

    /// Makes this the innermost scope of `ch`. A relative deadline is taken
    /// from the loop clock now; an expired one cancels at once (the operand
    /// may still complete if it never suspends).
    void enter(chain* ch) {
        if (current_phase() != phase::idle)
            throw invalid_state_error("corio: cancel_scope::run() called twice; a cancel_scope runs once");
        set_phase(phase::running);
        ch->enter(this);
        const bool relative = owner_bits & relative_flag;
        if (!relative && deadline == clock::time_point::max()) return;
        const clock::time_point now = ch->sched->now();
        if (relative) deadline = saturating_add(now, deadline.time_since_epoch());
        if (deadline != clock::time_point::max() && deadline <= now) cancel_scope_node(this, ch);
    }

    void leave() noexcept {
        if (current_phase() != phase::running) return;
        chain* c = own_chain();
        c->sched->remove_timer(this);
        c->leave(this);
        set_phase(phase::finished);
    }

    /// The cancellation now propagating belongs to this scope. O(1) for
    /// each enclosing scope after the first of an unwinding (see owner_memo).
    bool owns_cancellation() {
        chain* c = own_chain();
        return cancellation_owner(this, *c->sched, c) == this;
    }

    /// The chain of this running record, without walking the scope path per
    /// frame: a record is left (and asks who owns a cancellation) on its own
    /// chain, which is the running one and has this record innermost. A few
    /// levels are walked first, as that is cheaper than asking which chain
    /// runs; the full walk remains for a frame destroyed mid-await (teardown).
    chain* own_chain() noexcept {
        scope_node* s = parent;
        for (int i = 0; i < 3 && s; ++i, s = s->parent)
            if (s->kind != scope_kind::inner)
                return s->kind == scope_kind::chain_root ? &static_cast<chain_root*>(s)->ch : nullptr;
        if (chain* c = running_chain(); c && c->scope == this) return c;
        return owner_chain(this);
    }

    void reschedule(clock::time_point tp) {
        if (current_phase() == phase::finished)
            throw invalid_state_error("corio: cancel_scope::reschedule() on a scope that has already finished");
        if (current_phase() != phase::running) {
            deadline = tp;
            return;
        }
        scheduler& sched = *owner_chain(this)->sched;
        sched.remove_timer(this);
        deadline = tp;
        // The chain may be parked right now: arm (or fire) the new deadline at once.
        if (tp == clock::time_point::max() || cancel_called) return;
        if (tp <= sched.now()) cancel_scope_node(this);
        else sched.add_timer(this);
    }
};

static_assert(sizeof(void*) != 8 || sizeof(scope_record) == 56,
              "corio: a scope record sits in every frame awaiting a timeout");

}  // namespace corio::detail
