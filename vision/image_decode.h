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
    AlphaMode alpha = AlphaMode::White;
};

struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;  // (height, width, 3) RGB, row-major
};

RgbImage decodeImage(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});

}  // namespace lumen::vision
