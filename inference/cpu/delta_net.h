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

// In chunks of kDeltaChunk rows (kDim and vDim multiples of the lanes). Within a chunk of L rows, with G
// the running sum of g from its first row and S the state before it:
//   A[t][s] = -b_t (k_t . k_s) exp(G_t - G_s) for s < t, and T = (I - A)^-1 (forward substitution)
//   U = T (b v), W = T (b exp(G) k)                 the chunk's corrections, L x vDim and L x kDim
//   N_t = U_t - W_t S                               the new values the rows write
//   out_t = exp(G_t) q_t S + sum_{s <= t} (q_t . k_s) exp(G_t - G_s) N_s
//   S = exp(G_L) S + sum_s exp(G_L - G_s) k_s N_s^T
template <class V>
[[gnu::always_inline]] inline void deltaNetChunked(const DeltaHead& h) {
    using namespace delta_detail;
    constexpr std::int64_t C = kDeltaChunk;
    const std::int64_t kd = h.kDim, vd = h.vDim;
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<std::size_t>(C * C + 2 * C + C * vd + C * kd + C * vd));
    float* T = scratch.data();  // C x C
    float* G = T + C * C;
    float* beta = G + C;
    float* U = beta + C;  // C x vd: U, then the new values N
    float* Wk = U + C * vd;  // C x kd
    float* tmp = Wk + C * kd;  // C x vd
    for (std::int64_t t0 = 0; t0 < h.rows; t0 += C) {
        const std::int64_t L = std::min(C, h.rows - t0);
        const auto q = [&](std::int64_t t) { return h.q + (t0 + t) * h.qkStride; };
        const auto k = [&](std::int64_t t) { return h.k + (t0 + t) * h.qkStride; };
        const auto v = [&](std::int64_t t) { return h.v + (t0 + t) * h.vStride; };
        float running = 0.0f;
        for (std::int64_t t = 0; t < L; ++t) {
            running += h.g[(t0 + t) * h.gStride];
            G[t] = running;
            beta[t] = h.beta[(t0 + t) * h.gStride];
        }
        // T = (I - A)^-1, lower triangular with a unit diagonal, built row by row: row i of it is
        // A's row i plus A's row i times the rows above (already inverted).
        for (std::int64_t i = 0; i < L; ++i) {
            float* Ti = T + i * C;
            for (std::int64_t s = 0; s < i; ++s) Ti[s] = -beta[i] * dot<V>(k(i), k(s), kd) * std::exp(G[i] - G[s]);
            for (std::int64_t s = 0; s < i; ++s) {
                float sum = Ti[s];
                for (std::int64_t m = s + 1; m < i; ++m) sum += Ti[m] * T[m * C + s];
                tmp[s] = sum;
            }
            std::copy(tmp, tmp + i, Ti);
            Ti[i] = 1.0f;
        }
        // U = T (b v), W = T (b exp(G) k).
        std::fill(U, U + L * vd, 0.0f);
        std::fill(Wk, Wk + L * kd, 0.0f);
        for (std::int64_t t = 0; t < L; ++t)
            for (std::int64_t s = 0; s <= t; ++s) {
                const float w = T[t * C + s] * beta[s];
                axpy<V>(U + t * vd, w, v(s), vd);
                axpy<V>(Wk + t * kd, w * std::exp(G[s]), k(s), kd);
            }
        // N = U - W S (into U), and out = exp(G) q S (into tmp first).
        for (std::int64_t t = 0; t < L; ++t) {
            float* n = U + t * vd;
            float* o = tmp + t * vd;
            std::fill(o, o + vd, 0.0f);
            const float* wt = Wk + t * kd;
            const float* qt = q(t);
            const float eg = std::exp(G[t]);
            for (std::int64_t i = 0; i < kd; ++i) {
                axpy<V>(n, -wt[i], h.state + i * vd, vd);
                axpy<V>(o, eg * qt[i], h.state + i * vd, vd);
            }
        }
        // out += the rows' own writes, each seen through its decay.
        for (std::int64_t t = 0; t < L; ++t) {
            float* o = tmp + t * vd;
            for (std::int64_t s = 0; s <= t; ++s) axpy<V>(o, dot<V>(q(t), k(s), kd) * std::exp(G[t] - G[s]), U + s * vd, vd);
            std::copy(o, o + vd, h.out + (t0 + t) * h.outStride);
        }
        // S = exp(G_L) S + sum_s exp(G_L - G_s) k_s N_s^T.
        const float last = G[L - 1];
        const V decay = splat<V>(std::exp(last));
        for (std::int64_t i = 0; i < kd; ++i) {
            float* si = h.state + i * vd;
            for (std::int64_t j = 0; j < vd; j += lanes<V>()) store(si + j, load<V>(si + j) * decay);
            for (std::int64_t s = 0; s < L; ++s) axpy<V>(si, k(s)[i] * std::exp(last - G[s]), U + s * vd, vd);
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace lumen::inference::cpu
