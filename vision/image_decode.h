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
};

struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;  // (height, width, 3) RGB, row-major
};

RgbImage decodeImage(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});

}  // namespace lumen::vision
