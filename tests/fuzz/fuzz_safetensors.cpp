// safetensors parsing: any bytes give either tensors inside the input, or FormatError.
#include <cstdint>
#include <span>

#include "inference/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::inference;
    try {
        const SafetensorsModel m = SafetensorsModel::parse(std::span(data, size), "fuzz.safetensors");
        for (const auto& t : m.tensors())
            if (t.data.data() < data || t.data.data() + t.data.size() > data + size) __builtin_trap();
    } catch (const FormatError&) {
    }
    return 0;
}
