// dot_driver.cpp: C API around a Verilator model of the fused dot-product step (dot_datapath, or
// its lanes wrapper sim/hdl/dot_datapath_lanes.v), loaded from Python with ctypes
// (sim/rtlsim.py: DotOp).
//
// The model comes from the compiler command line: -DRTLSIM_TOP=V<top> -include V<top>.h, the
// operand element type, the products per step and the lanes from -DRTLSIM_ELEM=uint<N>_t
// -DRTLSIM_K=<K> -DRTLSIM_LANES=<L>. The top has ports a, b of L * K * W bits (step l's K
// operands at bits [l*K*W +: K*W], lane i of it at i*W), acc and y of L * 32 bits; one eval()
// computes L steps. W must be the element's full width (8 or 16 bits), so that the operands of
// consecutive steps are consecutive elements and memcpy packs them (rtlsim.py ensures it).
//
// Each handle owns its own VerilatedContext and model (one thread per handle at a time).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "verilated.h"

#if !defined(RTLSIM_TOP) || !defined(RTLSIM_ELEM) || !defined(RTLSIM_K) || !defined(RTLSIM_LANES)
#error "compile with -DRTLSIM_TOP=V<top> -include V<top>.h -DRTLSIM_ELEM=... -DRTLSIM_K=... -DRTLSIM_LANES=..."
#endif

namespace {

using Top = RTLSIM_TOP;
using Elem = RTLSIM_ELEM;
constexpr size_t kK = RTLSIM_K;
constexpr size_t kLanes = RTLSIM_LANES;
template <typename T>
using Port = std::remove_cv_t<std::remove_reference_t<T>>;
using PortA = Port<decltype(std::declval<Top&>().a)>;
using PortAcc = Port<decltype(std::declval<Top&>().acc)>;
using PortY = Port<decltype(std::declval<Top&>().y)>;
static_assert(std::is_unsigned<Elem>::value, "RTLSIM_ELEM must be an unsigned integer type");
static_assert(sizeof(PortA) >= kLanes * kK * sizeof(Elem), "operand ports too narrow");
static_assert(sizeof(PortAcc) >= kLanes * 4 && sizeof(PortY) >= kLanes * 4,
              "accumulator/result ports too narrow");

struct Handle {
    VerilatedContext ctx;
    Top model;
    Handle() : ctx{}, model{&ctx, "top"} {}
};

}  // namespace

extern "C" {

int rtlsim_elem_bytes() { return static_cast<int>(sizeof(Elem)); }
int rtlsim_k() { return static_cast<int>(kK); }
int rtlsim_lanes() { return static_cast<int>(kLanes); }

void* rtlsim_new() { return new Handle(); }

void rtlsim_free(void* h) {
    auto* handle = static_cast<Handle*>(h);
    handle->model.final();
    delete handle;
}

// y[s] = dot(acc[s], a[s*K .. s*K+K-1], b[s*K .. s*K+K-1]) for s < n; a short last group of
// steps is padded with zero operands and accumulators.
void rtlsim_dot_run(void* h, const Elem* a, const Elem* b, const uint32_t* acc, uint32_t* y,
                    size_t n) {
    Top& m = static_cast<Handle*>(h)->model;
    constexpr size_t ops = kLanes * kK * sizeof(Elem);
    constexpr size_t words = kLanes * sizeof(uint32_t);
    size_t s = 0;
    for (; s + kLanes <= n; s += kLanes) {
        std::memcpy(static_cast<void*>(&m.a), a + s * kK, ops);
        std::memcpy(static_cast<void*>(&m.b), b + s * kK, ops);
        std::memcpy(static_cast<void*>(&m.acc), acc + s, words);
        m.eval();
        std::memcpy(y + s, static_cast<const void*>(&m.y), words);
    }
    if (s < n) {
        Elem ta[kLanes * kK] = {}, tb[kLanes * kK] = {};
        uint32_t tacc[kLanes] = {}, ty[kLanes];
        const size_t rest = n - s;
        std::memcpy(ta, a + s * kK, rest * kK * sizeof(Elem));
        std::memcpy(tb, b + s * kK, rest * kK * sizeof(Elem));
        std::memcpy(tacc, acc + s, rest * sizeof(uint32_t));
        std::memcpy(static_cast<void*>(&m.a), ta, ops);
        std::memcpy(static_cast<void*>(&m.b), tb, ops);
        std::memcpy(static_cast<void*>(&m.acc), tacc, words);
        m.eval();
        std::memcpy(ty, static_cast<const void*>(&m.y), words);
        std::memcpy(y + s, ty, rest * sizeof(uint32_t));
    }
}

}  // extern "C"
