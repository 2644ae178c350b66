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
            QVERIFY2(QString::fromUtf8(e.what()).contains("10000 pixels"), e.what());
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
