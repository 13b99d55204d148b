// mac_array_driver.cpp: C API that runs whole matrix products through a Verilated mac_array.
//
// Python (experiments/cosim.py, through ctypes) calls mac_array_matmul once per product
// Y = bias + A . B; this file cuts the product into ROWS x COLS output tiles, feeds every tile's K
// beats through the array's valid/ready input stream back to back, drains the output stream and
// reassembles Y. All values are raw bit patterns:
//   a    [M x K] operand-format patterns (low W bits of each uint32), row-major
//   b    [K x N] operand-format patterns, row-major
//   bias [N]     binary32 patterns
//   y    [M x N] binary32 patterns (written)
// Tiles run in the order m-block outer, n-block inner. Rows of A beyond M and columns of B beyond
// N in an edge tile are fed as +0 operands (bias +0) and their outputs are dropped.
// With DOT_K > 1 (the fused dot_pe array) each beat j of a tile carries DOT_K k-steps: lane
// r*DOT_K + i of in_a is A[m0 + r][DOT_K*j + i], lane c*DOT_K + i of in_b is B[DOT_K*j + i][n0 + c],
// a tile has ceil(K / DOT_K) beats and k-steps beyond K (the last chunk) are +0 operands.
//
// The Verilated model is built with the array's parameters; ROWS, COLS, W (1 + EXP_BITS +
// MAN_BITS) and DOT_K are passed to mac_array_new, which checks that they fit the model's port
// widths.
// Inputs are driven on the falling edge and sampled by the model on the rising edge, so a beat
// is transferred exactly when in_valid & in_ready at the rising edge (valid never waits for
// ready; data hold until the transfer). out_ready is held high.

#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "Vmac_array.h"
#include "verilated.h"

namespace {

// Set / read `width` bits at bit offset `lsb` of a Verilated port (scalar or wide).
template <typename T>
inline void put_bits(T& port, int lsb, int width, uint64_t value) {
    const uint64_t mask = (width >= 64) ? ~0ULL : ((1ULL << width) - 1ULL);
    uint64_t p = static_cast<uint64_t>(port);
    p = (p & ~(mask << lsb)) | ((value & mask) << lsb);
    port = static_cast<T>(p);
}

template <std::size_t N>
inline void put_bits(VlWide<N>& port, int lsb, int width, uint64_t value) {
    for (int i = 0; i < width; ++i) {
        const int bit = lsb + i;
        const uint32_t m = 1U << (bit & 31);
        if ((value >> i) & 1ULL) port[bit >> 5] |= m;
        else port[bit >> 5] &= ~m;
    }
}

template <typename T>
inline uint32_t get_word(const T& port, int word) {
    return static_cast<uint32_t>(static_cast<uint64_t>(port) >> (32 * word));
}

template <std::size_t N>
inline uint32_t get_word(const VlWide<N>& port, int word) {
    return port[word];
}

template <typename T>
constexpr int port_bits(const T&) { return 8 * static_cast<int>(sizeof(T)); }

template <std::size_t N>
constexpr int port_bits(const VlWide<N>&) { return 32 * static_cast<int>(N); }

struct Driver {
    VerilatedContext ctx;
    Vmac_array* top = nullptr;
    int rows = 0;
    int cols = 0;
    int width = 0;
    int dot_k = 1;
    uint64_t cycles_total = 0;

    void tick() {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        ++cycles_total;
    }
};

struct TileRef {
    int64_t m0;
    int64_t n0;
};

}  // namespace

extern "C" {

// Create a model and reset it. Returns nullptr if rows/cols/width/dot_k do not fit the model's
// ports.
void* mac_array_new(int rows, int cols, int width, int dot_k) {
    auto* d = new Driver();
    d->top = new Vmac_array(&d->ctx);
    const int a_bits = rows * dot_k * width, b_bits = cols * dot_k * width;
    if (rows < 1 || cols < 1 || width < 3 || dot_k < 1 ||
        port_bits(d->top->in_a) < a_bits || port_bits(d->top->in_b) < b_bits ||
        port_bits(d->top->out_data) < cols * 32 || port_bits(d->top->in_bias) < cols * 32 ||
        port_bits(d->top->in_a) >= a_bits + 32 || port_bits(d->top->in_b) >= b_bits + 32 ||
        port_bits(d->top->out_data) >= cols * 32 + 32) {
        delete d->top;
        delete d;
        return nullptr;
    }
    d->rows = rows;
    d->cols = cols;
    d->width = width;
    d->dot_k = dot_k;
    d->top->clk = 0;
    d->top->rst = 1;
    d->top->in_valid = 0;
    d->top->out_ready = 1;
    d->top->eval();
    d->tick();
    d->tick();
    d->top->rst = 0;
    d->top->eval();
    d->cycles_total = 0;
    return d;
}

void mac_array_free(void* handle) {
    auto* d = static_cast<Driver*>(handle);
    if (d == nullptr) return;
    d->top->final();
    delete d->top;
    delete d;
}

// Cycles clocked since mac_array_new (reset cycles excluded).
uint64_t mac_array_cycles(void* handle) { return static_cast<Driver*>(handle)->cycles_total; }

// Y = bias + A . B through the array. stats (4 x uint64, written): cycles from the first beat
// offered to the last output row taken, input beats transferred, output beats taken, cycles in
// which a valid input beat was held back (in_ready low).
// Returns 0, or -1 for bad sizes, -2 when the array stops producing outputs (a hang: more than
// 16 * (beats + ROWS + COLS) + 64 cycles without an output row while tiles are outstanding), -3
// when an output row arrives out of order (out_row not the expected row).
int mac_array_matmul(void* handle, const uint32_t* a, const uint32_t* b, const uint32_t* bias,
                     int64_t m_len, int64_t k_len, int64_t n_len, uint32_t* y, uint64_t* stats) {
    auto* d = static_cast<Driver*>(handle);
    if (d == nullptr || m_len < 0 || n_len < 0 || k_len < 1) return -1;
    Vmac_array* top = d->top;
    const int rows = d->rows, cols = d->cols, w = d->width, dk = d->dot_k;
    std::memset(stats, 0, 4 * sizeof(uint64_t));
    if (m_len == 0 || n_len == 0) return 0;
    const int64_t k_beats = (k_len + dk - 1) / dk;  // beats per tile

    const int64_t m_blocks = (m_len + rows - 1) / rows;
    const int64_t n_blocks = (n_len + cols - 1) / cols;
    const int64_t n_tiles = m_blocks * n_blocks;

    // Pre-packed beats: columns DOT_K*j .. DOT_K*j + DOT_K-1 of each A row block and those rows
    // of each B column block. Lanes beyond the matrix edge (or beyond K) carry +0.
    const int a_words = (rows * dk * w + 31) / 32;
    const int b_words = (cols * dk * w + 31) / 32;
    std::vector<uint32_t> a_beats(static_cast<size_t>(m_blocks * k_beats * a_words), 0U);
    std::vector<uint32_t> b_beats(static_cast<size_t>(n_blocks * k_beats * b_words), 0U);
    auto pack = [w](uint32_t* dst, int lane, uint32_t value) {
        const int lsb = lane * w;
        const uint64_t v = static_cast<uint64_t>(value) & ((1ULL << w) - 1ULL);
        dst[lsb >> 5] |= static_cast<uint32_t>(v << (lsb & 31));
        if ((lsb & 31) + w > 32) dst[(lsb >> 5) + 1] |= static_cast<uint32_t>(v >> (32 - (lsb & 31)));
    };
    for (int64_t mb = 0; mb < m_blocks; ++mb)
        for (int64_t k = 0; k < k_len; ++k)
            for (int r = 0; r < rows; ++r) {
                const int64_t m = mb * rows + r;
                if (m < m_len)
                    pack(&a_beats[static_cast<size_t>((mb * k_beats + k / dk) * a_words)],
                         r * dk + static_cast<int>(k % dk), a[m * k_len + k]);
            }
    for (int64_t nb = 0; nb < n_blocks; ++nb)
        for (int64_t k = 0; k < k_len; ++k)
            for (int c = 0; c < cols; ++c) {
                const int64_t n = nb * cols + c;
                if (n < n_len)
                    pack(&b_beats[static_cast<size_t>((nb * k_beats + k / dk) * b_words)],
                         c * dk + static_cast<int>(k % dk), b[k * n_len + n]);
            }

    auto load_words = [](auto& port, const uint32_t* words, int n_bits) {
        for (int lsb = 0; lsb < n_bits; lsb += 32) {
            const int chunk = (n_bits - lsb) < 32 ? (n_bits - lsb) : 32;
            put_bits(port, lsb, chunk, words[lsb >> 5]);
        }
    };

    std::deque<TileRef> in_flight;
    int64_t tile = 0;      // tile being fed
    int64_t k = 0;         // next beat of that tile (0 .. k_beats-1)
    int expect_row = 0;    // next output row of the oldest tile in flight
    uint64_t cycles = 0, beats_in = 0, beats_out = 0, held = 0;
    const uint64_t hang_limit = 16ULL * static_cast<uint64_t>(k_beats + rows + cols) + 64ULL;
    uint64_t since_progress = 0;

    // Drive the beat `k` of `tile` (or nothing when every tile has been sent).
    auto present = [&]() {
        const bool feeding = tile < n_tiles;
        top->in_valid = feeding;
        if (!feeding) return;
        const int64_t mb = tile / n_blocks, nb = tile % n_blocks;
        load_words(top->in_a, &a_beats[static_cast<size_t>((mb * k_beats + k) * a_words)],
                   rows * dk * w);
        load_words(top->in_b, &b_beats[static_cast<size_t>((nb * k_beats + k) * b_words)],
                   cols * dk * w);
        if (k == 0) {
            for (int c = 0; c < cols; ++c) {
                const int64_t n = nb * cols + c;
                put_bits(top->in_bias, 32 * c, 32, n < n_len ? bias[n] : 0U);
            }
        }
        top->in_last = (k == k_beats - 1);
    };

    // Each cycle: the inputs of this cycle are applied and settled (clk low); sample the
    // handshakes, clock the rising edge, then apply the next cycle's inputs before the falling
    // edge's evaluation settles them (two evaluations per cycle).
    top->out_ready = 1;
    present();
    top->eval();
    while (tile < n_tiles || !in_flight.empty()) {
        const bool feeding = tile < n_tiles;
        const bool fire = feeding && top->in_ready;
        const bool pop = top->out_valid;
        if (feeding && !fire) ++held;
        if (pop) {
            if (in_flight.empty() || static_cast<int>(top->out_row) != expect_row) return -3;
            const TileRef t = in_flight.front();
            const int64_t m = t.m0 + expect_row;
            if (m < m_len) {
                for (int c = 0; c < cols; ++c) {
                    const int64_t n = t.n0 + c;
                    if (n < n_len) y[m * n_len + n] = get_word(top->out_data, c);
                }
            }
            ++beats_out;
            if (++expect_row == rows) {
                expect_row = 0;
                in_flight.pop_front();
            }
            since_progress = 0;
        } else if (++since_progress > hang_limit) {
            return -2;
        }
        top->clk = 1;
        top->eval();
        ++cycles;
        ++d->cycles_total;
        if (fire) {
            ++beats_in;
            if (k == 0) {
                const int64_t mb = tile / n_blocks, nb = tile % n_blocks;
                in_flight.push_back(TileRef{mb * rows, nb * cols});
            }
            if (++k == k_beats) {
                k = 0;
                ++tile;
            }
            present();
        }
        top->clk = 0;
        top->eval();
    }
    top->in_valid = 0;
    top->eval();
    stats[0] = cycles;
    stats[1] = beats_in;
    stats[2] = beats_out;
    stats[3] = held;
    return 0;
}

}  // extern "C"
