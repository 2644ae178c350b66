// Decoding images: formats, alpha on white, grayscale, 16-bit, size limit, bad bytes.

#include <QtTest>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "vision/image_decode.h"

using namespace lumen::vision;

namespace {

std::vector<std::uint8_t> encode(const cv::Mat& image, const std::string& ext) {
    std::vector<std::uint8_t> bytes;
    cv::imencode(ext, image, bytes);
    return bytes;
}

}  // namespace

class TestImageDecode : public QObject {
    Q_OBJECT
private slots:
    void losslessFormatsRoundTrip_data() {
        QTest::addColumn<QString>("ext");
        QTest::addColumn<QString>("mime");
        QTest::newRow("png") << ".png" << "image/png";
        QTest::newRow("bmp") << ".bmp" << "image/bmp";
        QTest::newRow("tiff") << ".tiff" << "image/tiff";
        QTest::newRow("webp lossless") << ".webp" << "image/webp";
    }
    void losslessFormatsRoundTrip() {
        QFETCH(QString, ext);
        QFETCH(QString, mime);
        cv::Mat bgr(5, 7, CV_8UC3);
        for (int y = 0; y < bgr.rows; ++y)
            for (int x = 0; x < bgr.cols; ++x) bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 30, y * 40, 200);
        std::vector<int> params;
        if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};  // >100: lossless
        std::vector<std::uint8_t> bytes;
        QVERIFY(cv::imencode(ext.toStdString(), bgr, bytes, params));
        QCOMPARE(QString::fromStdString(sniffImageType(bytes)), mime);
        const RgbImage image = decodeImage(bytes);
        QCOMPARE(image.width, 7);
        QCOMPARE(image.height, 5);
        // Pixel (x=3, y=2) in RGB order.
        const std::size_t at = (2 * 7 + 3) * 3;
        QCOMPARE(int(image.pixels[at + 0]), 200);
        QCOMPARE(int(image.pixels[at + 1]), 80);
        QCOMPARE(int(image.pixels[at + 2]), 90);
    }

    void jpegDecodes() {
        cv::Mat gray(16, 16, CV_8UC3, cv::Scalar(128, 128, 128));
        const RgbImage image = decodeImage(encode(gray, ".jpg"));
        QCOMPARE(image.width, 16);
        QVERIFY(std::abs(int(image.pixels[0]) - 128) <= 2);
    }

    void alphaIsCompositedOnWhite() {
        cv::Mat bgra(2, 2, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // fully transparent red
        bgra.at<cv::Vec4b>(0, 1) = cv::Vec4b(0, 0, 255, 255);   // one opaque red pixel
        bgra.at<cv::Vec4b>(1, 0) = cv::Vec4b(0, 0, 0, 128);     // half-transparent black
        const RgbImage image = decodeImage(encode(bgra, ".png"));
        QCOMPARE(int(image.pixels[0]), 255);  // transparent -> white
        QCOMPARE(int(image.pixels[1]), 255);
        QCOMPARE(int(image.pixels[3]), 255);  // opaque red stays red
        QCOMPARE(int(image.pixels[4]), 0);
        QVERIFY(std::abs(int(image.pixels[6]) - 127) <= 1);  // half black on white -> mid gray
    }

    void grayscaleAnd16Bit() {
        cv::Mat gray(3, 3, CV_8UC1, cv::Scalar(77));
        RgbImage image = decodeImage(encode(gray, ".png"));
        QCOMPARE(image.pixels.size(), std::size_t(27));
        QCOMPARE(int(image.pixels[0]), 77);
        QCOMPARE(int(image.pixels[2]), 77);
        cv::Mat deep(3, 3, CV_16UC3, cv::Scalar(65535, 0, 32896));
        image = decodeImage(encode(deep, ".png"));
        QCOMPARE(int(image.pixels[0]), 128);  // R from 32896/257
        QCOMPARE(int(image.pixels[2]), 255);  // B
    }

    void pixelLimit() {
        cv::Mat big(100, 100, CV_8UC3, cv::Scalar(1, 2, 3));
        try {
            decodeImage(encode(big, ".png"), {.maxPixels = 5000});
            QFAIL("image over the pixel limit was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("100x100 = 10000 pixels"), e.what());
        }
    }

    // Within the pixel limit but not the memory one: a 14000 x 14000 RGBA PNG (about 11 GB to
    // composite on white) is refused from its header; a decoded image over a lower budget after.
    void decodeMemoryLimit() {
        std::vector<std::uint8_t> bytes = encode(cv::Mat(3, 5, CV_8UC4, cv::Scalar(1, 2, 3, 4)), ".png");
        for (std::size_t at : {16u, 20u}) {
            bytes[at] = 0;
            bytes[at + 1] = 0;
            bytes[at + 2] = 14000 >> 8;
            bytes[at + 3] = 14000 & 0xFF;
        }
        try {
            decodeImage(bytes);
            QFAIL("a 14000 x 14000 RGBA image was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("14000x14000 pixels and would take") && QString::fromUtf8(e.what()).contains("over the limit of 3072 MB"),
                     e.what());
        }
        const cv::Mat alpha(200, 300, CV_8UC4, cv::Scalar(10, 20, 30, 128));
        try {
            decodeImage(encode(alpha, ".png"), {.maxDecodeBytes = 1 << 20});
            QFAIL("an image over the memory budget was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("300x200 pixels"), e.what());
        }
        QCOMPARE(decodeImage(encode(alpha, ".png"), {.maxDecodeBytes = 4 << 20}).width, 300);
    }

    // A JPEG far larger than a model looks at is decoded reduced (1/2, 1/4, 1/8 while libjpeg
    // decodes), keeping at least twice the needed side: a 4400 x 4200 photo for a model of 512
    // pixels comes out 1100 x 1050, within a memory budget its full size is over, with the same
    // picture (each quadrant's colour within 3 levels). Smaller JPEGs and other formats decode whole.
    void largeJpegDecodedReduced() {
        cv::Mat bgr(4200, 4400, CV_8UC3);
        const cv::Vec3b colours[] = {{200, 30, 40}, {20, 180, 60}, {10, 20, 230}, {120, 120, 120}};
        for (int y = 0; y < bgr.rows; ++y)
            for (int x = 0; x < bgr.cols; ++x) bgr.at<cv::Vec3b>(y, x) = colours[(y >= 2100) * 2 + (x >= 2200)];
        const auto bytes = encode(bgr, ".jpg");
        try {
            decodeImage(bytes, {.maxDecodeBytes = 64 << 20});
            QFAIL("the full-size decode fit a budget it is over");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("4400x4200 pixels"), e.what());
        }
        const RgbImage small = decodeImage(bytes, {.maxDecodeBytes = 64 << 20, .neededSide = 512});
        QCOMPARE(small.width, 1100);
        QCOMPARE(small.height, 1050);
        for (int q = 0; q < 4; ++q) {
            const int x = q % 2 ? 825 : 275, y = q / 2 ? 787 : 262;
            const std::uint8_t* p = small.pixels.data() + (static_cast<std::size_t>(y) * small.width + x) * 3;
            for (int c = 0; c < 3; ++c)  // (RGB out, BGR in)
                QVERIFY2(std::abs(int{p[c]} - int{colours[q][2 - c]}) <= 3, qPrintable(QStringLiteral("quadrant %1 channel %2: %3").arg(q).arg(c).arg(p[c])));
        }
        QCOMPARE(decodeImage(bytes, {.neededSide = 1000}).width, 2200);  // 4200 / 4 < 2 x 1000: only halved
        QCOMPARE(decodeImage(bytes, {.neededSide = 2000}).width, 4400);  // not even halved
        const cv::Mat png(300, 300, CV_8UC3, cv::Scalar(1, 2, 3));
        QCOMPARE(decodeImage(encode(png, ".png"), {.neededSide = 16}).width, 300);  // (only JPEGs are reduced)
    }

    // A WebP whose header OpenCV's WebP decoder rejects must not reach the decoders that look
    // further into the bytes (DICOM's "DICM" at 128, GDAL's "DTED" at 140): libgdcm aborts on
    // them (found by fuzzing; tests/fuzz/corpus/image_decode/regress-webp-dicom.webp).
    void damagedWebPNeverReachesOtherDecoders() {
        for (const auto& [offset, magic] : {std::pair<std::size_t, std::string>{128, "DICM"}, {140, "DTED"}}) {
            std::vector<std::uint8_t> bytes(200, 0);
            const std::vector<std::uint8_t> head{'R', 'I', 'F', 'F', 0xC0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', 0, 0x10};
            std::copy(head.begin(), head.end(), bytes.begin());
            std::copy(magic.begin(), magic.end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset));
            try {
                decodeImage(bytes);
                QFAIL("a damaged WebP was decoded");
            } catch (const ImageError& e) {
                QVERIFY2(QString::fromUtf8(e.what()).contains("WebP file is damaged"), e.what());
            }
        }
    }

    // An extended WebP (VP8X) header's 24-bit sizes, read within a 30-byte file (reading them 32
    // bits wide ran one byte past it: tests/fuzz/corpus/image_decode/regress-vp8x-short.webp).
    void extendedWebPHeaderSize() {
        std::vector<std::uint8_t> bytes{'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0};
        for (const std::uint32_t side : {99999u, 199999u})  // width - 1, height - 1, 24 bits each
            for (int i = 0; i < 3; ++i) bytes.push_back(static_cast<std::uint8_t>(side >> (8 * i)));
        QCOMPARE(bytes.size(), std::size_t{30});
        try {
            decodeImage(bytes);
            QFAIL("a 100000 x 200000 WebP was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("100000x200000"), e.what());
        }
    }

    // Tiny files whose headers declare 100000 x 100000 pixels are refused before decoding.
    void decompressionBombHeaders_data() {
        QTest::addColumn<QString>("ext");
        for (const char* ext : {".png", ".jpg", ".bmp", ".webp", ".tiff"}) QTest::newRow(ext) << ext;
    }
    void decompressionBombHeaders() {
        QFETCH(QString, ext);
        std::vector<std::uint8_t> bytes = encode(cv::Mat(3, 5, CV_8UC3, cv::Scalar(1, 2, 3)), ext.toStdString());
        const auto patch = [&](std::size_t at, std::uint64_t v, int n, bool big) {
            for (int i = 0; i < n; ++i) bytes[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * (big ? n - 1 - i : i)));
        };
        if (ext == ".png") {
            patch(16, 100000, 4, true);
            patch(20, 100000, 4, true);
        } else if (ext == ".bmp") {
            patch(18, 100000, 4, false);
            patch(22, 100000, 4, false);
        } else if (ext == ".jpg") {
            std::size_t i = 2;
            while (!(bytes[i] == 0xFF && bytes[i + 1] == 0xC0)) i += 2 + (std::size_t{bytes[i + 2]} << 8 | bytes[i + 3]);
            patch(i + 5, 60000, 2, true);
            patch(i + 7, 60000, 2, true);
        } else if (ext == ".webp") {
            // VP8L (lossless) keeps 14-bit sizes after a signature byte; VP8 (lossy) 14-bit sizes.
            if (bytes[15] == 'L') {
                const std::uint32_t bits = 16383u | (16383u << 14);  // 16384 x 16384, the most VP8L can say
                patch(21, bits, 4, false);
            } else {
                patch(26, 16000, 2, false);
                patch(28, 16000, 2, false);
            }
        } else {
            // TIFF: the first IFD's width and height entries.
            const bool little = bytes[0] == 'I';
            const auto u16 = [&](std::size_t i) { return little ? (bytes[i] | bytes[i + 1] << 8) : (bytes[i] << 8 | bytes[i + 1]); };
            const auto u32 = [&](std::size_t i) {
                return little ? (std::uint32_t(bytes[i]) | std::uint32_t(bytes[i + 1]) << 8 | std::uint32_t(bytes[i + 2]) << 16 | std::uint32_t(bytes[i + 3]) << 24)
                              : (std::uint32_t(bytes[i]) << 24 | std::uint32_t(bytes[i + 1]) << 16 | std::uint32_t(bytes[i + 2]) << 8 | bytes[i + 3]);
            };
            const std::size_t ifd = u32(4);
            for (int e = 0; e < u16(ifd); ++e) {
                const std::size_t at = ifd + 2 + 12 * static_cast<std::size_t>(e);
                if (u16(at) == 256 || u16(at) == 257) {
                    const bool isShort = u16(at + 2) == 3;
                    if (isShort) patch(at + 8, 60000, 2, !little);
                    else patch(at + 8, 100000, 4, !little);
                }
            }
        }
        try {
            decodeImage(bytes);
            QFAIL("a bomb header was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("over the limit"), e.what());
        }
        if (ext != ".jpg") return;
        // Two stray bytes before the frame header (libjpeg skips them and decodes the frame):
        // the declared size is still found and refused. A JPEG with no frame header at all is
        // refused too, not decoded blind.
        std::size_t sof = 2;
        while (!(bytes[sof] == 0xFF && bytes[sof + 1] == 0xC0)) ++sof;
        std::vector<std::uint8_t> stray = bytes;
        stray.insert(stray.begin() + static_cast<std::ptrdiff_t>(sof), {0x12, 0x34});
        try {
            decodeImage(stray);
            QFAIL("a bomb header behind stray bytes was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("over the limit"), e.what());
        }
        std::vector<std::uint8_t> frameless = bytes;
        frameless[sof + 1] = 0xEE;  // the frame header becomes an application segment
        try {
            decodeImage(frameless);
            QFAIL("a JPEG without a frame header was decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("no frame header"), e.what());
        }
    }

    void unsupportedAndEmpty() {
        const std::vector<std::uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
        try {
            decodeImage(gif);
            QFAIL("GIF decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("not an image in a supported format"), e.what());
        }
        auto png = encode(cv::Mat(3, 5, CV_8UC3, cv::Scalar(1, 2, 3)), ".png");
        for (int i = 16; i < 20; ++i) png[static_cast<std::size_t>(i)] = 0;  // width 0
        try {
            decodeImage(png);
            QFAIL("zero-width PNG decoded");
        } catch (const ImageError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("empty"), e.what());
        }
    }

    void badBytes() {
        QVERIFY_THROWS_EXCEPTION(ImageError, decodeImage(std::vector<std::uint8_t>{}));
        QVERIFY_THROWS_EXCEPTION(ImageError, decodeImage(std::vector<std::uint8_t>{'h', 'e', 'l', 'l', 'o'}));
        auto png = encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar(9, 9, 9)), ".png");
        png.resize(png.size() / 2);  // truncated
        QVERIFY_THROWS_EXCEPTION(ImageError, decodeImage(png));
    }
};

QTEST_GUILESS_MAIN(TestImageDecode)
#include "tst_image_decode.moc"
