// corio/detail/frame_allocator.hpp: per-thread slab allocator for coroutine
// frames and task states, and the thread's one recycled big block (under
// recycled_array.hpp). big_array.hpp holds the loop's mapped arrays.
//
// Invariants:
// - Blocks come in 8-byte size classes up to max_pooled bytes. Coroutine
//   frames need 16-byte alignment and are rounded up to a multiple of 16
//   (frame_allocate); 8-byte-aligned objects (task states, pooled) use the
//   classes between (object_allocate): a 72-byte task state costs 72. A block lives
//   in a 64 KiB slab aligned to 64 KiB, so the slab header is found by masking
//   the block's address. Bigger requests go to the global operator new.
// - Each thread owns one pool. A block freed on its owner thread goes straight
//   back to its slab; a block freed on another thread is pushed onto the
//   owner's lock-free `remote` stack and reclaimed by the owner later. Pools
//   are never destroyed (a frame may outlive the thread that allocated it).
// - Slabs are mapped 32 at a time (one mmap per 2 MiB). A slab that becomes
//   empty goes to the pool's cache of empty slabs unless it is the last of
//   its class; the cache is returned to the system when a whole second passed
//   without reusing it (checked by the event loop as it runs: decay_frame_cache)
//   or on trim_frame_cache(). So a burst of tasks is fast when it repeats and
//   memory returns to baseline when it does not (jemalloc's decay, simplified).
// - With AddressSanitizer, or CORIO_NO_FRAME_POOL defined, every block goes to
//   the global operator new so the sanitizer sees each frame.
// - The pool is reached through a thread_local. Clang may cache a
//   thread_local's address across a suspension (LLVM 47179), which would be
//   wrong for a coroutine that resumes on another thread; corio never resumes
//   a coroutine on a thread other than its loop's, and frames are allocated
//   in ramp functions, so reading the pool's TLS slot inline is safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

#include "intrusive_list.hpp"

#if defined(__unix__)
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_DETAIL_ASAN 1
#endif
#endif

#if defined(CORIO_DETAIL_ASAN) && !defined(CORIO_NO_FRAME_POOL)
#define CORIO_NO_FRAME_POOL 1
#endif

namespace corio::detail {

inline constexpr std::size_t slab_bytes = 64 * 1024;
inline constexpr std::size_t size_step = 8;
inline constexpr std::size_t max_pooled = 1024;
inline constexpr std::size_t class_count = max_pooled / size_step;

struct frame_pool;

/// A slab's header, at its start. Linked (its hook) exactly while it is in
/// its owner's partial list for its class: it has a free block.
struct slab : list_hook<> {
    slab(frame_pool* o, char* first, char* last, std::uint32_t block_bytes) noexcept
        : owner(o), bump(first), end(last), block(block_bytes) {}

    frame_pool* owner;
    void* free_list = nullptr;
    char* bump;
    char* end;
    std::uint32_t used = 0;
    std::uint32_t block;
};

inline constexpr std::uint8_t hot_max = 32;

struct frame_pool {
    intrusive_list<slab> partial[class_count];
    // Per-class stacks of recently freed blocks, still counted as used in
    // their slabs: the common free-then-allocate-again pair (a ready await,
    // a spawn+join) costs a push and a pop. At most hot_max per class.
    void* hot[class_count] = {};
    std::uint8_t hot_count[class_count] = {};
    void* empty = nullptr;  // cached empty slabs, linked through their first word
    std::size_t empty_count = 0;
    std::size_t reused = 0;  // slabs taken from the cache since the last decay check
    std::chrono::steady_clock::time_point cached_since{};
    std::atomic<void*> remote{nullptr};
};

inline constexpr std::size_t chunk_slabs = 32;
inline constexpr std::chrono::seconds cache_decay{1};

inline void cache_slab(frame_pool& pool, void* s) noexcept {
    *static_cast<void**>(s) = pool.empty;
    pool.empty = s;
    if (pool.empty_count++ == 0) {
        pool.cached_since = std::chrono::steady_clock::now();
        pool.reused = 0;
    }
}

inline void release_slab(void* p) noexcept {
#if defined(__unix__)
    ::munmap(p, slab_bytes);
#else
    std::free(p);
#endif
}

/// An empty slab: from the cache, or from the system (a chunk of slabs per
/// mmap; the unused ones go to the cache and cost no RSS until touched).
inline void* take_slab(frame_pool& pool) {
    if (void* s = pool.empty) {
        pool.empty = *static_cast<void**>(s);
        --pool.empty_count;
        ++pool.reused;
        return s;
    }
#if defined(__unix__)
    const std::size_t bytes = chunk_slabs * slab_bytes;
    void* raw = ::mmap(nullptr, bytes + slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    auto base = reinterpret_cast<std::uintptr_t>(raw);
    std::uintptr_t aligned = (base + slab_bytes - 1) & ~(slab_bytes - 1);
    if (aligned != base) ::munmap(raw, aligned - base);
    std::uintptr_t tail = base + bytes + slab_bytes - (aligned + bytes);
    if (tail) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    for (std::size_t i = chunk_slabs - 1; i >= 1; --i)
        cache_slab(pool, reinterpret_cast<void*>(aligned + i * slab_bytes));
    return reinterpret_cast<void*>(aligned);
#else
    void* mem = std::aligned_alloc(slab_bytes, slab_bytes);
    if (!mem) throw std::bad_alloc();
    return mem;
#endif
}

inline void free_local(frame_pool& pool, void* p) noexcept;

/// Returns every cached empty slab of `pool` to the system (after giving the
/// hot blocks back to their slabs, so that those can empty too).
inline void trim_pool(frame_pool& pool) noexcept {
    for (std::size_t cls = 0; cls < class_count; ++cls) {
        while (void* p = pool.hot[cls]) {
            pool.hot[cls] = *static_cast<void**>(p);
            free_local(pool, p);
        }
        pool.hot_count[cls] = 0;
    }
    while (void* s = pool.empty) {
        pool.empty = *static_cast<void**>(s);
        release_slab(s);
    }
    pool.empty_count = 0;
    pool.reused = 0;
}

inline slab* slab_of(void* p) noexcept {
    return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(p) & ~(slab_bytes - 1));
}

inline void unlist(frame_pool& pool, std::size_t cls, slab* s) noexcept { pool.partial[cls].erase(s); }

inline void enlist(frame_pool& pool, std::size_t cls, slab* s) noexcept { pool.partial[cls].push_front(s); }

inline void free_local(frame_pool& pool, void* p) noexcept {
    slab* s = slab_of(p);
    std::size_t cls = s->block / size_step - 1;
    *static_cast<void**>(p) = s->free_list;
    s->free_list = p;
    --s->used;
    if (!s->linked()) enlist(pool, cls, s);
    if (s->used == 0 && pool.partial[cls].size() > 1) {  // not the last of its class
        unlist(pool, cls, s);
        cache_slab(pool, s);
    }
}

inline void reclaim_remote(frame_pool& pool) noexcept {
    void* p = pool.remote.exchange(nullptr, std::memory_order_acquire);
    while (p) {
        void* next = *static_cast<void**>(p);
        free_local(pool, p);
        p = next;
    }
}

inline thread_local frame_pool* tls_pool = nullptr;  // constant-initialised: no TLS guard on the hot path

[[gnu::noinline]] inline frame_pool& make_thread_pool() {
    tls_pool = new frame_pool;  // never freed: see invariants
    return *tls_pool;
}

inline frame_pool& this_thread_pool() {
    if (frame_pool* p = tls_pool) [[likely]]
        return *p;
    return make_thread_pool();
}

/// The slow half of object_allocate: no recycled block of class `cls`.
[[gnu::noinline]] inline void* allocate_from_slab(frame_pool& pool, std::size_t cls) {
    slab* s = pool.partial[cls].front();
    if (!s && pool.remote.load(std::memory_order_relaxed)) {
        reclaim_remote(pool);
        s = pool.partial[cls].front();
    }
    if (!s) {
        void* mem = take_slab(pool);
        std::uint32_t block = static_cast<std::uint32_t>((cls + 1) * size_step);
        char* first = static_cast<char*>(mem) + ((sizeof(slab) + 15) / 16) * 16;
        s = ::new (mem) slab(&pool, first, static_cast<char*>(mem) + slab_bytes, block);  // never destroyed: unmapped
        enlist(pool, cls, s);
    }
    void* p;
    if (s->free_list) {
        p = s->free_list;
        s->free_list = *static_cast<void**>(p);
    } else {
        p = s->bump;
        s->bump += s->block;
    }
    ++s->used;
    if (!s->free_list && s->bump + s->block > s->end) unlist(pool, cls, s);
    return p;
}

/// The slow half of object_deallocate: the hot stack is full, or `p`
/// belongs to another thread's pool.
[[gnu::noinline]] inline void deallocate_to_slab(frame_pool& pool, slab* s, void* p) noexcept {
    if (s->owner == &pool) {
        free_local(pool, p);
        return;
    }
    frame_pool& owner = *s->owner;
    void* head = owner.remote.load(std::memory_order_relaxed);
    do {
        *static_cast<void**>(p) = head;
    } while (!owner.remote.compare_exchange_weak(head, p, std::memory_order_release, std::memory_order_relaxed));
}

/// A block of at least `n` bytes aligned to 8 (to 16 when `n` is a multiple of 16).
[[gnu::always_inline]] inline void* object_allocate(std::size_t n) {
#if !defined(CORIO_NO_FRAME_POOL)
    if (n <= max_pooled) {
        const std::size_t cls = n == 0 ? 0 : (n + size_step - 1) / size_step - 1;
        frame_pool& pool = this_thread_pool();
        if (void* hot = pool.hot[cls]) [[likely]] {
            pool.hot[cls] = *static_cast<void**>(hot);
            --pool.hot_count[cls];
            return hot;
        }
        return allocate_from_slab(pool, cls);
    }
#endif
    return ::operator new(n);
}

[[gnu::always_inline]] inline void object_deallocate(void* p, std::size_t n) noexcept {
#if !defined(CORIO_NO_FRAME_POOL)
    if (n <= max_pooled) {
        frame_pool& pool = this_thread_pool();
        slab* s = slab_of(p);
        const std::size_t cls = s->block / size_step - 1;
        if (s->owner == &pool && pool.hot_count[cls] < hot_max) [[likely]] {
            *static_cast<void**>(p) = pool.hot[cls];
            pool.hot[cls] = p;
            ++pool.hot_count[cls];
            return;
        }
        deallocate_to_slab(pool, s, p);
        return;
    }
#endif
#if defined(__cpp_sized_deallocation)
    ::operator delete(p, n);
#else
    (void)n;
    ::operator delete(p);
#endif
}

/// A block for a coroutine frame (or anything else): 16-byte aligned.
inline void* frame_allocate(std::size_t n) { return object_allocate((n + 15) & ~std::size_t{15}); }
inline void frame_deallocate(void* p, std::size_t n) noexcept { object_deallocate(p, (n + 15) & ~std::size_t{15}); }

/// One recycled big block per thread, for combinators' per-child arrays
/// (gather of a million tasks needs a 100 MiB array: without recycling,
/// every such gather maps and faults it in afresh).
struct big_block {
    void* p = nullptr;
    std::size_t bytes = 0;
    bool reused = false;
};

inline big_block& this_thread_big_block() noexcept {
    static thread_local big_block b;
    return b;
}

/// At least `bytes` bytes; `bytes` is updated to the block's real size.
inline void* big_allocate(std::size_t& bytes) {
#if !defined(CORIO_NO_FRAME_POOL)
    big_block& b = this_thread_big_block();
    if (b.p && b.bytes >= bytes && b.bytes / 2 <= bytes) {
        bytes = b.bytes;
        b.reused = true;
        return std::exchange(b.p, nullptr);
    }
#endif
    return ::operator new(bytes);
}

inline void big_deallocate(void* p, std::size_t bytes) noexcept {
#if !defined(CORIO_NO_FRAME_POOL)
    big_block& b = this_thread_big_block();
    if (b.p) ::operator delete(b.p);
    b.p = p;
    b.bytes = bytes;
#else
    (void)bytes;
    ::operator delete(p);
#endif
}

/// Returns this thread's cached empty slabs (and big block) to the system now.
inline void trim_frame_cache() noexcept {
#if !defined(CORIO_NO_FRAME_POOL)
    trim_pool(this_thread_pool());
    big_block& b = this_thread_big_block();
    if (b.p) ::operator delete(b.p);
    b = big_block{};
#endif
}

/// Called by the event loop as it runs: returns the cache once a whole
/// decay period passed without reusing any of it.
inline void decay_frame_cache() noexcept {
#if !defined(CORIO_NO_FRAME_POOL)
    frame_pool& pool = this_thread_pool();
    big_block& b = this_thread_big_block();
    if (pool.empty_count == 0 && !b.p) return;
    auto now = std::chrono::steady_clock::now();
    if (pool.empty_count == 0) pool.cached_since = now;  // only the big block is cached
    if (now - pool.cached_since < cache_decay) return;
    if (pool.reused == 0) trim_pool(pool);
    if (b.p && !b.reused) {
        ::operator delete(b.p);
        b = big_block{};
    }
    b.reused = false;
    pool.reused = 0;
    pool.cached_since = now;
#endif
}

/// Base for objects that live in the frame pool (task states, combinator
/// nodes) in 8-byte size classes: such objects must not be over-aligned
/// beyond 8 (their types check alignof).
struct pooled {
    static void* operator new(std::size_t n) { return object_allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { object_deallocate(p, n); }
};

}  // namespace corio::detail
