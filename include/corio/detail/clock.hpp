// corio/detail/clock.hpp: the clock every loop, deadline and sleep uses, and
// the saturating arithmetic on its time points.
//
// - clock is std::chrono::steady_clock (corio::clock names it publicly, see
//   loop.hpp); under virtual time the scheduler keeps its own now() in the
//   same units.
// - saturating_add(t, d) is `t + d` clamped to the clock's range, so that
//   `now() + duration::max()` means "never" instead of overflowing.
// - to_clock_duration(d) converts any std::chrono duration, clamping it first
//   (hours::max() does not overflow nanoseconds).
#pragma once

#include <chrono>

namespace corio::detail {

using clock = std::chrono::steady_clock;

/// `t + d`, clamped to the clock's range instead of overflowing.
inline clock::time_point saturating_add(clock::time_point t, clock::duration d) noexcept {
    if (d > clock::duration::zero() && t > clock::time_point::max() - d) return clock::time_point::max();
    if (d < clock::duration::zero() && t < clock::time_point::min() - d) return clock::time_point::min();
    return t + d;
}

template <class Rep, class Period>
clock::duration to_clock_duration(std::chrono::duration<Rep, Period> d) noexcept {
    using namespace std::chrono;
    // Clamp before converting so that e.g. hours::max() does not overflow nanoseconds.
    using wide = duration<long double, std::nano>;
    wide w = duration_cast<wide>(d);
    if (w >= wide(clock::duration::max())) return clock::duration::max();
    if (w <= wide(clock::duration::min())) return clock::duration::min();
    return duration_cast<clock::duration>(d);
}

}  // namespace corio::detail
