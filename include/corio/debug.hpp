// corio/debug.hpp: diagnostics: slow-step warnings and task dumps.
//
// The only corio header that needs fmt (link fmt::fmt); it is therefore not
// included by corio/corio.hpp: include it yourself. Including it anywhere in
// a program also routes the loop's slow-step warnings through fmt (the
// deadlock report of run() lists the tasks with or without it).
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
//   the program's symbol tables (see detail/task_tree.hpp); a stripped
//   program shows module+offset instead. States: pending (not started),
//   running, waiting (parked in an awaiter), joining (waiting for its child
//   chains or tasks), scheduled (ready, or in a wait that cancellation cannot
//   cut short, such as to_thread's), done, failed, cancelled.
// - dump_tasks_on_signal(SIGQUIT) -> task<void>: spawn it, and each such
//   signal prints the dump (Ctrl-\ in a terminal). Cancellation point.
// - The deadlock report of run() (invalid_state_error) ends with the same
//   dump, with or without this header (loop.hpp makes it, without fmt).
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

#include <fmt/format.h>

#include "detail/task_tree.hpp"
#include "loop.hpp"
#include "signal.hpp"
#include "task.hpp"

namespace corio {

/// One line of a task dump: depth, kind ("task", or "child" for a
/// combinator's child chain), name, state, cancel_requested, coroutine and
/// awaiting (see detail/task_tree.hpp).
using task_dump = detail::task_line;

/// The live tasks of `loop`, as a tree in depth-first order. Call on the loop's thread.
inline std::vector<task_dump> dump_tasks(event_loop& loop) {
    return detail::collect_tasks(detail::loop_access::core(loop));
}
/// The live tasks of the running loop.
inline std::vector<task_dump> dump_tasks() { return dump_tasks(current_loop()); }

/// The dump as text, one indented line per entry.
inline std::string format_tasks(const std::vector<task_dump>& tasks) { return detail::format_task_lines(tasks); }

/// Writes the dump of `loop` to stderr.
inline void print_tasks(event_loop& loop) { std::fputs(format_tasks(dump_tasks(loop)).c_str(), stderr); }
/// Writes the dump of the running loop to stderr.
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

inline void fmt_slow_step(std::string_view task, std::chrono::nanoseconds took,
                          std::chrono::nanoseconds threshold) noexcept {
    try {
        std::string line =
            fmt::format("corio: slow step: task '{}' held the loop for {:.1f} ms (threshold {:.1f} ms)\n",
                        task.empty() ? "<unnamed>" : task, took.count() / 1e6, threshold.count() / 1e6);
        std::fputs(line.c_str(), stderr);
    } catch (...) {
    }
}

inline bool install_debug_hooks() noexcept {
    slow_step_hook = &fmt_slow_step;
    return true;
}

// Including this header anywhere in a program installs the hooks at start-up.
inline const bool debug_hooks_installed = install_debug_hooks();

}  // namespace detail
}  // namespace corio
