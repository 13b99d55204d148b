// rtlsim_model.h: the model handle and its constructor / destructor, shared by the rtlsim
// drivers (binop.cpp, unary_driver.cpp). Include it once, in the driver's only translation unit.
//
// The model class comes from the compiler command line (sim/rtlsim.py): -DRTLSIM_TOP=V<top>
// and -include V<top>.h. Each handle owns its own VerilatedContext and model, so Python threads
// can evaluate separate handles concurrently (ctypes releases the GIL during the call); one
// handle must not be used by two threads at once.
#pragma once

#include "verilated.h"

#ifndef RTLSIM_TOP
#error "compile with -DRTLSIM_TOP=V<top> -include V<top>.h"
#endif

namespace rtlsim {

using Top = RTLSIM_TOP;

struct Handle {
    VerilatedContext ctx;
    Top model;
    Handle() : ctx{}, model{&ctx, "top"} {}
};

// The model behind a handle returned by rtlsim_new().
inline Top& model_of(void* h) { return static_cast<Handle*>(h)->model; }

}  // namespace rtlsim

extern "C" {

void* rtlsim_new() { return new rtlsim::Handle(); }

void rtlsim_free(void* h) {
    auto* handle = static_cast<rtlsim::Handle*>(h);
    handle->model.final();
    delete handle;
}

}  // extern "C"
