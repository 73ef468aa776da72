// corio/debug.hpp: diagnostics: slow-step warnings and task dumps.
//
// The only corio header that needs fmt (link fmt::fmt); it is therefore not
// included by corio/corio.hpp: include it yourself. Including it anywhere in
// a program also routes the loop's slow-step warnings through fmt and adds
// the task dump to the deadlock report of run().
//
// - run_options::debug (or CORIO_DEBUG=1 in the environment) makes the loop
//   time every step of every task: a step (one resumption, until the task
//   suspends again) that holds the loop longer than
//   run_options::slow_step_threshold (100 ms by default) is reported on
//   stderr, naming the task ("main" for run()'s main; a combinator child is
//   named after the task that awaits the combinator). Off, it costs one
//   predictable branch per drain of the ready queue.
// - dump_tasks(loop) -> the live tasks of a loop (default: the running one)
//   as a tree: each spawned task with its name, its state, whether
//   cancellation was requested, the coroutine it runs and what it waits
//   for, and below it the child chains of the
//   combinators it awaits and the tasks of its task groups (the async stack
//   of structured concurrency). format_tasks() renders it as text;
//   print_tasks() writes it to stderr. Coroutine and awaiter names come from
//   the dynamic symbol table: link with -rdynamic (CMake: ENABLE_EXPORTS) to
//   get them; otherwise addresses are shown. States: pending (not started),
//   running, waiting (parked in an awaiter), joining (waiting for its child
//   chains or tasks), scheduled (ready, or in a wait that cancellation cannot
//   cut short, such as to_thread's), done, failed, cancelled.
// - dump_tasks_on_signal(SIGQUIT) -> task<void>: spawn it, and each such
//   signal prints the dump (Ctrl-\ in a terminal). Cancellation point.
// - The deadlock report of run() (invalid_state_error) ends with the dump.
#pragma once

#if !__has_include(<fmt/format.h>)
#error "corio/debug.hpp needs fmt (link fmt::fmt); the rest of corio does not"
#endif

#include <chrono>
#include <coroutine>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if __has_include(<dlfcn.h>)
#include <dlfcn.h>
#endif
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include <fmt/format.h>

#include "loop.hpp"
#include "signal.hpp"
#include "task.hpp"

namespace corio {

/// One line of a task dump.
struct task_dump {
    std::size_t depth = 0;   ///< 0: a task of the loop; deeper: nested under the line above at depth - 1
    std::string kind;        ///< "task", "child" (a combinator's child chain), "scope"
    std::string name;        ///< the spawn name ("" when unnamed)
    std::string state;       ///< pending, running, waiting, scheduled, done, failed, cancelled
    bool cancel_requested = false;  ///< whether the task's scope was cancelled
    std::string coroutine;   ///< the chain's outermost coroutine
    std::string awaiting;    ///< what the chain is suspended in ("" when not parked)
};

namespace detail {

/// A readable name for a code address: the demangled symbol without
/// parameters, or the address.
inline std::string symbol_name(const void* addr) {
#if __has_include(<dlfcn.h>)
    Dl_info info{};
    if (addr && dladdr(addr, &info) && info.dli_sname) {
        std::string name = info.dli_sname;
#if __has_include(<cxxabi.h>)
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), std::free);
        if (status == 0 && d) name = d.get();
#endif
        if (auto p = name.find('('); p != std::string::npos && p > 0) name.erase(p);
        for (std::string_view noise : {"corio::detail::", "corio::"}) {
            for (auto q = name.find(noise); q != std::string::npos; q = name.find(noise)) name.erase(q, noise.size());
        }
        return name;
    }
#endif
    return fmt::format("{}", addr);
}

/// The resume function of a coroutine frame (its first word in both ABIs).
inline std::string coroutine_name(std::coroutine_handle<> h) {
    if (!h) return "";
    void* resume_fn = *static_cast<void**>(h.address());
    return symbol_name(resume_fn);
}

inline const char* status_name(task_status s) noexcept {
    switch (s) {
        case task_status::pending: return "pending";
        case task_status::running: return "running";
        case task_status::done: return "done";
        case task_status::failed: return "failed";
        case task_status::cancelled: return "cancelled";
    }
    return "?";
}

inline bool chain_is_running(scheduler& sched, chain* c) {
    return sched.running_ && promise_of(sched.running_).ch == c;
}

inline void dump_chain_root(scheduler& sched, chain_root* r, std::size_t depth, std::vector<task_dump>& out);

/// Whether a chain has child chains or tasks below it (it waits for them).
inline bool has_child_chain(scope_node* s) noexcept {
    for (scope_node* c = s->first_child; c; c = c->next_sibling) {
        if (c->kind == scope_kind::chain_root || has_child_chain(c)) return true;
    }
    return false;
}

inline void dump_children(scheduler& sched, scope_node* s, std::size_t depth, std::vector<task_dump>& out) {
    // Children are linked newest first: list them oldest first.
    scope_node* c = s->first_child;
    while (c && c->next_sibling) c = c->next_sibling;
    for (; c; c = c->prev_sibling) {
        if (c->kind == scope_kind::chain_root) dump_chain_root(sched, static_cast<chain_root*>(c), depth, out);
        else dump_children(sched, c, depth, out);  // a cancel scope or task group: look through it
    }
}

inline void dump_chain_root(scheduler& sched, chain_root* r, std::size_t depth, std::vector<task_dump>& out) {
    task_dump d;
    d.depth = depth;
    d.kind = r->spawned ? "task" : "child";
    if (r->spawned) d.name = std::string(static_cast<spawn_state*>(r)->name());
    d.cancel_requested = r->ch.sched && scope_cancel_requested(r->ch.scope, sched);
    if (r->spawned && r->status != task_status::running) d.state = status_name(r->status);
    else if (chain_is_running(sched, &r->ch)) d.state = "running";
    else if (r->ch.waiter) d.state = "waiting";
    else if (has_child_chain(r)) d.state = "joining";
    else d.state = "scheduled";
    d.coroutine = coroutine_name(r->frame);
    if (r->ch.waiter) d.awaiting = symbol_name(reinterpret_cast<const void*>(r->ch.waiter->notify));
    out.push_back(std::move(d));
    dump_children(sched, r, depth + 1, out);
}

}  // namespace detail

/// The live tasks of `loop`, as a tree in depth-first order. Call on the loop's thread.
inline std::vector<task_dump> dump_tasks(event_loop& loop) {
    std::vector<task_dump> out;
    detail::scheduler& sched = loop.core();
    detail::dump_children(sched, &sched.root_scope_, 0, out);
    return out;
}
/// The live tasks of the running loop.
inline std::vector<task_dump> dump_tasks() { return dump_tasks(current_loop()); }

/// The dump as text, one indented line per entry.
inline std::string format_tasks(const std::vector<task_dump>& tasks) {
    std::string s = fmt::format("corio: {} live task(s) and child chain(s):\n", tasks.size());
    for (const task_dump& t : tasks) {
        s += fmt::format("{:{}}- {} '{}' [{}{}] in {}", "", 2 * t.depth + 2, t.kind, t.name, t.state,
                         t.cancel_requested ? ", cancel requested" : "", t.coroutine.empty() ? "?" : t.coroutine);
        if (!t.awaiting.empty()) s += fmt::format(", awaiting {}", t.awaiting);
        s += '\n';
    }
    return s;
}

/// Writes the dump of `loop` to stderr.
inline void print_tasks(event_loop& loop) { std::fputs(format_tasks(dump_tasks(loop)).c_str(), stderr); }
/// Writes the dump of the current loop to stderr.
inline void print_tasks() { print_tasks(current_loop()); }

/// Prints the task dump to stderr each time `sig` arrives (SIGQUIT: Ctrl-\).
/// Runs until cancelled: spawn it. Cancellation point.
inline task<void> dump_tasks_on_signal(int sig = SIGQUIT) {
    for (;;) {
        co_await wait_for_signal(sig);
        print_tasks();
    }
}

namespace detail {

inline void fmt_slow_step(std::string_view task, std::chrono::nanoseconds took, std::chrono::nanoseconds threshold) noexcept {
    try {
        std::string line = fmt::format("corio: slow step: task '{}' held the loop for {:.1f} ms (threshold {:.1f} ms)\n",
                                       task.empty() ? "<unnamed>" : task, took.count() / 1e6, threshold.count() / 1e6);
        std::fputs(line.c_str(), stderr);
    } catch (...) {
    }
}

inline std::string dump_for_deadlock(event_loop& loop) { return format_tasks(dump_tasks(loop)); }

inline bool install_debug_hooks() noexcept {
    slow_step_hook = &fmt_slow_step;
    task_dump_hook = &dump_for_deadlock;
    return true;
}

// Including this header anywhere in a program installs the hooks at start-up.
inline const bool debug_hooks_installed = install_debug_hooks();

}  // namespace detail
}  // namespace corio
