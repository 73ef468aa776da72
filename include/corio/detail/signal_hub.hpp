// corio/detail/signal_hub.hpp: one asio::signal_set per event loop, shared by
// every wait_for_signal() of the loop and by run()'s cancel-on-signal.
//
// Invariants:
// - A signal is in the set exactly while a waiter or the cancel target wants
//   it (refs_), so a signal nobody asked for keeps its default disposition.
// - A delivered signal goes to every waiter that asked for it; only when no
//   waiter took it does the cancel target see it: the first such signal
//   cancels the target scope, a second one ends the process at once
//   (std::_Exit(128 + signal)).
// - The set's pending async_wait does not count as io_context work (it is
//   discounted after arming and re-counted in the handler), so a loop whose
//   only outstanding operation is that wait still reports a deadlock.
//   A wait_for_signal waiter keeps the loop alive with its own work guard.
// - Handlers that outlive the hub (an adopted io_context) find `self_` null.
#pragma once

#include <csignal>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include "scheduler.hpp"
#include "wait_list.hpp"

namespace corio::detail {

/// A task suspended in wait_for_signal (the node lives in its frame).
struct signal_waiter : parked {
    std::vector<int> wanted;
    int got = 0;
    bool wants(int s) const noexcept {
        for (int w : wanted)
            if (w == s) return true;
        return false;
    }
};

class signal_hub {
public:
    explicit signal_hub(asio::io_context& ctx)
        : set_(ctx), ex_(ctx.get_executor()), self_(std::make_shared<signal_hub*>(this)) {}
    signal_hub(const signal_hub&) = delete;
    signal_hub& operator=(const signal_hub&) = delete;
    ~signal_hub() { *self_ = nullptr; }

    /// From now on, a signal in `sigs` that no waiter takes cancels `target`.
    void set_cancel_target(scope_node* target, const std::vector<int>& sigs) {
        for (int s : sigs) check(s);  // all or nothing
        for (int s : sigs) ref(s);
        cancel_sigs_ = sigs;
        target_ = target;
        arm();
    }
    void clear_cancel_target() noexcept {
        target_ = nullptr;
        try {
            for (int s : cancel_sigs_) unref(s);
        } catch (...) {
        }
        cancel_sigs_.clear();
    }

    void add_waiter(signal_waiter* w) {
        for (int s : w->wanted) ref(s);
        waiters_.push_back(w);
        arm();
    }
    void remove_waiter(signal_waiter* w) noexcept {
        w->unlink();
        try {
            for (int s : w->wanted) unref(s);
        } catch (...) {
        }
    }

    /// How many signals reached the cancel target (for tests and diagnostics).
    int cancels_delivered() const noexcept { return delivered_; }

private:
    struct handler {
        std::shared_ptr<signal_hub*> self;
        asio::io_context::executor_type ex;
        void operator()(const std::error_code& ec, int sig) const {
            ex.on_work_started();  // balances the discount made when arming
            signal_hub* hub = *self;
            if (!hub) return;
            hub->armed_ = false;
            if (ec) return;
            hub->deliver(sig);
            hub->arm();
        }
    };

    static void check(int s) {
        if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP)
            throw std::invalid_argument("corio: " + std::to_string(s) + " is not a signal that can be caught");
    }
    void ref(int s) {
        check(s);
        if (refs_.size() <= static_cast<std::size_t>(s)) refs_.resize(static_cast<std::size_t>(s) + 1, 0);
        if (refs_[static_cast<std::size_t>(s)]++ == 0) set_.add(s);
    }
    void unref(int s) {
        if (--refs_[static_cast<std::size_t>(s)] == 0) {
            std::error_code ec;
            set_.remove(s, ec);
        }
    }
    bool wanted_any() const noexcept {
        for (int r : refs_)
            if (r) return true;
        return false;
    }
    void arm() {
        if (armed_ || !wanted_any()) return;
        armed_ = true;
        set_.async_wait(handler{self_, ex_});
        ex_.on_work_finished();  // the wait alone must not keep the loop alive
    }

    void deliver(int sig) noexcept {
        bool taken = false;
        wait_node* n = waiters_.front();
        while (n) {
            wait_node* next = wait_list::next(n);
            auto* w = static_cast<signal_waiter*>(static_cast<parked*>(n));
            if (w->wants(sig)) {
                waiters_.erase(w);
                w->got = sig;
                w->wake();
                taken = true;
            }
            n = next;
        }
        if (taken || !target_) return;
        bool ours = false;
        for (int s : cancel_sigs_) ours = ours || s == sig;
        if (!ours) return;
        if (delivered_++ > 0) std::_Exit(128 + sig);  // the second signal: end the process now
        cancel_scope_node(target_);
    }

    asio::signal_set set_;
    asio::io_context::executor_type ex_;
    std::shared_ptr<signal_hub*> self_;
    wait_list waiters_;
    std::vector<int> refs_;
    std::vector<int> cancel_sigs_;
    scope_node* target_ = nullptr;
    int delivered_ = 0;
    bool armed_ = false;
};

/// Clears a hub's cancel target when run_until_complete returns.
struct cancel_target_guard {
    signal_hub* hub = nullptr;
    cancel_target_guard() = default;
    cancel_target_guard(const cancel_target_guard&) = delete;
    cancel_target_guard& operator=(const cancel_target_guard&) = delete;
    ~cancel_target_guard() {
        if (hub) hub->clear_cancel_target();
    }
};

}  // namespace corio::detail
