// What every backend shares: cache sizes, and the mixture-of-experts op written on the others.

#include "inference/core/backend.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace lumen::inference {

double kvBytesPerValue(DType dtype) {
    switch (dtype) {
        case DType::F32: return 4.0;
        case DType::Q8_0: return 1.0 + 4.0 / 32.0;
        default: return 2.0;
    }
}

void requireFinite(std::span<const float> values, const std::string& what) {
    for (const float v : values)
        if (!std::isfinite(v))
            throw BrokenModelError(what + " came out as " + (std::isnan(v) ? "NaN" : "infinity") +
                                     ": the model's weights or settings (a norm epsilon, an image scale) are broken");
}

void routeExperts(const float* logits, std::int64_t n, std::int64_t nExperts, const MoeSpec& spec, std::vector<MoeRoute>& routes) {
    const std::int64_t used = spec.used;
    if (used < 1 || used > nExperts) throw std::invalid_argument("a row must use 1 to " + std::to_string(nExperts) + " experts, not " + std::to_string(used));
    routes.resize(static_cast<std::size_t>(n * used));
    std::vector<std::int64_t> order(static_cast<std::size_t>(nExperts));
    std::vector<double> p(static_cast<std::size_t>(nExperts));
    for (std::int64_t r = 0; r < n; ++r) {
        const float* l = logits + r * nExperts;
        // The softmax over every expert, in double. A NaN logit (a broken model) counts as the
        // lowest, so the order below stays an order; with no finite logit at all, all are equal.
        const auto logit = [l](std::int64_t e) { return std::isnan(l[e]) ? -INFINITY : static_cast<double>(l[e]); };
        double top = -INFINITY, sum = 0.0;
        for (std::int64_t e = 0; e < nExperts; ++e) top = std::max(top, logit(e));
        for (std::int64_t e = 0; e < nExperts; ++e) sum += (p[static_cast<std::size_t>(e)] = std::isfinite(top) ? std::exp(logit(e) - top) : 1.0);
        std::iota(order.begin(), order.end(), std::int64_t{0});
        // The largest first; equal ones by index.
        std::partial_sort(order.begin(), order.begin() + used, order.end(), [&](std::int64_t a, std::int64_t b) {
            const double pa = p[static_cast<std::size_t>(a)], pb = p[static_cast<std::size_t>(b)];
            return pa != pb ? pa > pb : a < b;
        });
        double chosen = 0.0;
        for (std::int64_t k = 0; k < used; ++k) chosen += p[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])];
        const double divisor = spec.normalize ? chosen : sum;
        for (std::int64_t k = 0; k < used; ++k) {
            const std::int64_t e = order[static_cast<std::size_t>(k)];
            routes[static_cast<std::size_t>(r * used + k)] = {e, static_cast<float>(p[static_cast<std::size_t>(e)] / divisor * spec.scale)};
        }
    }
}

void Backend::moe(const float* x, std::int64_t n, const MoeSpec& spec, const MoeBuffers& buffers, float* out) {
    const std::int64_t nExperts = spec.router->rows(), dim = spec.router->rowLength();
    thread_local std::vector<float> logits, rows, in, part, sum;
    thread_local std::vector<MoeRoute> routes;
    logits.resize(static_cast<std::size_t>(n * nExperts));
    matmul(*spec.router, x, n, buffers.router);
    if (spec.routerBias) addBias(buffers.router, *spec.routerBias, nExperts, n);
    download(buffers.router, logits.data(), n * nExperts);
    routeExperts(logits.data(), n, nExperts, spec, routes);
    const std::int64_t used = spec.used;
    // The shared expert's part of each row, weighted by the sigmoid of its gate, added to the
    // routed experts' sum (host memory).
    const auto addShared = [&](float* rowsSum) {
        if (!spec.sharedGate) return;
        thread_local std::vector<float> gateLogits, shared;
        matmul(*spec.sharedGateInp, x, n, buffers.router);
        gateLogits.resize(static_cast<std::size_t>(n));
        download(buffers.router, gateLogits.data(), n);
        const Product gateUp[] = {{spec.sharedGate, buffers.gate}, {spec.sharedUp, buffers.up}};
        matmuls(gateUp, x, n);
        siluMul(buffers.gate, buffers.up, n * spec.sharedGate->rows());
        matmul(*spec.sharedDown, buffers.gate, n, buffers.out);
        shared.resize(static_cast<std::size_t>(n * dim));
        download(buffers.out, shared.data(), n * dim);
        for (std::int64_t r = 0; r < n; ++r) {
            const float w = 1.0f / (1.0f + std::exp(-gateLogits[static_cast<std::size_t>(r)]));
            for (std::int64_t d = 0; d < dim; ++d) rowsSum[r * dim + d] += w * shared[static_cast<std::size_t>(r * dim + d)];
        }
    };
    // Expert e's gate and up products of m rows (biased) into its activations; its down
    // product of them into `to` (biased).
    const auto activate = [&](std::size_t e, float* gate, float* up, std::int64_t m, std::int64_t ffn) {
        if (!spec.gateBias.empty()) {
            addBias(gate, spec.gateBias[e], ffn, m);
            addBias(up, spec.upBias[e], ffn, m);
        }
        if (spec.clamped) clampedSwiglu(gate, up, m * ffn, *spec.clamped);
        else siluMul(gate, up, m * ffn);
    };
    const auto down = [&](std::size_t e, const float* from, std::int64_t m, float* to) {
        matmul(spec.down[e], from, m, to);
        if (!spec.downBias.empty()) addBias(to, spec.downBias[e], dim, m);
    };
    if (n == 1) {
        // Decoding: the row's experts in one pass over their gates and ups (one quantization
        // of the row), then each one's down projection of its own activations.
        std::vector<Product> gateUp;
        const std::int64_t ffn = spec.gate[0].rows();
        for (std::int64_t k = 0; k < used; ++k) {
            const auto e = static_cast<std::size_t>(routes[static_cast<std::size_t>(k)].expert);
            gateUp.push_back({&spec.gate[e], buffers.gate + k * ffn});
            gateUp.push_back({&spec.up[e], buffers.up + k * ffn});
        }
        matmuls(gateUp, x, 1);
        if (spec.gateBias.empty() && !spec.clamped) {
            siluMul(buffers.gate, buffers.up, used * ffn);  // all of them at once
        } else {
            for (std::int64_t k = 0; k < used; ++k)
                activate(static_cast<std::size_t>(routes[static_cast<std::size_t>(k)].expert), buffers.gate + k * ffn, buffers.up + k * ffn, 1, ffn);
        }
        for (std::int64_t k = 0; k < used; ++k)
            down(static_cast<std::size_t>(routes[static_cast<std::size_t>(k)].expert), buffers.gate + k * ffn, 1, buffers.out + k * dim);
        part.resize(static_cast<std::size_t>(used * dim));
        download(buffers.out, part.data(), used * dim);
        sum.assign(static_cast<std::size_t>(dim), 0.0f);
        for (std::int64_t k = 0; k < used; ++k)
            for (std::int64_t d = 0; d < dim; ++d) sum[static_cast<std::size_t>(d)] += routes[static_cast<std::size_t>(k)].weight * part[static_cast<std::size_t>(k * dim + d)];
        addShared(sum.data());
        upload(sum.data(), out, dim);
        return;
    }
    // The rows each expert takes, expert by expert, so its weights are read once.
    in.resize(static_cast<std::size_t>(n * dim));
    download(x, in.data(), n * dim);
    sum.assign(static_cast<std::size_t>(n * dim), 0.0f);
    std::vector<std::int64_t> taken;  // row, for each row the expert takes
    std::vector<float> weights;
    for (std::int64_t e = 0; e < nExperts; ++e) {
        taken.clear();
        weights.clear();
        for (std::int64_t i = 0; i < n * used; ++i)
            if (routes[static_cast<std::size_t>(i)].expert == e) {
                taken.push_back(i / used);
                weights.push_back(routes[static_cast<std::size_t>(i)].weight);
            }
        if (taken.empty()) continue;
        const auto m = static_cast<std::int64_t>(taken.size());
        const std::size_t ue = static_cast<std::size_t>(e);
        const std::int64_t ffn = spec.gate[ue].rows();
        const float* input = x;
        if (m != n) {  // the rows it takes, gathered
            rows.resize(static_cast<std::size_t>(m * dim));
            for (std::int64_t j = 0; j < m; ++j)
                std::copy_n(in.data() + taken[static_cast<std::size_t>(j)] * dim, dim, rows.data() + j * dim);
            upload(rows.data(), buffers.rows, m * dim);
            input = buffers.rows;
        }
        const Product gateUp[] = {{&spec.gate[ue], buffers.gate}, {&spec.up[ue], buffers.up}};
        matmuls(gateUp, input, m);
        activate(ue, buffers.gate, buffers.up, m, ffn);
        down(ue, buffers.gate, m, buffers.out);
        part.resize(static_cast<std::size_t>(m * dim));
        download(buffers.out, part.data(), m * dim);
        for (std::int64_t j = 0; j < m; ++j) {
            float* to = sum.data() + taken[static_cast<std::size_t>(j)] * dim;
            const float* from = part.data() + j * dim;
            const float w = weights[static_cast<std::size_t>(j)];
            for (std::int64_t d = 0; d < dim; ++d) to[d] += w * from[d];
        }
    }
    addShared(sum.data());
    upload(sum.data(), out, n * dim);
}

}  // namespace lumen::inference
