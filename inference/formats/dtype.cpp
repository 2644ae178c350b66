#include "inference/formats/dtype.h"

#include <cctype>
#include <limits>
#include <stdexcept>

namespace lumen::inference {
namespace {

constexpr DTypeTraits kF32{"F32", 1, 4, false};
constexpr DTypeTraits kF16{"F16", 1, 2, false};
constexpr DTypeTraits kBF16{"BF16", 1, 2, false};
constexpr DTypeTraits kQ4_0{"Q4_0", 32, 18, true};
constexpr DTypeTraits kQ4_1{"Q4_1", 32, 20, true};
constexpr DTypeTraits kQ5_0{"Q5_0", 32, 22, true};
constexpr DTypeTraits kQ5_1{"Q5_1", 32, 24, true};
constexpr DTypeTraits kQ8_0{"Q8_0", 32, 34, true};
constexpr DTypeTraits kQ2_K{"Q2_K", 256, 84, true};
constexpr DTypeTraits kQ3_K{"Q3_K", 256, 110, true};
constexpr DTypeTraits kQ4_K{"Q4_K", 256, 144, true};
constexpr DTypeTraits kQ5_K{"Q5_K", 256, 176, true};
constexpr DTypeTraits kQ6_K{"Q6_K", 256, 210, true};
constexpr DTypeTraits kIQ4_NL{"IQ4_NL", 32, 18, true};
constexpr DTypeTraits kIQ4_XS{"IQ4_XS", 256, 136, true};
constexpr DTypeTraits kMXFP4{"MXFP4", 32, 17, true};

}  // namespace

const DTypeTraits& traits(DType type) {
    switch (type) {
        case DType::F32: return kF32;
        case DType::F16: return kF16;
        case DType::BF16: return kBF16;
        case DType::Q4_0: return kQ4_0;
        case DType::Q4_1: return kQ4_1;
        case DType::Q5_0: return kQ5_0;
        case DType::Q5_1: return kQ5_1;
        case DType::Q8_0: return kQ8_0;
        case DType::Q2_K: return kQ2_K;
        case DType::Q3_K: return kQ3_K;
        case DType::Q4_K: return kQ4_K;
        case DType::Q5_K: return kQ5_K;
        case DType::Q6_K: return kQ6_K;
        case DType::IQ4_NL: return kIQ4_NL;
        case DType::IQ4_XS: return kIQ4_XS;
        case DType::MXFP4: return kMXFP4;
    }
    throw std::logic_error("traits: DType value outside the enum");
}

std::optional<DType> dtypeFromGguf(std::uint32_t id) {
    for (DType t : kAllDTypes)
        if (static_cast<std::uint32_t>(t) == id) return t;
    return std::nullopt;
}

std::optional<DType> dtypeFromName(std::string_view name) {
    for (DType t : kAllDTypes) {
        const std::string_view n = traits(t).name;
        if (n.size() != name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < n.size() && same; ++i)
            same = std::toupper(static_cast<unsigned char>(name[i])) == n[i];
        if (same) return t;
    }
    return std::nullopt;
}

std::optional<std::int64_t> byteSize(DType type, std::int64_t elements) {
    const DTypeTraits& t = traits(type);
    if (elements < 0 || elements % t.blockSize != 0) return std::nullopt;
    const std::int64_t blocks = elements / t.blockSize;
    if (blocks > std::numeric_limits<std::int64_t>::max() / t.blockBytes) return std::nullopt;
    return blocks * t.blockBytes;
}

}  // namespace lumen::inference
