#include "vision/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>

#include "inference/formats/text.h"

namespace lumen::vision {
namespace {

using Json = nlohmann::json;

// --- Pillow's resampling (Resample.c): the filters and their supports ---------------------

double boxFilter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double triangleFilter(double x) {
    x = std::abs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

double hammingFilter(double x) {
    x = std::abs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= std::numbers::pi;
    return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}

double bicubicFilter(double x) {
    constexpr double a = -0.5;  // PIL's choice (PyTorch's bicubic interpolation uses -0.75)
    x = std::abs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= std::numbers::pi;
    return std::sin(x) / x;
}

double lanczosFilter(double x) { return (x > -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0; }

struct Filter {
    double (*f)(double);
    double support;
};

Filter filterFor(Resample r) {
    switch (r) {
        case Resample::Box: return {boxFilter, 0.5};
        case Resample::Bilinear: return {triangleFilter, 1.0};
        case Resample::Hamming: return {hammingFilter, 1.0};
        case Resample::Bicubic: return {bicubicFilter, 2.0};
        case Resample::Lanczos: return {lanczosFilter, 3.0};
        case Resample::Nearest: break;
    }
    throw ImageError("nearest-neighbour resampling has no filter");
}

// 8-bit images accumulate in 32-bit integers with this many fractional bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output position: the first input index, the number of taps, and the taps in fixed
// point (ksize per output, unused ones zero).
struct Coefficients {
    int ksize = 0;
    std::vector<int> first;
    std::vector<int> count;
    std::vector<std::int32_t> taps;
};

Coefficients coefficients(int inSize, int outSize, const Filter& filter) {
    const double scale = static_cast<double>(inSize) / outSize;
    const double filterScale = std::max(scale, 1.0);  // wider when shrinking: the antialiasing
    const double support = filter.support * filterScale;
    Coefficients c;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.first.resize(static_cast<std::size_t>(outSize));
    c.count.resize(static_cast<std::size_t>(outSize));
    c.taps.assign(static_cast<std::size_t>(outSize) * c.ksize, 0);
    std::vector<double> k(static_cast<std::size_t>(c.ksize));
    for (int xx = 0; xx < outSize; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterScale;
        const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
        const int xmax = std::min(static_cast<int>(center + support + 0.5), inSize) - xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            k[static_cast<std::size_t>(x)] = filter.f((x + xmin - center + 0.5) * ss);
            ww += k[static_cast<std::size_t>(x)];
        }
        for (int x = 0; x < xmax; ++x) {
            const double w = ww != 0.0 ? k[static_cast<std::size_t>(x)] / ww : k[static_cast<std::size_t>(x)];
            const double fixed = w * (1 << kPrecisionBits);
            c.taps[static_cast<std::size_t>(xx) * c.ksize + x] = static_cast<std::int32_t>(w < 0 ? fixed - 0.5 : fixed + 0.5);
        }
        c.first[static_cast<std::size_t>(xx)] = xmin;
        c.count[static_cast<std::size_t>(xx)] = xmax;
    }
    return c;
}

std::uint8_t clip8(std::int32_t v) { return static_cast<std::uint8_t>(std::clamp(v >> kPrecisionBits, 0, 255)); }

// One pass along x (horizontal) or y, 3 channels, 8-bit result.
RgbImage resamplePass(const RgbImage& in, int outSize, bool horizontal, const Filter& filter) {
    const Coefficients c = coefficients(horizontal ? in.width : in.height, outSize, filter);
    RgbImage out;
    out.width = horizontal ? outSize : in.width;
    out.height = horizontal ? in.height : outSize;
    out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
    const auto at = [&](int x, int y, int ch) { return in.pixels[(static_cast<std::size_t>(y) * in.width + x) * 3 + ch]; };
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
            const int o = horizontal ? x : y;
            const std::int32_t* k = c.taps.data() + static_cast<std::size_t>(o) * c.ksize;
            const int first = c.first[static_cast<std::size_t>(o)], count = c.count[static_cast<std::size_t>(o)];
            for (int ch = 0; ch < 3; ++ch) {
                std::int32_t sum = 1 << (kPrecisionBits - 1);
                for (int t = 0; t < count; ++t) sum += (horizontal ? at(first + t, y, ch) : at(x, first + t, ch)) * k[t];
                out.pixels[(static_cast<std::size_t>(y) * out.width + x) * 3 + ch] = clip8(sum);
            }
        }
    return out;
}

RgbImage resizeNearest(const RgbImage& in, int width, int height) {
    // PIL maps output pixel centres back: source = floor((x + 0.5) * scale).
    RgbImage out{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
    const double sx = static_cast<double>(in.width) / width, sy = static_cast<double>(in.height) / height;
    for (int y = 0; y < height; ++y) {
        const int yi = std::min(static_cast<int>((y + 0.5) * sy), in.height - 1);
        for (int x = 0; x < width; ++x) {
            const int xi = std::min(static_cast<int>((x + 0.5) * sx), in.width - 1);
            std::copy_n(in.pixels.data() + (static_cast<std::size_t>(yi) * in.width + xi) * 3, 3,
                        out.pixels.data() + (static_cast<std::size_t>(y) * width + x) * 3);
        }
    }
    return out;
}

// --- preprocessor_config.json -----------------------------------------------------------------

[[noreturn]] void configError(const std::string& file, const std::string& what) { throw ImageError(file + ": " + what); }

int positiveInt(const Json& v, const std::string& file, const char* key) {
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 || v.get<std::int64_t>() > 16384)
        configError(file, std::string("\"") + key + "\" must be a whole number of pixels from 1 to 16384");
    return v.get<int>();
}

bool flag(const Json& j, const char* key, bool fallback, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) configError(file, std::string("\"") + key + "\" must be true or false");
    return it->get<bool>();
}

std::array<float, 3> triple(const Json& j, const char* key, std::array<float, 3> fallback, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (it->is_number()) return {it->get<float>(), it->get<float>(), it->get<float>()};
    if (!it->is_array() || it->size() != 3 || !std::all_of(it->begin(), it->end(), [](const Json& v) { return v.is_number(); }))
        configError(file, std::string("\"") + key + "\" must be three numbers (one per RGB channel)");
    return {(*it)[0].get<float>(), (*it)[1].get<float>(), (*it)[2].get<float>()};
}

}  // namespace

PreprocessConfig PreprocessConfig::clip(int size) {
    PreprocessConfig c;
    c.shortestEdge = c.cropHeight = c.cropWidth = size;
    return c;
}

PreprocessConfig PreprocessConfig::dinov2() {
    PreprocessConfig c;
    c.shortestEdge = 256;
    c.cropHeight = c.cropWidth = 224;
    c.mean = {0.485f, 0.456f, 0.406f};
    c.std = {0.229f, 0.224f, 0.225f};
    return c;
}

PreprocessConfig PreprocessConfig::fromJson(std::string_view text, const std::string& file, const PreprocessConfig& defaults) {
    Json j;
    if (inference::jsonNestingDepth(text) > inference::kMaxJsonDepth)
        configError(file, "nests deeper than " + std::to_string(inference::kMaxJsonDepth) + " levels");
    try {
        j = Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
        configError(file, std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) configError(file, "not a JSON object");
    PreprocessConfig c = defaults;
    c.doResize = flag(j, "do_resize", c.doResize, file);
    c.doCenterCrop = flag(j, "do_center_crop", c.doCenterCrop, file);
    c.doRescale = flag(j, "do_rescale", c.doRescale, file);
    c.doNormalize = flag(j, "do_normalize", c.doNormalize, file);
    if (const auto it = j.find("size"); it != j.end() && !it->is_null()) {
        // {"shortest_edge": n}, {"height": h, "width": w}, or a bare n (older configs: shortest edge)
        if (it->is_object() && it->contains("shortest_edge")) {
            c.shortestEdge = positiveInt((*it)["shortest_edge"], file, "size.shortest_edge");
        } else if (it->is_object() && it->contains("height") && it->contains("width")) {
            c.shortestEdge = 0;
            c.resizeHeight = positiveInt((*it)["height"], file, "size.height");
            c.resizeWidth = positiveInt((*it)["width"], file, "size.width");
        } else if (it->is_number_integer()) {
            c.shortestEdge = positiveInt(*it, file, "size");
        } else {
            configError(file, "\"size\" must be {\"shortest_edge\": n}, {\"height\": h, \"width\": w} or a number");
        }
    }
    if (const auto it = j.find("crop_size"); it != j.end() && !it->is_null()) {
        if (it->is_object() && it->contains("height") && it->contains("width")) {
            c.cropHeight = positiveInt((*it)["height"], file, "crop_size.height");
            c.cropWidth = positiveInt((*it)["width"], file, "crop_size.width");
        } else if (it->is_number_integer()) {
            c.cropHeight = c.cropWidth = positiveInt(*it, file, "crop_size");
        } else {
            configError(file, "\"crop_size\" must be {\"height\": h, \"width\": w} or a number");
        }
    }
    if (const auto it = j.find("resample"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int>() < 0 || it->get<int>() > 5)
            configError(file, "\"resample\" must be one of PIL's filters, 0 to 5");
        c.resample = static_cast<Resample>(it->get<int>());
    }
    if (const auto it = j.find("rescale_factor"); it != j.end() && !it->is_null()) {
        if (!it->is_number() || !(it->get<double>() > 0.0)) configError(file, "\"rescale_factor\" must be a positive number");
        c.rescaleFactor = it->get<double>();
    }
    c.mean = triple(j, "image_mean", c.mean, file);
    c.std = triple(j, "image_std", c.std, file);
    // (pixels are divided by it: a tiny or negative deviation makes infinities, not an image)
    for (const float v : c.std)
        if (!(v >= 1e-6f) || !std::isfinite(v)) configError(file, "\"image_std\" must be positive numbers (at least 1e-6)");
    for (const float v : c.mean)
        if (!std::isfinite(v)) configError(file, "\"image_mean\" must be finite numbers");
    return c;
}

PreprocessConfig PreprocessConfig::load(const std::filesystem::path& file, const PreprocessConfig& defaults) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ImageError(file.string() + ": cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    return fromJson(text.str(), file.string(), defaults);
}

RgbImage resizeLikePil(const RgbImage& image, int width, int height, Resample filter) {
    if (width <= 0 || height <= 0 || image.width <= 0 || image.height <= 0) throw ImageError("cannot resize an empty image");
    if (width == image.width && height == image.height) return image;
    if (filter == Resample::Nearest) return resizeNearest(image, width, height);
    const Filter f = filterFor(filter);
    // note: Pillow's order: the horizontal pass first, each pass rounded to 8 bits.
    RgbImage out = width != image.width ? resamplePass(image, width, true, f) : image;
    if (height != image.height) out = resamplePass(out, height, false, f);
    return out;
}

std::array<int, 2> shortEdgeSize(int width, int height, int size) {
    const int shortSide = std::min(width, height), longSide = std::max(width, height);
    const int newLong = static_cast<int>(static_cast<double>(size) * longSide / shortSide);
    return width <= height ? std::array<int, 2>{size, newLong} : std::array<int, 2>{newLong, size};
}

RgbImage centerCrop(const RgbImage& image, int width, int height) {
    if (width == image.width && height == image.height) return image;
    RgbImage out{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 0)};
    // The crop's top-left corner in the image (negative: padding), rounded down as Python's //.
    const auto floorHalf = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    const int top = floorHalf(image.height - height), left = floorHalf(image.width - width);
    for (int y = 0; y < height; ++y) {
        const int sy = top + y;
        if (sy < 0 || sy >= image.height) continue;
        for (int x = 0; x < width; ++x) {
            const int sx = left + x;
            if (sx < 0 || sx >= image.width) continue;
            std::copy_n(image.pixels.data() + (static_cast<std::size_t>(sy) * image.width + sx) * 3, 3,
                        out.pixels.data() + (static_cast<std::size_t>(y) * width + x) * 3);
        }
    }
    return out;
}

RgbImage resizeAndCrop(const RgbImage& image, const PreprocessConfig& config) {
    if (image.width <= 0 || image.height <= 0) throw ImageError("the image is empty");
    RgbImage out = image;
    if (config.doResize) {
        const auto [w, h] = config.shortestEdge > 0 ? shortEdgeSize(image.width, image.height, config.shortestEdge)
                                                    : std::array<int, 2>{config.resizeWidth, config.resizeHeight};
        if (w <= 0 || h <= 0) throw ImageError("the image is too narrow to resize (" + std::to_string(image.width) + "x" + std::to_string(image.height) + ")");
        out = resizeLikePil(out, w, h, config.resample);
    }
    if (config.doCenterCrop) out = centerCrop(out, config.cropWidth, config.cropHeight);
    return out;
}

PixelTensor preprocess(const RgbImage& image, const PreprocessConfig& config) {
    const RgbImage pixels = resizeAndCrop(image, config);
    PixelTensor t;
    t.height = pixels.height;
    t.width = pixels.width;
    const std::size_t plane = static_cast<std::size_t>(t.height) * t.width;
    t.data.resize(plane * 3);
    for (std::size_t i = 0; i < plane; ++i)
        for (int c = 0; c < 3; ++c) {
            // As the processors compute it: rescale in double then float, normalize in float.
            float v = pixels.pixels[i * 3 + c];
            if (config.doRescale) v = static_cast<float>(static_cast<double>(pixels.pixels[i * 3 + c]) * config.rescaleFactor);
            if (config.doNormalize) v = (v - config.mean[static_cast<std::size_t>(c)]) / config.std[static_cast<std::size_t>(c)];
            t.data[static_cast<std::size_t>(c) * plane + i] = v;
        }
    return t;
}

}  // namespace lumen::vision
