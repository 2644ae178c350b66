// Image decoding: any bytes give either pixels or vision::ImageError, nothing else.
#include <cstdint>
#include <span>

#include "vision/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        // The options follow from the input's size, so every seed reaches both alpha modes and the
        // reduced JPEG decode without bytes of its own.
        const auto alpha = size % 2 ? lumen::vision::AlphaMode::Drop : lumen::vision::AlphaMode::White;
        const auto image =
            lumen::vision::decodeImage(std::span(data, size), {.maxPixels = 4'000'000, .alpha = alpha, .neededSide = size % 4 >= 2 ? 64 : 0});
        if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3) __builtin_trap();
    } catch (const lumen::vision::ImageError&) {
    }
    return 0;
}
