// SmolLM3: llama's pre-norm block with SwiGLU and interleaved RoPE (the converter permutes Q and
// K as for llama), except that some layers use no position embedding at all (NoPE): every
// fourth one (layers 3, 7, 11, ...) unless the file lists them.

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    c.ropeStyle = RopeStyle::Interleaved;
    const std::int64_t step = r.getInt("no_rope_layer_step", 4);
    if (step <= 0) r.fail("the NoPE layer step is " + std::to_string(step));
    for (std::int64_t l = 0; l < c.nLayers; ++l) c.layers[static_cast<std::size_t>(l)].rope = (l + 1) % step != 0;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        r.readAttention(L, l);
        r.readFfn(L, l);
    }
}

}  // namespace

const ModelFamily kSmolLm3Family{"smollm3", {"smollm3"}, read, preNormLayer};

}  // namespace lumen::inference
