// preprocessor_config.json from a model folder: parsing gives a config or an ImageError, and a
// parsed config preprocesses a small image into exactly the tensor it promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vision/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::vision;
    try {
        PreprocessConfig c = PreprocessConfig::fromJson(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json", PreprocessConfig{});
        // Keep the work small whatever sizes the input asks for.
        c.shortestEdge = c.shortestEdge > 0 ? 1 + c.shortestEdge % 64 : 0;
        c.resizeHeight = 1 + c.resizeHeight % 64;
        c.resizeWidth = 1 + c.resizeWidth % 64;
        c.cropHeight = 1 + c.cropHeight % 64;
        c.cropWidth = 1 + c.cropWidth % 64;
        RgbImage image{7, 5, std::vector<std::uint8_t>(7 * 5 * 3)};
        for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<std::uint8_t>(i * 37);
        const PixelTensor t = preprocess(image, c);
        if (t.data.size() != static_cast<std::size_t>(t.channels) * t.height * t.width) std::abort();
    } catch (const ImageError&) {
    }
    return 0;
}
