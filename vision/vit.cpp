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
