#pragma once
// The transformer block CLIP (vision and text), DINOv2 and the LLaVA vision tower share: pre-norm
// attention and MLP, each added back to the residual stream,
//
//   x += ls1 * Wo attention(q = Wq LN1(x), k = Wk LN1(x), v = Wv LN1(x))   (+ biases)
//   x += ls2 * W2 act(W1 LN2(x))
//
// with the layer scales ls1, ls2 present only in DINOv2, and a causal mask for CLIP's text side.
// Weights are views into the model file (safetensors: PyTorch's (out, in) is our ne = {in, out}).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/safetensors.h"

namespace lumen::vision {

using inference::Backend;
using inference::GeluKind;
using inference::Tensor;

struct VitLayer {
    Tensor norm1, norm1Bias;          // (dim)
    Tensor q, qBias, k, kBias, v, vBias;  // (dim, dim), (dim)
    Tensor out, outBias;              // (dim, dim), (dim)
    Tensor layerScale1;               // (dim) or absent
    Tensor norm2, norm2Bias;          // (dim)
    Tensor fc1, fc1Bias;              // (intermediate, dim), (intermediate)
    Tensor fc2, fc2Bias;              // (dim, intermediate), (dim)
    Tensor layerScale2;               // (dim) or absent
};

struct VitShape {
    std::int64_t dim = 0;
    std::int64_t heads = 0;
    std::int64_t intermediate = 0;
    float eps = 1e-5f;
    GeluKind act = GeluKind::Quick;
    bool causal = false;
};

// Runs blocks on one backend, owning the scratch buffers (grown to the largest row count seen).
// The debug hook, when set, sees every named intermediate ("layer3.attn_out") as host floats.
class VitRunner {
public:
    VitRunner(Backend& backend, const VitShape& shape) : backend_(backend), shape_(shape) {}
    // x: rows x dim in the backend's memory, updated in place.
    void block(const VitLayer& w, float* x, std::int64_t rows, int index);
    using Hook = std::function<void(const std::string& name, const std::vector<float>& values)>;
    void setHook(Hook hook) { hook_ = std::move(hook); }

private:
    void reserve(std::int64_t rows);
    void dump(const std::string& name, const float* x, std::int64_t n);

    Backend& backend_;
    VitShape shape_;
    Hook hook_;
    std::int64_t capacity_ = 0;
    std::shared_ptr<float[]> h_, q_, k_, v_, attn_, mlp_;
};

// The names one checkpoint family gives a layer's tensors (after the layer's prefix, without
// ".weight"/".bias"); the layer scales are empty where the family has none.
struct VitLayerNames {
    std::string norm1, q, k, v, out, norm2, fc1, fc2, layerScale1, layerScale2;
};

// Layer `prefix` of a safetensors model ("vision_model.encoder.layers.3."), each tensor checked
// against `dim` (the MLP width is read from fc1).
VitLayer loadVitLayer(const inference::SafetensorsModel& model, const std::string& prefix, const VitLayerNames& names, std::int64_t dim);

// Weights from a safetensors model: `name` as a tensor of rows of `rowLength` elements (0: the
// last dimension), FormatError naming the tensor when it is missing, not F32/F16/BF16, or not
// `elements` values (0: any).
Tensor weightView(const inference::SafetensorsModel& model, const std::string& name, std::int64_t rowLength = 0, std::int64_t elements = 0);
// The same, or an absent tensor (data == nullptr) when the model has no such name.
Tensor optionalWeight(const inference::SafetensorsModel& model, const std::string& name, std::int64_t elements);
// A tensor's values as F32 on the host.
std::vector<float> toFloats(const Tensor& t);

// L2-normalizes v in place (unchanged when it is all zeros).
void normalize(std::vector<float>& v);

}  // namespace lumen::vision
