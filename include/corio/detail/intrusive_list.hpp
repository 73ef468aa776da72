// corio/detail/intrusive_list.hpp: the one intrusive doubly linked list
// (wait lists of every primitive, the signal hub's waiters, the frame pool's
// partial slabs, a pool's idle items).
//
// Invariants:
// - A list_hook<Tag> is in at most one list at a time; `list_` is that list
//   exactly while it is linked (prev/next are meaningful only then), so
//   unlinking needs nothing but the node, and a hook unlinks itself when it is
//   destroyed while still in a list (a waiter whose frame is destroyed while
//   it is parked: nobody writes `if (linked) list.erase(this)`).
// - An object in several lists at once derives from one list_hook per list,
//   each with its own Tag.
// - The list owns nothing and never allocates; push and erase are O(1) and
//   size() is kept. Copying or moving a hook gives an unlinked hook (an
//   operation is moved before it starts; a linked one is pinned).
#pragma once

#include <cstddef>

namespace corio::detail {

class list_base;

/// The links themselves, the same for every Tag.
struct hook_links {
    hook_links* prev_ = nullptr;
    hook_links* next_ = nullptr;
    list_base* list_ = nullptr;
};

/// The links one list needs in a node; T derives from list_hook<Tag>.
template <class Tag = void>
class list_hook : hook_links {
public:
    list_hook() noexcept = default;
    list_hook(const list_hook&) noexcept : hook_links() {}
    list_hook& operator=(const list_hook&) noexcept { return *this; }
    ~list_hook() { unlink(); }

    bool linked() const noexcept { return list_ != nullptr; }
    /// Leaves whatever list this node is in (nothing when it is in none).
    inline void unlink() noexcept;

private:
    friend class list_base;
    template <class, class>
    friend class intrusive_list;
};

/// The untyped core: head, tail and size over the links.
class list_base {
public:
    list_base() noexcept = default;
    list_base(const list_base&) = delete;
    list_base& operator=(const list_base&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }

    /// Unlinks `n`, which is in this list.
    void erase_links(hook_links* n) noexcept {
        if (n->prev_) n->prev_->next_ = n->next_;
        else head_ = n->next_;
        if (n->next_) n->next_->prev_ = n->prev_;
        else tail_ = n->prev_;
        n->prev_ = n->next_ = nullptr;
        n->list_ = nullptr;
        --size_;
    }

protected:
    void push_back_links(hook_links* n) noexcept {
        n->prev_ = tail_;
        n->next_ = nullptr;
        n->list_ = this;
        if (tail_) tail_->next_ = n;
        else head_ = n;
        tail_ = n;
        ++size_;
    }
    void push_front_links(hook_links* n) noexcept {
        n->prev_ = nullptr;
        n->next_ = head_;
        n->list_ = this;
        if (head_) head_->prev_ = n;
        else tail_ = n;
        head_ = n;
        ++size_;
    }

    hook_links* head_ = nullptr;
    hook_links* tail_ = nullptr;
    std::size_t size_ = 0;
};

template <class Tag>
inline void list_hook<Tag>::unlink() noexcept {
    if (list_) list_->erase_links(this);
}

/// A list of T, linked through T's list_hook<Tag> base.
template <class T, class Tag = void>
class intrusive_list : public list_base {
    using hook = list_hook<Tag>;

public:
    T* front() const noexcept { return from(head_); }
    T* back() const noexcept { return from(tail_); }
    /// The node after `n` (towards the back), or null.
    static T* next(T* n) noexcept { return from(links(n)->next_); }

    void push_back(T* n) noexcept { push_back_links(links(n)); }
    void push_front(T* n) noexcept { push_front_links(links(n)); }
    void erase(T* n) noexcept { erase_links(links(n)); }
    T* pop_front() noexcept {
        T* n = front();
        if (n) erase(n);
        return n;
    }

private:
    static hook_links* links(T* n) noexcept { return static_cast<hook_links*>(static_cast<hook*>(n)); }
    static T* from(hook_links* h) noexcept { return h ? static_cast<T*>(static_cast<hook*>(h)) : nullptr; }
};

}  // namespace corio::detail
