#include "vision/image_decode.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
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

std::uint32_t be16(std::span<const std::uint8_t> b, std::size_t i) { return (std::uint32_t{b[i]} << 8) | b[i + 1]; }
std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t i) { return (be16(b, i) << 16) | be16(b, i + 2); }
std::uint32_t le16(std::span<const std::uint8_t> b, std::size_t i) { return (std::uint32_t{b[i + 1]} << 8) | b[i]; }
std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t i) { return (le16(b, i + 2) << 16) | le16(b, i); }

// Width and height from the file's header, read before any pixel is decoded (so a tiny file
// that declares 100000 x 100000 pixels is refused without allocating them). nullopt when the
// header does not say (then the decoded size is checked).
std::optional<std::pair<std::uint64_t, std::uint64_t>> headerSize(std::span<const std::uint8_t> b, const std::string& type) {
    if (type == "image/png" && b.size() >= 24) return std::make_pair(std::uint64_t{be32(b, 16)}, std::uint64_t{be32(b, 20)});
    if (type == "image/bmp" && b.size() >= 26) {
        const auto w = static_cast<std::int32_t>(le32(b, 18)), h = static_cast<std::int32_t>(le32(b, 22));
        return std::make_pair(static_cast<std::uint64_t>(std::abs(static_cast<std::int64_t>(w))), static_cast<std::uint64_t>(std::abs(static_cast<std::int64_t>(h))));
    }
    if (type == "image/jpeg") {
        // Walk the markers to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC). Bytes
        // that are not a marker are skipped, as libjpeg skips them ("extraneous bytes before
        // marker"): two stray bytes must not hide the frame's declared size.
        for (std::size_t i = 2; i + 9 < b.size();) {
            if (b[i] != 0xFF) {
                ++i;
                continue;
            }
            const std::uint8_t m = b[i + 1];
            if (m == 0xFF) {
                ++i;
                continue;
            }
            if (m == 0x00) {  // a stuffed 0xFF, not a marker
                i += 2;
                continue;
            }
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return std::make_pair(std::uint64_t{be16(b, i + 7)}, std::uint64_t{be16(b, i + 5)});
            if (m == 0xDA || m == 0xD9) return std::nullopt;  // image data (or the end) before any frame header
            if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
                i += 2;
                continue;
            }
            i += 2 + be16(b, i + 2);
        }
        return std::nullopt;
    }
    if (type == "image/webp" && b.size() >= 30) {
        if (startsWith(b, {'V', 'P', '8', ' '}, 12)) return std::make_pair(std::uint64_t{le16(b, 26) & 0x3FFF}, std::uint64_t{le16(b, 28) & 0x3FFF});
        if (startsWith(b, {'V', 'P', '8', 'L'}, 12)) {
            const std::uint32_t bits = le32(b, 21);
            return std::make_pair(std::uint64_t{(bits & 0x3FFF) + 1}, std::uint64_t{((bits >> 14) & 0x3FFF) + 1});
        }
        // (VP8X: two 24-bit sizes minus one at 24 and 27, the last byte at 29; found by fuzzing:
        // reading them 32 bits wide overran a 30-byte file)
        const auto le24 = [&](std::size_t i) { return std::uint64_t{b[i]} | std::uint64_t{b[i + 1]} << 8 | std::uint64_t{b[i + 2]} << 16; };
        if (startsWith(b, {'V', 'P', '8', 'X'}, 12)) return std::make_pair(le24(24) + 1, le24(27) + 1);
        return std::nullopt;
    }
    if (type == "image/tiff" && b.size() >= 8) {
        // The first IFD's ImageWidth (256) and ImageLength (257), SHORT or LONG.
        const bool little = b[0] == 'I';
        const auto u16 = [&](std::size_t i) { return little ? le16(b, i) : be16(b, i); };
        const auto u32 = [&](std::size_t i) { return little ? le32(b, i) : be32(b, i); };
        const std::size_t ifd = u32(4);
        if (ifd + 2 > b.size()) return std::nullopt;
        std::uint64_t w = 0, h = 0;
        const std::size_t count = u16(ifd);
        for (std::size_t e = 0; e < count && ifd + 2 + 12 * e + 12 <= b.size(); ++e) {
            const std::size_t at = ifd + 2 + 12 * e;
            const std::uint32_t tag = u16(at), kind = u16(at + 2);
            const std::uint64_t value = kind == 3 ? u16(at + 8) : u32(at + 8);
            if (tag == 256) w = value;
            if (tag == 257) h = value;
        }
        if (w && h) return std::make_pair(w, h);
    }
    return std::nullopt;
}

// The samples per pixel and bytes per sample a header declares (PNG's IHDR, JPEG's frame), or
// the worst case of 4 channels of 16 bits when it does not say.
std::pair<std::uint64_t, std::uint64_t> headerSamples(std::span<const std::uint8_t> b, const std::string& type) {
    if (type == "image/png" && b.size() >= 26) {
        const std::uint64_t depth = b[24] > 8 ? 2 : 1;
        switch (b[25]) {
            case 0: return {1, depth};
            case 2: return {3, depth};
            case 3: return {3, 1};
            case 4: return {2, depth};
            default: return {4, depth};
        }
    }
    if (type == "image/jpeg") return {3, 1};
    return {4, 2};
}

// What decoding w x h pixels of `channels` samples of `sampleBytes` costs: the decoded image, and
// with alpha composited on white its four float planes, their products and the 8-bit result;
// otherwise the colour decode and the RGB copy.
std::uint64_t decodeBytes(std::uint64_t width, std::uint64_t height, std::uint64_t channels, std::uint64_t sampleBytes, bool flattenAlpha) {
    const std::uint64_t pixels = width * height;
    const std::uint64_t working = flattenAlpha && (channels == 2 || channels == 4) ? 4 * 4 * 3 + 3 : 3 * 3;
    return pixels * (channels * sampleBytes + working);
}

void checkDecodeBytes(std::uint64_t bytes, std::uint64_t width, std::uint64_t height, const DecodeOptions& options) {
    if (bytes > options.maxDecodeBytes)
        throw ImageError("the image is " + std::to_string(width) + "x" + std::to_string(height) + " pixels and would take " +
                         std::to_string(bytes >> 20) + " MB to decode, over the limit of " + std::to_string(options.maxDecodeBytes >> 20) + " MB");
}

void checkPixels(std::uint64_t width, std::uint64_t height, const DecodeOptions& options) {
    if (width == 0 || height == 0) throw ImageError("the image is empty (" + std::to_string(width) + "x" + std::to_string(height) + " pixels)");
    if (width > options.maxPixels || height > options.maxPixels || width * height > options.maxPixels)
        throw ImageError("the image is " + std::to_string(width) + "x" + std::to_string(height) + " = " + std::to_string(width * height) +
                         " pixels, over the limit of " + std::to_string(options.maxPixels));
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
    const std::string type = sniffImageType(bytes);
    if (type.empty()) throw ImageError("not an image in a supported format (JPEG, PNG, WebP, BMP or TIFF)");
    int reduce = 1;  // a large JPEG decoded at 1/2, 1/4 or 1/8 (DecodeOptions::neededSide)
    if (const auto size = headerSize(bytes, type)) {
        checkPixels(size->first, size->second, options);
        if (type == "image/jpeg" && options.neededSide > 0)
            while (reduce < 8 && std::min(size->first, size->second) / static_cast<std::uint64_t>(2 * reduce) >= 2ull * static_cast<std::uint64_t>(options.neededSide))
                reduce *= 2;
        const auto [channels, sampleBytes] = headerSamples(bytes, type);
        const auto reduced = [reduce](std::uint64_t side) { return (side + static_cast<std::uint64_t>(reduce) - 1) / static_cast<std::uint64_t>(reduce); };
        checkDecodeBytes(decodeBytes(reduced(size->first), reduced(size->second), channels, sampleBytes, options.alpha == AlphaMode::White),
                         size->first, size->second, options);
    } else if (type == "image/jpeg") {
        // No frame header before the image data: the decoder would have nothing to size it by
        // either, and it is not checked blind.
        throw ImageError("the JPEG has no frame header (its size) before its image data: the file is damaged");
    }
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw ImageError("image file is too large (over 2 GB)");
    // OpenCV picks its decoder from the bytes again, trying each in turn. A WebP whose header its
    // WebP decoder rejects goes on to the decoders that look further in: DICOM ("DICM" at 128)
    // and GDAL ("DTED" at 140), whose libraries abort on such bytes. The other formats' decoders
    // claim their files by the magic sniffImageType checked, before those two are asked.
    if (type == "image/webp" && (startsWith(bytes, {'D', 'I', 'C', 'M'}, 128) || startsWith(bytes, {'D', 'T', 'E', 'D'}, 140)))
        throw ImageError("the WebP file is damaged (its header is not one a WebP decoder reads)");

    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U,
                         const_cast<std::uint8_t*>(bytes.data()));
    // note: OpenCV refuses images over 2^30 pixels before allocating (its
    // OPENCV_IO_MAX_IMAGE_PIXELS guard); our own, lower limit is applied to the decoded size.
    cv::Mat decoded;
    try {
        // IMREAD_UNCHANGED keeps alpha and 16-bit samples but skips EXIF rotation; decode the
        // colour path separately only when the file has no alpha, to keep the orientation.
        // (A reduced JPEG goes through the colour path once, reduced: JPEGs have no alpha.)
        const int reducedFlags[] = {0, cv::IMREAD_REDUCED_COLOR_2, cv::IMREAD_REDUCED_COLOR_4, 0, cv::IMREAD_REDUCED_COLOR_8};
        decoded = reduce > 1 ? cv::imdecode(buffer, reducedFlags[reduce / 2]) : cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
    } catch (const cv::Exception& e) {
        throw ImageError(std::string("the image could not be decoded: ") + e.what());
    }
    if (decoded.empty()) throw ImageError("the image could not be decoded (damaged or truncated file)");
    checkPixels(static_cast<std::uint64_t>(decoded.cols), static_cast<std::uint64_t>(decoded.rows), options);
    checkDecodeBytes(decodeBytes(static_cast<std::uint64_t>(decoded.cols), static_cast<std::uint64_t>(decoded.rows),
                                 static_cast<std::uint64_t>(decoded.channels()), decoded.elemSize1(), options.alpha == AlphaMode::White),
                     static_cast<std::uint64_t>(decoded.cols), static_cast<std::uint64_t>(decoded.rows), options);

    cv::Mat bgr;
    if (decoded.channels() == 4 && options.alpha == AlphaMode::White) {
        bgr = flattenAlpha(decoded);
    } else if (decoded.channels() == 4) {
        cv::cvtColor(decoded, bgr, cv::COLOR_BGRA2BGR);
        if (bgr.depth() != CV_8U) bgr.convertTo(bgr, CV_8U, 1.0 / 257.0);
    } else if (reduce > 1) {
        bgr = decoded;  // (the colour path already, oriented)
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
