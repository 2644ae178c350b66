#include "vision/image_decode.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace lumen::vision {
namespace {

bool startsWith(std::span<const std::uint8_t> bytes, std::initializer_list<int> magic,
                std::size_t offset = 0) {
    if (bytes.size() < offset + magic.size()) return false;
    std::size_t i = offset;
    for (int b : magic) {
        if (bytes[i++] != static_cast<std::uint8_t>(b)) return false;
    }
    return true;
}

// Composites a BGRA image of any depth onto white and returns 8-bit BGR.
cv::Mat flattenAlpha(const cv::Mat& bgra) {
    cv::Mat f;
    const double scale = bgra.depth() == CV_16U ? 1.0 / 65535.0 : 1.0 / 255.0;
    bgra.convertTo(f, CV_32F, scale);
    std::vector<cv::Mat> ch;
    cv::split(f, ch);
    cv::Mat out;
    std::vector<cv::Mat> rgb(3);
    for (int c = 0; c < 3; ++c) rgb[c] = ch[c].mul(ch[3]) + (1.0 - ch[3]);
    cv::merge(rgb, out);
    out.convertTo(out, CV_8U, 255.0);
    return out;
}

}  // namespace

std::string sniffImageType(std::span<const std::uint8_t> bytes) {
    if (startsWith(bytes, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return "image/png";
    if (startsWith(bytes, {0xFF, 0xD8, 0xFF})) return "image/jpeg";
    if (startsWith(bytes, {'R', 'I', 'F', 'F'}) && startsWith(bytes, {'W', 'E', 'B', 'P'}, 8))
        return "image/webp";
    if (startsWith(bytes, {'B', 'M'})) return "image/bmp";
    if (startsWith(bytes, {'I', 'I', 42, 0}) || startsWith(bytes, {'M', 'M', 0, 42}))
        return "image/tiff";
    return {};
}

RgbImage decodeImage(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
    if (sniffImageType(bytes).empty())
        throw ImageError("not an image in a supported format (JPEG, PNG, WebP, BMP or TIFF)");
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw ImageError("image file is too large (over 2 GB)");

    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U,
                         const_cast<std::uint8_t*>(bytes.data()));
    // note: OpenCV refuses images over 2^30 pixels before allocating (its
    // OPENCV_IO_MAX_IMAGE_PIXELS guard); our own, lower limit is applied to the decoded size.
    cv::Mat decoded;
    try {
        // IMREAD_UNCHANGED keeps alpha and 16-bit samples but skips EXIF rotation; decode the
        // colour path separately only when the file has no alpha, to keep the orientation.
        decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
    } catch (const cv::Exception& e) {
        throw ImageError(std::string("the image could not be decoded: ") + e.what());
    }
    if (decoded.empty()) throw ImageError("the image could not be decoded (damaged or truncated file)");
    const std::uint64_t pixels =
        static_cast<std::uint64_t>(decoded.cols) * static_cast<std::uint64_t>(decoded.rows);
    if (pixels > options.maxPixels)
        throw ImageError("the image has " + std::to_string(pixels) + " pixels, over the limit of " +
                         std::to_string(options.maxPixels));

    cv::Mat bgr;
    if (decoded.channels() == 4 && options.alpha == AlphaMode::White) {
        bgr = flattenAlpha(decoded);
    } else if (decoded.channels() == 4) {
        cv::cvtColor(decoded, bgr, cv::COLOR_BGRA2BGR);
        if (bgr.depth() != CV_8U) bgr.convertTo(bgr, CV_8U, 1.0 / 257.0);
    } else {
        // Decode again through the colour path, which applies the EXIF orientation and
        // converts grayscale and 16-bit samples to 8-bit BGR.
        try {
            bgr = cv::imdecode(buffer, cv::IMREAD_COLOR);
        } catch (const cv::Exception& e) {
            throw ImageError(std::string("the image could not be decoded: ") + e.what());
        }
        if (bgr.empty()) throw ImageError("the image could not be decoded (damaged or truncated file)");
    }
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);

    RgbImage image;
    image.width = rgb.cols;
    image.height = rgb.rows;
    image.pixels.resize(static_cast<std::size_t>(rgb.cols) * rgb.rows * 3);
    for (int y = 0; y < rgb.rows; ++y)
        std::memcpy(image.pixels.data() + static_cast<std::size_t>(y) * rgb.cols * 3, rgb.ptr(y),
                    static_cast<std::size_t>(rgb.cols) * 3);
    return image;
}

}  // namespace lumen::vision
