// Preprocessing against Pillow + NumPy (tests/vision/fixtures/make_preprocess_goldens.py): the
// 8-bit pixels after resize and crop must be identical (tolerance 0), the normalized tensor equal
// to float rounding (1e-6); the real CLIP.png (../shared) must give PIL's 224 x 224 crop exactly.

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>
#include <cmath>
#include <cstring>

#include "test_util.h"
#include "vision/preprocess.h"

using namespace lumen::vision;
using lumen::test::readFile;

namespace {

const QString kDir = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/preprocess/");

std::span<const std::uint8_t> bytesOf(const QByteArray& b) { return {reinterpret_cast<const std::uint8_t*>(b.data()), static_cast<std::size_t>(b.size())}; }

RgbImage load(const QString& path) {
    const QByteArray bytes = readFile(path);
    return decodeImage(bytesOf(bytes), DecodeOptions{.alpha = AlphaMode::Drop});
}

QJsonObject manifest() { return QJsonDocument::fromJson(readFile(kDir + "manifest.json")).object(); }

}  // namespace

class TestPreprocess : public QObject {
    Q_OBJECT
private slots:
    void matchesPil_data() {
        QTest::addColumn<QString>("image");
        QTest::addColumn<QString>("config");
        QTest::addColumn<QString>("pixels");
        QTest::addColumn<QString>("tensor");
        const QJsonObject m = manifest();
        QVERIFY2(!m.isEmpty(), "fixtures/preprocess/manifest.json is missing");
        for (const QJsonValue& v : m["cases"].toArray()) {
            const QJsonObject c = v.toObject();
            QTest::newRow(qPrintable(c["pixels"].toString())) << c["image"].toString() << c["config"].toString() << c["pixels"].toString()
                                                               << c["tensor"].toString();
        }
    }
    void matchesPil() {
        QFETCH(QString, image);
        QFETCH(QString, config);
        QFETCH(QString, pixels);
        QFETCH(QString, tensor);
        const QByteArray json = QJsonDocument(manifest()["configs"].toObject()[config].toObject()).toJson();
        const PreprocessConfig cfg = PreprocessConfig::fromJson(json.toStdString(), config.toStdString(), PreprocessConfig{});
        const RgbImage out = resizeAndCrop(load(kDir + image), cfg);
        const QByteArray expected = readFile(kDir + pixels);
        QCOMPARE(static_cast<qsizetype>(out.pixels.size()), expected.size());
        int maxDiff = 0, differing = 0;
        for (std::size_t i = 0; i < out.pixels.size(); ++i) {
            const int d = std::abs(int(out.pixels[i]) - int(static_cast<std::uint8_t>(expected[static_cast<qsizetype>(i)])));
            maxDiff = std::max(maxDiff, d);
            differing += d != 0;
        }
        QVERIFY2(maxDiff == 0, qPrintable(QString("%1 of %2 values differ, by up to %3").arg(differing).arg(out.pixels.size()).arg(maxDiff)));
        if (tensor.isEmpty()) return;
        const PixelTensor t = preprocess(load(kDir + image), cfg);
        const QByteArray ref = readFile(kDir + tensor);
        QCOMPARE(static_cast<qsizetype>(t.data.size() * 4), ref.size());
        float worst = 0.0f;
        for (std::size_t i = 0; i < t.data.size(); ++i) {
            float r;
            std::memcpy(&r, ref.data() + 4 * i, 4);
            worst = std::max(worst, std::abs(r - t.data[i]));
        }
        QVERIFY2(worst <= 1e-6f, qPrintable(QString("normalized values differ by %1").arg(worst)));
    }

    void realClipImageMatchesPil() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: the CLIP.png check needs it");
        const QJsonObject expected = manifest()["clip_png_224"].toObject();
        const RgbImage out = resizeAndCrop(load(shared + "/clip/CLIP.png"), PreprocessConfig::clip());
        QCOMPARE(out.width, 224);
        QCOMPARE(out.height, 224);
        double sum = 0.0;
        for (std::uint8_t p : out.pixels) sum += p;
        const QByteArray hash = QCryptographicHash::hash(QByteArray(reinterpret_cast<const char*>(out.pixels.data()), static_cast<qsizetype>(out.pixels.size())),
                                                         QCryptographicHash::Sha256).toHex();
        QCOMPARE(sum / static_cast<double>(out.pixels.size()), expected["mean"].toDouble());
        QCOMPARE(QString(hash), expected["sha256"].toString());
    }

    void outputSizes() {
        QCOMPARE(shortEdgeSize(640, 480, 224), (std::array<int, 2>{298, 224}));
        QCOMPARE(shortEdgeSize(480, 640, 224), (std::array<int, 2>{224, 298}));
        QCOMPARE(shortEdgeSize(100, 100, 256), (std::array<int, 2>{256, 256}));
        const PixelTensor t = preprocess(RgbImage{3, 1000, std::vector<std::uint8_t>(9000, 128)}, PreprocessConfig::dinov2());
        QCOMPARE(t.width, 224);
        QCOMPARE(t.height, 224);
        QCOMPARE(static_cast<int>(t.data.size()), 3 * 224 * 224);
    }

    void badConfigs_data() {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("message");
        QTest::newRow("not json") << "{" << "not valid JSON";
        QTest::newRow("array") << "[1]" << "not a JSON object";
        QTest::newRow("zero size") << R"({"size": {"shortest_edge": 0}})" << "size.shortest_edge";
        QTest::newRow("huge crop") << R"({"crop_size": 100000})" << "crop_size";
        QTest::newRow("bad size") << R"({"size": "big"})" << "\"size\" must be";
        QTest::newRow("bad filter") << R"({"resample": 9})" << "resample";
        QTest::newRow("two means") << R"({"image_mean": [0.1, 0.2]})" << "image_mean";
        QTest::newRow("zero std") << R"({"image_std": [0, 1, 1]})" << "image_std";
        QTest::newRow("tiny std") << R"({"image_std": [1e-45, 1, 1]})" << "must be positive numbers (at least 1e-6)";
        QTest::newRow("negative std") << R"({"image_std": -0.5})" << "image_std";
        QTest::newRow("flag") << R"({"do_resize": "yes"})" << "do_resize";
    }
    void badConfigs() {
        QFETCH(QString, json);
        QFETCH(QString, message);
        try {
            PreprocessConfig::fromJson(json.toStdString(), "preprocessor_config.json", PreprocessConfig{});
            QFAIL("accepted");
        } catch (const ImageError& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
            QVERIFY2(QString(e.what()).startsWith("preprocessor_config.json: "), e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestPreprocess)
#include "tst_preprocess.moc"
