#pragma once
// Gated DeltaNet's recurrence for one value head (see DeltaNetSpec), written once over a GCC
// vector type of floats and compiled in each kernel set under its target (the SIMD sets' deltaNet
// kernels): token by token for decode, and in chunks of kDeltaChunk rows for prompts, where the
// state is read once per chunk and the work becomes small matrix products (the WY form of the
// delta rule, as Hugging Face's torch_chunk_gated_delta_rule computes it).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lumen::inference::cpu {

// One value head's rows: q and k already l2-normalised (q also scaled by 1 / sqrt(kDim)), g the
// log of each row's decay, beta its sigmoid-ed write strength.
struct DeltaHead {
    const float* q;  // row t at q + t * qkStride (kDim values)
    const float* k;
    std::int64_t qkStride;
    const float* v;  // row t at v + t * vStride (vDim values)
    std::int64_t vStride;
    const float* g;  // row t at g[t * gStride]
    const float* beta;
    std::int64_t gStride;
    float* out;  // row t at out + t * outStride
    std::int64_t outStride;
    float* state;  // kDim x vDim
    std::int64_t rows, kDim, vDim;
};

constexpr std::int64_t kDeltaChunk = 64;

// (The helpers below pass vectors by value: they are always inlined into the kernel sets' target
// functions, so the ABI a non-inlined call would have does not arise.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace delta_detail {

template <class V>
constexpr int lanes() {
    return static_cast<int>(sizeof(V) / sizeof(float));
}
template <class V>
[[gnu::always_inline]] inline V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <class V>
[[gnu::always_inline]] inline void store(float* p, V v) {
    std::memcpy(p, &v, sizeof(V));
}
template <class V>
[[gnu::always_inline]] inline V splat(float x) {
    V v;
    for (int i = 0; i < lanes<V>(); ++i) v[i] = x;
    return v;
}
// y[0..n) += a * x[0..n), n a multiple of the lanes.
template <class V>
[[gnu::always_inline]] inline void axpy(float* y, float a, const float* x, std::int64_t n) {
    const V av = splat<V>(a);
    for (std::int64_t j = 0; j < n; j += lanes<V>()) store(y + j, load<V>(y + j) + av * load<V>(x + j));
}
template <class V>
[[gnu::always_inline]] inline float dot(const float* a, const float* b, std::int64_t n) {
    V acc = splat<V>(0.0f);
    std::int64_t i = 0;
    for (; i + lanes<V>() <= n; i += lanes<V>()) acc += load<V>(a + i) * load<V>(b + i);
    float s = 0.0f;
    for (int l = 0; l < lanes<V>(); ++l) s += acc[l];
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

}  // namespace delta_detail

// Token by token (kDim and vDim multiples of the lanes): two passes over the state per row.
template <class V>
[[gnu::always_inline]] inline void deltaNetRecurrent(const DeltaHead& h) {
    using namespace delta_detail;
    constexpr int W = lanes<V>();
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<std::size_t>(2 * h.vDim));
    float* kv = scratch.data();
    float* delta = kv + h.vDim;
    for (std::int64_t t = 0; t < h.rows; ++t) {
        const float* q = h.q + t * h.qkStride;
        const float* k = h.k + t * h.qkStride;
        const float* v = h.v + t * h.vStride;
        float* o = h.out + t * h.outStride;
        const V decay = splat<V>(std::exp(h.g[t * h.gStride]));
        const float b = h.beta[t * h.gStride];
        // S = exp(g) S, and kv = S^T k in the same pass.
        std::fill(kv, kv + h.vDim, 0.0f);
        for (std::int64_t i = 0; i < h.kDim; ++i) {
            float* s = h.state + i * h.vDim;
            const V ki = splat<V>(k[i]);
            for (std::int64_t j = 0; j < h.vDim; j += W) {
                const V sv = load<V>(s + j) * decay;
                store(s + j, sv);
                store(kv + j, load<V>(kv + j) + sv * ki);
            }
        }
        const V bv = splat<V>(b);
        for (std::int64_t j = 0; j < h.vDim; j += W) store(delta + j, (load<V>(v + j) - load<V>(kv + j)) * bv);
        // S += k delta^T, and out = S^T q in the same pass.
        std::fill(o, o + h.vDim, 0.0f);
        for (std::int64_t i = 0; i < h.kDim; ++i) {
            float* s = h.state + i * h.vDim;
            const V ki = splat<V>(k[i]), qi = splat<V>(q[i]);
            for (std::int64_t j = 0; j < h.vDim; j += W) {
                const V sv = load<V>(s + j) + ki * load<V>(delta + j);
                store(s + j, sv);
                store(o + j, load<V>(o + j) + sv * qi);
            }
        }
    }
}

namespace delta_detail {

// C (m x n) = beta C + A B, A m x k (row r at a + r * lda), B k x n (row at b + i * ldb), n a
// multiple of the lanes; with `lower`, A's row r has nothing past column r (it is lower
// triangular) and the sum stops there. Four rows of C at a time, two vectors of each in registers.
template <class V>
[[gnu::always_inline]] inline void multiply(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                                            std::int64_t ldb, float* c, std::int64_t ldc, bool accumulate, bool lower) {
    constexpr int W = lanes<V>();
    for (std::int64_t r0 = 0; r0 < m; r0 += 4) {
        const int rows = static_cast<int>(std::min<std::int64_t>(4, m - r0));
        const std::int64_t kEnd = lower ? std::min(k, r0 + rows) : k;
        for (std::int64_t j = 0; j < n; j += 2 * W) {
            const bool two = j + W < n;
            V acc[4][2];
            for (int r = 0; r < 4; ++r) {
                acc[r][0] = r < rows && accumulate ? load<V>(c + (r0 + r) * ldc + j) : splat<V>(0.0f);
                acc[r][1] = r < rows && accumulate && two ? load<V>(c + (r0 + r) * ldc + j + W) : splat<V>(0.0f);
            }
            for (std::int64_t i = 0; i < kEnd; ++i) {
                const V b0 = load<V>(b + i * ldb + j), b1 = two ? load<V>(b + i * ldb + j + W) : b0;
                for (int r = 0; r < 4; ++r) {
                    if (r >= rows) break;
                    const V x = splat<V>(a[(r0 + r) * lda + i]);
                    acc[r][0] += x * b0;
                    acc[r][1] += x * b1;
                }
            }
            for (int r = 0; r < rows; ++r) {
                store(c + (r0 + r) * ldc + j, acc[r][0]);
                if (two) store(c + (r0 + r) * ldc + j + W, acc[r][1]);
            }
        }
    }
}

}  // namespace delta_detail

// In chunks of kDeltaChunk rows (kDim and vDim multiples of the lanes). Within a chunk of L rows,
// with G the running sum of g from its first row and S the state before it:
//   A[t][s] = -b_t (k_t . k_s) exp(G_t - G_s) for s < t, and T = (I - A)^-1 (forward substitution)
//   U = T (b v), W = T (b exp(G) k)                 the chunk's corrections, L x vDim and L x kDim
//   N_t = U_t - W_t S                               the new values the rows write
//   out_t = exp(G_t) q_t S + sum_{s <= t} (q_t . k_s) exp(G_t - G_s) N_s
//   S = exp(G_L) S + sum_s exp(G_L - G_s) k_s N_s^T
// Each line is a small matrix product (delta_detail::multiply).
template <class V>
[[gnu::always_inline]] inline void deltaNetChunked(const DeltaHead& h) {
    using namespace delta_detail;
    constexpr std::int64_t C = kDeltaChunk;
    const std::int64_t kd = h.kDim, vd = h.vDim;
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<std::size_t>(3 * C * C + 2 * C + 2 * C * vd + 3 * C * kd + kd * C));
    float* T = scratch.data();   // C x C: T, then T times b (columns)
    float* Te = T + C * C;       // C x C: T times b exp(G) (columns)
    float* Aqk = Te + C * C;     // C x C: (q_t . k_s) exp(G_t - G_s), s <= t
    float* G = Aqk + C * C;
    float* beta = G + C;
    float* U = beta + C;         // C x vd: U, then the new values N
    float* O = U + C * vd;       // C x vd
    float* Wk = O + C * vd;      // C x kd, negated
    float* Q = Wk + C * kd;      // C x kd: q_t exp(G_t)
    float* K = Q + C * kd;       // C x kd: the chunk's keys, together
    float* Kt = K + C * kd;      // kd x C: k_s exp(G_L - G_s), transposed
    for (std::int64_t t0 = 0; t0 < h.rows; t0 += C) {
        const std::int64_t L = std::min(C, h.rows - t0);
        float running = 0.0f;
        for (std::int64_t t = 0; t < L; ++t) {
            running += h.g[(t0 + t) * h.gStride];
            G[t] = running;
            beta[t] = h.beta[(t0 + t) * h.gStride];
            std::copy(h.k + (t0 + t) * h.qkStride, h.k + (t0 + t) * h.qkStride + kd, K + t * kd);
        }
        // T = (I - A)^-1, lower triangular with a unit diagonal, row by row: row i is A's row i
        // plus A's row i times the rows above it (already inverted), summed along the row.
        for (std::int64_t i = 0; i < L; ++i) {
            float* Ti = T + i * C;
            float* row = Te + i * C;  // (A's row, kept while Ti fills)
            for (std::int64_t s = 0; s < i; ++s) row[s] = -beta[i] * dot<V>(K + i * kd, K + s * kd, kd) * std::exp(G[i] - G[s]);
            std::copy(row, row + i, Ti);
            for (std::int64_t m = 1; m < i; ++m)
                for (std::int64_t s = 0; s < m; ++s) Ti[s] += row[m] * T[m * C + s];
            Ti[i] = 1.0f;
            std::fill(Ti + i + 1, Ti + C, 0.0f);
        }
        // The columns scaled: T b (for U) and T b exp(G) (for W); the query-key decays.
        for (std::int64_t t = 0; t < L; ++t) {
            for (std::int64_t s = 0; s <= t; ++s) {
                T[t * C + s] *= beta[s];
                Te[t * C + s] = T[t * C + s] * std::exp(G[s]);
            }
            const float* q = h.q + (t0 + t) * h.qkStride;
            for (std::int64_t s = 0; s <= t; ++s) Aqk[t * C + s] = dot<V>(q, K + s * kd, kd) * std::exp(G[t] - G[s]);
            for (std::int64_t i = 0; i < kd; ++i) Q[t * kd + i] = q[i] * std::exp(G[t]);
        }
        // U = (T b) v, and -W = -(T b exp(G)) k.
        multiply<V>(L, vd, L, T, C, h.v + t0 * h.vStride, h.vStride, U, vd, false, true);
        multiply<V>(L, kd, L, Te, C, K, kd, Wk, kd, false, true);
        for (std::int64_t i = 0; i < L * kd; ++i) Wk[i] = -Wk[i];
        // N = U - W S; out = exp(G) q S + Aqk N.
        multiply<V>(L, vd, kd, Wk, kd, h.state, vd, U, vd, true, false);
        multiply<V>(L, vd, kd, Q, kd, h.state, vd, O, vd, false, false);
        multiply<V>(L, vd, L, Aqk, C, U, vd, O, vd, true, true);
        for (std::int64_t t = 0; t < L; ++t) std::copy(O + t * vd, O + (t + 1) * vd, h.out + (t0 + t) * h.outStride);
        // S = exp(G_L) S + (k exp(G_L - G))^T N.
        const float last = G[L - 1];
        for (std::int64_t s = 0; s < L; ++s) {
            const float e = std::exp(last - G[s]);
            for (std::int64_t i = 0; i < kd; ++i) Kt[i * C + s] = K[s * kd + i] * e;
        }
        const V decay = splat<V>(std::exp(last));
        for (std::int64_t i = 0; i < kd * vd; i += lanes<V>()) store(h.state + i, load<V>(h.state + i) * decay);
        multiply<V>(kd, vd, L, Kt, C, U, vd, h.state, vd, true, false);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace lumen::inference::cpu
