// GGUF parsing: any bytes give either a file whose views lie inside the input, or FormatError.
#include <cstdint>
#include <span>

#include "inference/formats/gguf.h"
#include "inference/formats/quants.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::inference;
    try {
        const GgufFile f = GgufFile::parse(std::span(data, size), "fuzz.gguf");
        for (const auto& [key, value] : f.metadata()) {
            (void)key;
            if (value.type == GgufType::Array) (void)value.numberAt(0);
        }
        float out[256];
        for (const auto& t : f.tensors()) {
            if (t.data.data() < data || t.data.data() + t.data.size() > data + size) __builtin_trap();
            // Dequantize the first block of each tensor: every byte pattern must decode.
            const auto& tr = traits(t.dtype);
            if (t.elements >= tr.blockSize) dequantize(t.dtype, t.data.data(), out, tr.blockSize);
        }
        (void)f.getString("general.architecture", "");
        (void)f.getInt("general.alignment", 0);
    } catch (const FormatError&) {
    }
    return 0;
}
