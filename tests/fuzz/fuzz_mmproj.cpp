// mmproj GGUF files: parsing and loading give a model or a FormatError, and a loaded model
// encodes a small image into rows of its output width.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "inference/formats/format_error.h"
#include "vision/mmproj.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen;
    static const auto backend = inference::makeCpuBackend({.threads = 1});
    try {
        auto file = std::make_shared<const inference::GgufFile>(inference::GgufFile::parse({data, size}, "fuzz.gguf"));
        auto mmproj = vision::Mmproj::fromGguf(file, *backend);
        if (mmproj->preprocessConfig().cropHeight > 64) return 0;  // keep the work per input small
        const vision::RgbImage image{9, 7, std::vector<std::uint8_t>(9 * 7 * 3, 100)};
        const auto rows = mmproj->encode(image);
        if (rows.empty() || rows.size() % static_cast<std::size_t>(mmproj->outputWidth()) != 0) std::abort();
    } catch (const inference::FormatError&) {
    } catch (const vision::ImageError&) {
    }
    return 0;
}
