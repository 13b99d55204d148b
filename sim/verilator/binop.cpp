// binop.cpp: C API around a Verilator model of a combinational two-operand module (a, b -> y),
// loaded from Python with ctypes (sim/rtlsim.py builds it once per parameter set).
//
// The model comes from the compiler command line: -DRTLSIM_TOP=V<top> -include V<top>.h, and
// the operand type and lane count from -DRTLSIM_ELEM=uint<N>_t -DRTLSIM_LANES=<L>. The top has
// ports a, b, y of L * W bits holding L independent lanes (lane i in bits [i*W +: W]); with
// L > 1 it is a generated wrapper of L instances, so one eval() computes L pairs, which is what
// makes this fast (the per-eval overhead dominates a small combinational module). Lanes are
// copied with memcpy, so W must be the element's full width when L > 1 (rtlsim.py ensures it).
//
// Handles (rtlsim_new / rtlsim_free, one model each, thread rules): rtlsim_model.h.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if !defined(RTLSIM_TOP) || !defined(RTLSIM_ELEM) || !defined(RTLSIM_LANES)
#error "compile with -DRTLSIM_TOP=V<top> -include V<top>.h -DRTLSIM_ELEM=... -DRTLSIM_LANES=..."
#endif

#include "rtlsim_model.h"

namespace {

using rtlsim::Top;
using Elem = RTLSIM_ELEM;
constexpr size_t kLanes = RTLSIM_LANES;
template <typename T>
using Port = std::remove_cv_t<std::remove_reference_t<T>>;
using PortA = Port<decltype(std::declval<Top&>().a)>;
using PortY = Port<decltype(std::declval<Top&>().y)>;
static_assert(std::is_unsigned<Elem>::value, "RTLSIM_ELEM must be an unsigned integer type");
static_assert(sizeof(PortA) >= kLanes * sizeof(Elem) && sizeof(PortY) >= kLanes * sizeof(Elem),
              "ports narrower than RTLSIM_LANES * RTLSIM_ELEM");
static_assert(std::is_trivially_copyable<PortA>::value && std::is_trivially_copyable<PortY>::value,
              "ports must be plain integers or VlWide");

}  // namespace

extern "C" {

// Bytes per operand/result element: 1, 2, 4 or 8.
int rtlsim_elem_bytes() { return static_cast<int>(sizeof(Elem)); }

// Pairs computed per eval().
int rtlsim_lanes() { return static_cast<int>(kLanes); }

// y[i] = module(a[i], b[i]) for i < n; a short last group is padded with zero operands.
void rtlsim_run(void* h, const Elem* a, const Elem* b, Elem* y, size_t n) {
    Top& m = rtlsim::model_of(h);
    constexpr size_t group = kLanes * sizeof(Elem);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        std::memcpy(static_cast<void*>(&m.a), a + i, group);
        std::memcpy(static_cast<void*>(&m.b), b + i, group);
        m.eval();
        std::memcpy(y + i, static_cast<const void*>(&m.y), group);
    }
    if (i < n) {
        Elem ta[kLanes] = {}, tb[kLanes] = {}, ty[kLanes];
        const size_t rest = n - i;
        std::memcpy(ta, a + i, rest * sizeof(Elem));
        std::memcpy(tb, b + i, rest * sizeof(Elem));
        std::memcpy(static_cast<void*>(&m.a), ta, group);
        std::memcpy(static_cast<void*>(&m.b), tb, group);
        m.eval();
        std::memcpy(ty, static_cast<const void*>(&m.y), group);
        std::memcpy(y + i, ty, rest * sizeof(Elem));
    }
}

}  // extern "C"
