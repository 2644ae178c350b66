#pragma once
// Turning decoded RGB pixels into a vision model's input tensor, exactly as the model's Hugging
// Face image processor does it (CLIPImageProcessor, BitImageProcessor for DINOv2):
//
//   convert to RGB -> resize (shortest edge to `size`, or to a fixed height x width) with PIL's
//   filters -> center crop (zero padding when the image is smaller) -> rescale (x 1/255) ->
//   normalize ((x - mean) / std per channel) -> (3, height, width) float, channel-major
//
// The resize reproduces Pillow's Image.resize bit for bit: separable convolution, horizontal pass
// first, the filter widened by the scale factor when shrinking (antialiasing), coefficients in
// 22-bit fixed point and each pass rounded to 8 bits. Configured from preprocessor_config.json.

#include <array>
#include <filesystem>
#include <string_view>
#include <vector>

#include "vision/image_decode.h"

namespace lumen::vision {

// PIL's resampling filters, numbered as in PIL.Image.Resampling (and the configs' "resample").
enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

struct PreprocessConfig {
    bool doResize = true;
    int shortestEdge = 224;  // > 0: the short side becomes this, the aspect ratio kept
    int resizeHeight = 0;    // shortestEdge == 0: resized to exactly resizeHeight x resizeWidth
    int resizeWidth = 0;
    Resample resample = Resample::Bicubic;
    bool doCenterCrop = true;
    int cropHeight = 224;
    int cropWidth = 224;
    bool doRescale = true;
    double rescaleFactor = 1.0 / 255.0;
    bool doNormalize = true;
    std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
    std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};

    // OpenAI CLIP's processor (the defaults above) and DINOv2's (short side 256, crop 224,
    // ImageNet mean and std).
    static PreprocessConfig clip(int size = 224);
    static PreprocessConfig dinov2();
    // Parses a preprocessor_config.json; keys it does not name keep `defaults`. Throws ImageError
    // with the file name and the key on a bad value.
    static PreprocessConfig fromJson(std::string_view json, const std::string& displayName, const PreprocessConfig& defaults);
    static PreprocessConfig load(const std::filesystem::path& file, const PreprocessConfig& defaults);
};

// The model input: (channels, height, width) floats.
struct PixelTensor {
    int channels = 3;
    int height = 0;
    int width = 0;
    std::vector<float> data;
};

// Pillow's Image.resize(size, filter) on an 8-bit RGB image.
RgbImage resizeLikePil(const RgbImage& image, int width, int height, Resample filter);
// The processors' "shortest_edge" output size (width, height): the short side becomes `size`, the
// long side int(size * long / short).
std::array<int, 2> shortEdgeSize(int width, int height, int size);
// The centered crop (top and left rounded down); zero padding where the image is smaller.
RgbImage centerCrop(const RgbImage& image, int width, int height);
// Every step up to the 8-bit pixels the model will see (resize and crop).
RgbImage resizeAndCrop(const RgbImage& image, const PreprocessConfig& config);
// All of it.
PixelTensor preprocess(const RgbImage& image, const PreprocessConfig& config);

}  // namespace lumen::vision
