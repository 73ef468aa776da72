// corio/detail/big_array.hpp: the growable mapped array under the loop's
// ready queue ring and timer heap.
//
// Invariants: holds trivially copyable T only (it grows by mremap or a
// byte copy); from mapped_from bytes the buffer is its own mapping, below it
// comes from operator new; with CORIO_NO_FRAME_POOL (ASan) always from
// operator new, so the sanitizer sees it.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#include "frame_allocator.hpp"  // CORIO_NO_FRAME_POOL

#if defined(__unix__)
#include <sys/mman.h>
#endif

namespace corio::detail {

/// Storage for the loop's big arrays (ready queue ring, timer heap) of
/// trivially copyable T. From 256 KiB a buffer is mapped directly and grows
/// or shrinks with mremap: no second buffer while it doubles (a million
/// spawns would otherwise hold 4 + 8 MiB at once) and no copy. Through
/// malloc, freeing a big buffer would also raise glibc's dynamic mmap
/// threshold, after which the array's next smaller buffers come from the brk
/// heap and stay resident (a million spawns left ~5 MiB behind that way).
template <class T>
class big_array {
    static_assert(std::is_trivially_copyable_v<T>);

public:
    static constexpr std::size_t mapped_from = 256 * 1024;

    big_array() noexcept = default;
    big_array(const big_array&) = delete;
    big_array& operator=(const big_array&) = delete;
    ~big_array() { release(); }

    T* data() const noexcept { return p_; }
    std::size_t capacity() const noexcept { return cap_; }
    T& operator[](std::size_t i) const noexcept { return p_[i]; }

    /// Makes the capacity `n`, keeping the first min(n, capacity()) elements.
    void reallocate(std::size_t n) {
        if (n == cap_) return;
        if (n == 0) {
            release();
            return;
        }
        [[maybe_unused]] const std::size_t old_bytes = cap_ * sizeof(T), new_bytes = n * sizeof(T);
#if defined(__linux__) && !defined(CORIO_NO_FRAME_POOL)
        if (mapped(old_bytes) && mapped(new_bytes)) {
            void* q = ::mremap(p_, old_bytes, new_bytes, MREMAP_MAYMOVE);
            if (q == MAP_FAILED) throw std::bad_alloc();
            p_ = static_cast<T*>(q);
            cap_ = n;
            return;
        }
#endif
        T* q = allocate(new_bytes);
        if (p_) std::memcpy(static_cast<void*>(q), p_, (n < cap_ ? n : cap_) * sizeof(T));
        release();
        p_ = q;
        cap_ = n;
    }

    /// Gives the whole pages inside elements [first, last) back to the system
    /// (they read as zero afterwards). Only for a mapped buffer; else a no-op.
    void discard(std::size_t first, std::size_t last) noexcept {
#if defined(__linux__) && !defined(CORIO_NO_FRAME_POOL)
        if (!mapped(cap_ * sizeof(T))) return;
        constexpr std::uintptr_t page = 4096;
        const auto begin = (reinterpret_cast<std::uintptr_t>(p_ + first) + page - 1) & ~(page - 1);
        const auto end = reinterpret_cast<std::uintptr_t>(p_ + last) & ~(page - 1);
        if (begin < end) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
        (void)first;
        (void)last;
#endif
    }

private:
    static bool mapped(std::size_t bytes) noexcept {
#if defined(__unix__) && !defined(CORIO_NO_FRAME_POOL)
        return bytes >= mapped_from;
#else
        (void)bytes;
        return false;
#endif
    }
    static T* allocate(std::size_t bytes) {
#if defined(__unix__) && !defined(CORIO_NO_FRAME_POOL)
        if (mapped(bytes)) {
            void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
            return static_cast<T*>(p);
        }
#endif
        return static_cast<T*>(::operator new(bytes));
    }
    void release() noexcept {
        if (p_) {
            [[maybe_unused]] const std::size_t bytes = cap_ * sizeof(T);
#if defined(__unix__) && !defined(CORIO_NO_FRAME_POOL)
            if (mapped(bytes)) ::munmap(p_, bytes);
            else
#endif
                ::operator delete(p_);
        }
        p_ = nullptr;
        cap_ = 0;
    }

    T* p_ = nullptr;
    std::size_t cap_ = 0;
};

}  // namespace corio::detail
