// unary_driver.cpp: C API around a Verilator model of a combinational one-operand module
// (x -> y, e.g. fp_to_fmt: binary32 -> format, fmt_to_fp32: format -> binary32), loaded from
// Python with ctypes (sim/rtlsim.py builds it once per parameter set, like binop.cpp).
//
// The model class comes from the compiler command line: -DRTLSIM_TOP=V<top> and
// -include V<top>.h. x and y may have different widths: Verilator declares each port as a
// reference to CData/SData/IData/QData by its width, and the C API uses the same integer types,
// so Python picks uint8/16/32/64 arrays from rtlsim_in_bytes() / rtlsim_out_bytes(). Handles
// (rtlsim_new / rtlsim_free, one model each, thread rules): rtlsim_model.h.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rtlsim_model.h"

namespace {

using rtlsim::Top;
using In = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<Top&>().x)>>;
using Out = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<Top&>().y)>>;
static_assert(std::is_integral<In>::value, "unary driver: x wider than 64 bits is not supported");
static_assert(std::is_integral<Out>::value, "unary driver: y wider than 64 bits is not supported");

}  // namespace

extern "C" {

// Bytes per input / output element: 1, 2, 4 or 8.
int rtlsim_in_bytes() { return static_cast<int>(sizeof(In)); }
int rtlsim_out_bytes() { return static_cast<int>(sizeof(Out)); }

// y[i] = module(x[i]) for i < n: one eval() per element.
void rtlsim_run(void* h, const In* x, Out* y, size_t n) {
    Top& m = rtlsim::model_of(h);
    for (size_t i = 0; i < n; ++i) {
        m.x = x[i];
        m.eval();
        y[i] = m.y;
    }
}

}  // extern "C"
