#include "vision/vit.h"

#include <cmath>
#include <cstring>

#include "inference/formats/format_error.h"
#include "inference/formats/quants.h"

namespace lumen::vision {

using inference::FormatError;

void VitRunner::reserve(std::int64_t rows) {
    if (rows <= capacity_) return;
    const std::int64_t d = shape_.dim;
    h_ = backend_.alloc(rows * d);
    q_ = backend_.alloc(rows * d);
    k_ = backend_.alloc(rows * d);
    v_ = backend_.alloc(rows * d);
    attn_ = backend_.alloc(rows * d);
    mlp_ = backend_.alloc(rows * shape_.intermediate);
    capacity_ = rows;
}

void VitRunner::dump(const std::string& name, const float* x, std::int64_t n) {
    if (!hook_) return;
    std::vector<float> host(static_cast<std::size_t>(n));
    backend_.download(x, host.data(), n);
    hook_(name, host);
}

void VitRunner::block(const VitLayer& w, float* x, std::int64_t rows, int index) {
    reserve(rows);
    const std::int64_t d = shape_.dim, n = rows * d;
    const std::string name = "layer" + std::to_string(index) + ".";
    const auto linear = [&](const Tensor& weight, const Tensor& bias, const float* in, float* out) {
        backend_.matmul(weight, in, rows, out);
        if (bias.data) backend_.addBias(out, bias, weight.rows(), rows);
    };
    // Attention on the normalized stream: all tokens see each other (the text side: earlier ones).
    backend_.layerNorm(x, w.norm1, w.norm1Bias, shape_.eps, d, rows, h_.get());
    linear(w.q, w.qBias, h_.get(), q_.get());
    linear(w.k, w.kBias, h_.get(), k_.get());
    linear(w.v, w.vBias, h_.get(), v_.get());
    const inference::AttentionSpec spec{shape_.heads, shape_.heads, d / shape_.heads};
    if (shape_.causal)
        // note: F32 keys and values laid out as (position, dim) are already a KV cache.
        backend_.attention(q_.get(), inference::KvLayer{inference::DType::F32, k_.get(), v_.get()}, 0, rows, spec, attn_.get());
    else
        backend_.selfAttention(q_.get(), k_.get(), v_.get(), rows, spec, attn_.get());
    linear(w.out, w.outBias, attn_.get(), h_.get());
    if (w.layerScale1.data) backend_.scaleRows(h_.get(), w.layerScale1, d, rows);
    dump(name + "attn_out", h_.get(), n);
    backend_.add(x, h_.get(), n);
    // The MLP.
    backend_.layerNorm(x, w.norm2, w.norm2Bias, shape_.eps, d, rows, h_.get());
    linear(w.fc1, w.fc1Bias, h_.get(), mlp_.get());
    backend_.gelu(mlp_.get(), rows * shape_.intermediate, shape_.act);
    linear(w.fc2, w.fc2Bias, mlp_.get(), h_.get());
    if (w.layerScale2.data) backend_.scaleRows(h_.get(), w.layerScale2, d, rows);
    dump(name + "mlp_out", h_.get(), n);
    backend_.add(x, h_.get(), n);
    dump(name + "out", x, n);
}

Tensor weightView(const inference::SafetensorsModel& model, const std::string& name, std::int64_t rowLength, std::int64_t elements) {
    const inference::SafetensorsTensor* st = model.find(name);
    if (!st) throw FormatError("the model has no tensor \"" + name + "\"");
    if (!st->dtype) throw FormatError(name + ": " + st->dtypeName + " weights are not supported (F32, F16 or BF16 are)");
    if (elements > 0 && st->elements != elements)
        throw FormatError(name + ": " + std::to_string(st->elements) + " values where the model's shape needs " + std::to_string(elements));
    if (st->elements == 0) throw FormatError(name + ": the tensor is empty");
    Tensor t;
    t.name = name;
    t.dtype = *st->dtype;
    t.data = st->data.data();
    const std::int64_t row = rowLength > 0 ? rowLength : (st->shape.empty() ? 1 : st->shape.back());
    if (row <= 0 || st->elements % row != 0) throw FormatError(name + ": its shape does not split into rows of " + std::to_string(row));
    t.ne = {row, st->elements / row, 1, 1};
    return t;
}

VitLayer loadVitLayer(const inference::SafetensorsModel& f, const std::string& p, const VitLayerNames& n, std::int64_t dim) {
    VitLayer l;
    l.norm1 = weightView(f, p + n.norm1 + ".weight", 0, dim);
    l.norm1Bias = weightView(f, p + n.norm1 + ".bias", 0, dim);
    l.q = weightView(f, p + n.q + ".weight", dim, dim * dim);
    l.qBias = weightView(f, p + n.q + ".bias", 0, dim);
    l.k = weightView(f, p + n.k + ".weight", dim, dim * dim);
    l.kBias = weightView(f, p + n.k + ".bias", 0, dim);
    l.v = weightView(f, p + n.v + ".weight", dim, dim * dim);
    l.vBias = weightView(f, p + n.v + ".bias", 0, dim);
    l.out = weightView(f, p + n.out + ".weight", dim, dim * dim);
    l.outBias = weightView(f, p + n.out + ".bias", 0, dim);
    l.norm2 = weightView(f, p + n.norm2 + ".weight", 0, dim);
    l.norm2Bias = weightView(f, p + n.norm2 + ".bias", 0, dim);
    l.fc1 = weightView(f, p + n.fc1 + ".weight", dim);
    l.fc1Bias = weightView(f, p + n.fc1 + ".bias", 0, l.fc1.rows());
    l.fc2 = weightView(f, p + n.fc2 + ".weight", l.fc1.rows(), dim * l.fc1.rows());
    l.fc2Bias = weightView(f, p + n.fc2 + ".bias", 0, dim);
    if (!n.layerScale1.empty()) l.layerScale1 = weightView(f, p + n.layerScale1, 0, dim);
    if (!n.layerScale2.empty()) l.layerScale2 = weightView(f, p + n.layerScale2, 0, dim);
    return l;
}

Tensor optionalWeight(const inference::SafetensorsModel& model, const std::string& name, std::int64_t elements) {
    if (!model.find(name)) return Tensor{name};
    return weightView(model, name, 0, elements);
}

std::vector<float> toFloats(const Tensor& t) {
    std::vector<float> out(static_cast<std::size_t>(t.elements()));
    inference::dequantize(t.dtype, t.data, out.data(), t.elements());
    return out;
}

void normalize(std::vector<float>& v) {
    double sum = 0.0;
    for (float x : v) sum += static_cast<double>(x) * x;
    if (sum <= 0.0) return;
    const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
    for (float& x : v) x *= inv;
}

}  // namespace lumen::vision
