// unary_driver.cpp: C API around a Verilator model of a combinational one-operand module
// (x -> y, e.g. fp_to_fmt: binary32 -> format, fmt_to_fp32: format -> binary32), loaded from
// Python with ctypes (sim/rtlsim.py builds it once per parameter set, like binop.cpp).
//
// The model class comes from the compiler command line: -DRTLSIM_TOP=V<top> and
// -include V<top>.h. x and y may have different widths: Verilator declares each port as a
// reference to CData/SData/IData/QData by its width, and the C API uses the same integer types,
// so Python picks uint8/16/32/64 arrays from rtlsim_in_bytes() / rtlsim_out_bytes(). One handle
// must not be used by two threads at once.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "verilated.h"

#ifndef RTLSIM_TOP
#error "compile with -DRTLSIM_TOP=V<top> -include V<top>.h"
#endif

namespace {

using Top = RTLSIM_TOP;
using In = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<Top&>().x)>>;
using Out = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<Top&>().y)>>;
static_assert(std::is_integral<In>::value, "unary driver: x wider than 64 bits is not supported");
static_assert(std::is_integral<Out>::value, "unary driver: y wider than 64 bits is not supported");

struct Handle {
    VerilatedContext ctx;
    Top model;
    Handle() : ctx{}, model{&ctx, "top"} {}
};

}  // namespace

extern "C" {

// Bytes per input / output element: 1, 2, 4 or 8.
int rtlsim_in_bytes() { return static_cast<int>(sizeof(In)); }
int rtlsim_out_bytes() { return static_cast<int>(sizeof(Out)); }

void* rtlsim_new() { return new Handle(); }

void rtlsim_free(void* h) {
    auto* handle = static_cast<Handle*>(h);
    handle->model.final();
    delete handle;
}

// y[i] = module(x[i]) for i < n: one eval() per element.
void rtlsim_run(void* h, const In* x, Out* y, size_t n) {
    Top& m = static_cast<Handle*>(h)->model;
    for (size_t i = 0; i < n; ++i) {
        m.x = x[i];
        m.eval();
        y[i] = m.y;
    }
}

}  // extern "C"
