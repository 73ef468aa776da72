// tests/support/soak.hpp: what the soak programs (tests/soak_*.cpp) share:
// reading the process's open descriptors and resident memory from /proc,
// flag parsing, and a verdict that collects failed checks.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace soak {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

/// Descriptors open in this process now (the entries of /proc/self/fd, less
/// the one opendir itself holds).
inline std::size_t open_fds() {
    DIR* d = opendir("/proc/self/fd");
    if (!d) throw std::runtime_error("soak: cannot open /proc/self/fd");
    std::size_t n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n - 1;
}

/// Resident set size in bytes (/proc/self/statm).
inline std::size_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// The value of `--name N` or `--name=N` in argv, or `fallback`.
inline long flag(int argc, char** argv, std::string_view name, long fallback) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.substr(0, name.size()) != name) continue;
        std::string_view rest = a.substr(name.size());
        const char* value = nullptr;
        if (rest.empty() && i + 1 < argc) value = argv[i + 1];
        else if (!rest.empty() && rest.front() == '=') value = rest.data() + 1;
        if (!value) continue;
        char* end = nullptr;
        long v = std::strtol(value, &end, 10);
        if (end == value || *end != '\0' || v < 0)
            throw std::invalid_argument("soak: " + std::string(name) + " needs a non-negative integer, got '" + value +
                                        "'");
        return v;
    }
    return fallback;
}

/// Failed checks, printed at the end; the exit status says whether any failed.
struct verdict {
    std::vector<std::string> failures;

    void check(bool ok, const std::string& what) {
        if (!ok) failures.push_back(what);
    }
    int finish(const char* program) const {
        for (const auto& f : failures) std::fprintf(stderr, "%s: FAILED: %s\n", program, f.c_str());
        if (failures.empty()) std::printf("%s: all checks passed\n", program);
        return failures.empty() ? 0 : 1;
    }
};

}  // namespace soak
