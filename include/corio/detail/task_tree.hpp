// corio/detail/task_tree.hpp: the live tasks of a scheduler as a tree of
// lines (task_line), and their text, without fmt: what the deadlock report
// of run() prints, what debug.hpp's dump_tasks() returns, and the names
// given to unnamed tasks in error reports.
//
// - The tree is the scope tree (scheduler.hpp) seen through its chain_roots:
//   each spawned task and each combinator child chain is one line, nested
//   under the task whose scopes hold it (cancel scopes and task groups are
//   looked through). Children are listed oldest first.
// - A line's state: a spawned task not yet started or already finished shows
//   its status; otherwise running (its chain is the one the scheduler runs),
//   waiting (parked in an awaiter, named in `awaiting`), joining (waiting for
//   child chains or tasks) or scheduled (ready, or in a wait cancellation
//   cannot cut short).
// - Names of coroutines and awaiters come from the dynamic symbol table
//   (dladdr) or, for local symbols (a coroutine's resume and destroy
//   functions always are), from the module file's full symbol table, read
//   once per module on the first lookup (Linux, 64-bit ELF). A stripped
//   program shows a code address as module+offset instead, which
//   `addr2line -f -C -e module offset` turns into a name.
// - Call on the loop's thread. Nothing here allocates on the loop's hot paths:
//   it runs only when a dump or a report is asked for.
#pragma once

#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if __has_include(<dlfcn.h>)
#include <dlfcn.h>
#endif
#if __has_include(<elf.h>) && defined(__linux__)
#include <elf.h>
#include <mutex>
#define CORIO_DETAIL_ELF_SYMTAB 1
#endif
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include "promise.hpp"
#include "scheduler.hpp"
#include "spawn_state.hpp"

namespace corio::detail {

/// One line of a task dump (corio::task_dump in debug.hpp).
struct task_line {
    std::size_t depth = 0;  // 0: a task of the loop; deeper: nested under the line above at depth - 1
    std::string kind;       // "task", "child" (a combinator's child chain)
    std::string name;       // the spawn name ("" when unnamed)
    std::string state;      // pending, running, waiting, joining, scheduled, done, failed, cancelled
    bool cancel_requested = false;
    std::string coroutine;  // the chain's outermost coroutine
    std::string awaiting;   // what the chain is suspended in ("" when not parked)
};

#if CORIO_DETAIL_ELF_SYMTAB
/// The full symbol table (.symtab) of one module file, read once: a
/// coroutine's resume and destroy functions are local symbols, which the
/// dynamic table dladdr reads never has, even with -rdynamic.
struct elf_symbols {
    std::string path;
    bool relative = true;  // ET_DYN (PIE, shared object): values are offsets from the load base
    std::vector<Elf64_Sym> syms;
    std::vector<char> names;

    static bool read_at(std::FILE* f, long off, void* out, std::size_t n) {
        return std::fseek(f, off, SEEK_SET) == 0 && std::fread(out, 1, n, f) == n;
    }
    void load() {
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
        Elf64_Ehdr eh{};
        if (!f || !read_at(f.get(), 0, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr))
            return;
        relative = eh.e_type == ET_DYN;
        std::vector<Elf64_Shdr> sh(eh.e_shnum);
        if (sh.empty() || !read_at(f.get(), static_cast<long>(eh.e_shoff), sh.data(), sh.size() * sizeof(Elf64_Shdr)))
            return;
        for (const Elf64_Shdr& s : sh) {
            if (s.sh_type != SHT_SYMTAB || s.sh_link >= sh.size()) continue;
            const Elf64_Shdr& str = sh[s.sh_link];
            syms.resize(s.sh_size / sizeof(Elf64_Sym));
            names.resize(str.sh_size + 1);
            if (!read_at(f.get(), static_cast<long>(s.sh_offset), syms.data(), syms.size() * sizeof(Elf64_Sym)) ||
                !read_at(f.get(), static_cast<long>(str.sh_offset), names.data(), str.sh_size)) {
                syms.clear();
                names.clear();
            }
            return;
        }
    }
    /// The mangled name of the function containing `value`, or null.
    const char* find(std::uintptr_t value) const noexcept {
        for (const Elf64_Sym& y : syms) {
            if (ELF64_ST_TYPE(y.st_info) != STT_FUNC || y.st_name >= names.size()) continue;
            if (value >= y.st_value && value < y.st_value + y.st_size) return names.data() + y.st_name;
        }
        return nullptr;
    }
};

/// The local function symbol at `addr` in module `path` loaded at `base`,
/// or "" (stripped file, unreadable file). Tables are cached per module.
inline std::string local_symbol(const char* path, const void* base, const void* addr) {
    static std::mutex m;
    static std::vector<std::unique_ptr<elf_symbols>> cache;
    std::lock_guard<std::mutex> lock(m);
    elf_symbols* t = nullptr;
    for (auto& c : cache)
        if (c->path == path) t = c.get();
    if (!t) {
        cache.push_back(std::make_unique<elf_symbols>());
        t = cache.back().get();
        t->path = path;
        t->load();
    }
    auto a = reinterpret_cast<std::uintptr_t>(addr);
    const char* name = t->find(t->relative ? a - reinterpret_cast<std::uintptr_t>(base) : a);
    return name ? std::string(name) : std::string();
}
#endif

/// A mangled name made readable: demangled, without parameters, clone
/// suffixes and corio's namespaces.
inline std::string readable_symbol(const std::string& mangled) {
    std::string name = mangled;
#if __has_include(<cxxabi.h>)
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                             std::free);
    if (status == 0 && d) name = d.get();
#endif
    if (auto p = name.find('('); p != std::string::npos && p > 0) name.erase(p);
    for (std::string_view noise : {"corio::detail::", "corio::"}) {
        for (auto q = name.find(noise); q != std::string::npos; q = name.find(noise)) name.erase(q, noise.size());
    }
    return name;
}

/// A readable name for a code address: its function's symbol (the dynamic
/// table, else the module's full symbol table), else module+offset, else
/// the address.
inline std::string symbol_name(const void* addr) {
    char buf[64];
#if __has_include(<dlfcn.h>)
    Dl_info info{};
    if (addr && dladdr(addr, &info)) {
        if (info.dli_sname) return readable_symbol(info.dli_sname);
#if CORIO_DETAIL_ELF_SYMTAB
        if (info.dli_fname) {
            // The main program's name is argv[0] (maybe relative, maybe ""): read it through /proc.
            const char* file = info.dli_fname[0] == '/' ? info.dli_fname : "/proc/self/exe";
            std::string local = local_symbol(file, info.dli_fbase, addr);
            if (!local.empty()) return readable_symbol(local);
        }
#endif
        if (info.dli_fname && info.dli_fbase) {
            const char* slash = std::strrchr(info.dli_fname, '/');
            std::snprintf(buf, sizeof buf, "+0x%llx",
                          static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(addr) -
                                                          reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
            return std::string(slash ? slash + 1 : info.dli_fname) + buf;
        }
    }
#endif
    std::snprintf(buf, sizeof buf, "%p", addr);
    return buf;
}

/// The function a coroutine frame runs, from the frame's first two words in
/// both ABIs: the resume function (null once the frame reached its final
/// suspension), then the destroy function.
inline std::string coroutine_name(std::coroutine_handle<> h) {
    if (!h) return "";
    void* const* words = static_cast<void* const*>(h.address());
    return symbol_name(words[0] ? words[0] : words[1]);
}

/// How an error report names a spawned task: 'name' when it has one, else
/// the coroutine it runs ("unnamed task running f").
inline std::string task_label(const spawn_state* s) {
    std::string_view name = s->name();
    if (!name.empty()) return "task '" + std::string(name) + "'";
    if (!s->frame) return "an unnamed task";
    return "unnamed task running " + coroutine_name(s->frame);
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

inline bool chain_is_running(const scheduler& sched, const chain* c) {
    return sched.running_ && promise_of(sched.running_).ch == c;
}

/// Whether a chain has child chains or tasks below it (it waits for them).
inline bool has_child_chain(const scope_node* s) noexcept {
    for (const scope_node* c = s->first_child; c; c = c->next_sibling) {
        if (c->kind == scope_kind::chain_root || has_child_chain(c)) return true;
    }
    return false;
}

inline void collect_chain_root(scheduler& sched, chain_root* r, std::size_t depth, std::vector<task_line>& out);

/// The chains below scope `s`, oldest first (children are linked newest first).
inline void collect_children(scheduler& sched, scope_node* s, std::size_t depth, std::vector<task_line>& out) {
    scope_node* c = s->first_child;
    while (c && c->next_sibling) c = c->next_sibling;
    for (; c; c = c->prev_sibling) {
        if (c->kind == scope_kind::chain_root) collect_chain_root(sched, static_cast<chain_root*>(c), depth, out);
        else collect_children(sched, c, depth, out);  // a cancel scope or task group: look through it
    }
}

inline void collect_chain_root(scheduler& sched, chain_root* r, std::size_t depth, std::vector<task_line>& out) {
    task_line d;
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
    collect_children(sched, r, depth + 1, out);
}

/// Every live task and child chain of `sched`, depth first.
inline std::vector<task_line> collect_tasks(scheduler& sched) {
    std::vector<task_line> out;
    collect_children(sched, &sched.root_scope_, 0, out);
    return out;
}

/// The lines as text: a header line, then one indented line per entry,
/// `- task 'name' [state, cancel requested] in coroutine, awaiting awaiter`.
inline std::string format_task_lines(const std::vector<task_line>& lines) {
    std::string s = "corio: " + std::to_string(lines.size()) + " live task(s) and child chain(s):\n";
    for (const task_line& t : lines) {
        s.append(2 * t.depth + 2, ' ');
        s += "- " + t.kind + " '" + t.name + "' [" + t.state + (t.cancel_requested ? ", cancel requested" : "") +
             "] in " + (t.coroutine.empty() ? std::string("?") : t.coroutine);
        if (!t.awaiting.empty()) s += ", awaiting " + t.awaiting;
        s += '\n';
    }
    return s;
}

}  // namespace corio::detail
