#pragma once
// Decoding the image files users drop in (untrusted bytes) into 8-bit RGB pixels.
// JPEG, PNG, WebP, BMP and TIFF through OpenCV; EXIF orientation applied; transparent pixels
// composited on white; grayscale expanded and 16-bit reduced to 8-bit.

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace lumen::vision {

class ImageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The MIME type from the file's magic bytes ("image/png"), or empty when it is none we read.
std::string sniffImageType(std::span<const std::uint8_t> bytes);

// What happens to transparent pixels.
enum class AlphaMode {
    White,  // composited on white: what the user sees
    Drop,   // the colour channels kept as they are: PIL's convert("RGB"), which the Hugging Face
            // image processors (and so the published model results) use
};

struct DecodeOptions {
    // Images with more pixels are refused before decoding (decompression bombs).
    std::uint64_t maxPixels = 200'000'000;
    // And those whose decoding would take more memory than this (decoded samples, and the float
    // planes of compositing alpha on white), judged from the header before decoding and from
    // the decoded image after: a 762 KB PNG of 14000 x 14000 RGBA needs about 12 GB.
    std::uint64_t maxDecodeBytes = 3ull << 30;
    AlphaMode alpha = AlphaMode::White;
    // The most pixels a side of the image will be looked at with (0: the whole image). A JPEG
    // with a short side of at least 4x this is decoded reduced by 2, 4 or 8 (libjpeg scales
    // while it decodes: a 14000 x 14000 photo then takes 1/64 of the memory), keeping at least
    // twice this on its short side, so the resize that follows loses nothing the model sees.
    int neededSide = 0;
};

// No model Lumen runs looks at more than this many pixels a side (CLIP and SigLIP 224-512,
// LLaVA 336-672, Qwen-VL and Gemma 3 up to about 1000): what the app and CLI pass as neededSide.
constexpr int kLargestModelSide = 1024;

struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;  // (height, width, 3) RGB, row-major
};

RgbImage decodeImage(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});

}  // namespace lumen::vision
