// CLIP and DINOv2 against the PyTorch reference (fixtures/make_vision_model_goldens.py): tiny
// random models in Hugging Face folders (CLIP F32, DINOv2 F16, DINOv2 with registers BF16), from
// the PNG to the embedding through our decoder and preprocessing. Tolerance: 2e-4 absolute plus
// 2e-4 of the value's size, on the scalar reference and on the SIMD kernels (weights are read at
// their stored precision by both sides; the difference is float summation order).

#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/formats/format_error.h"
#include "test_util.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"

using namespace lumen::vision;
using lumen::inference::FormatError;
using Json = nlohmann::json;

namespace {

const QString kModels = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/models/");
const QString kImages = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/preprocess/");

Json expected() { return Json::parse(lumen::test::readFile(kModels + "expected.json").toStdString()); }

RgbImage image(const std::string& file) {
    const QByteArray bytes = lumen::test::readFile(kImages + QString::fromStdString(file));
    return decodeImage({reinterpret_cast<const std::uint8_t*>(bytes.data()), static_cast<std::size_t>(bytes.size())});
}

// The largest |got - want| beyond the tolerance, as a message; empty when all are within it.
QString compare(const std::vector<float>& got, const Json& want, double tolerance = 2e-4) {
    if (got.size() != want.size()) return QString("%1 values, expected %2").arg(got.size()).arg(want.size());
    double worst = 0.0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double w = want[i].get<double>(), excess = std::abs(got[i] - w) - (tolerance + tolerance * std::abs(w));
        if (excess > worst) worst = excess, at = i;
    }
    if (worst <= 0.0) return {};
    return QString("value %1: got %2, expected %3").arg(at).arg(got[at]).arg(want[at].get<double>());
}

}  // namespace

class TestVisionModels : public QObject {
    Q_OBJECT
private slots:
    void clip_data() {
        QTest::addColumn<bool>("simd");
        QTest::newRow("scalar reference") << false;
        QTest::newRow("simd") << true;
    }
    void clip() {
        QFETCH(bool, simd);
        auto backend = lumen::inference::makeCpuBackend({.threads = 2, .simd = simd});
        auto model = ClipModel::load((kModels + "clip-tiny").toStdString(), *backend);
        const Json want = expected()["clip-tiny"];
        QCOMPARE(want["images"].size(), std::size_t(3));
        QCOMPARE(want["texts"].size(), std::size_t(11));
        QVERIFY(model->hasText());
        QCOMPARE(model->embeddingSize(), 16);
        QCOMPARE(model->logitScale(), 100.0f);
        for (const auto& [file, e] : want["images"].items()) {
            const PixelTensor px = preprocess(image(file), model->preprocessConfig());
            const QString diff = compare(model->embedImage(px), e["embedding"]);
            QVERIFY2(diff.isEmpty(), qPrintable(QString::fromStdString(file) + ": " + diff));
            // The LLaVA tower's read: every token after all but the last layer.
            const QString hidden = compare(model->imageHiddenStates(px, model->vision().layers - 1), e["hidden_second_to_last"]);
            QVERIFY2(hidden.isEmpty(), qPrintable(QString::fromStdString(file) + " hidden states: " + hidden));
        }
        for (const auto& [text, e] : want["texts"].items()) {
            const auto ids = model->tokenizer().tokenize(text, 16);
            QVERIFY2(ids == e["ids"].get<std::vector<std::int32_t>>(), text.c_str());
            const QString diff = compare(model->embedText(text), e["embedding"]);
            QVERIFY2(diff.isEmpty(), qPrintable(QString::fromStdString(text) + ": " + diff));
        }
    }

    void dinov2_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("registers");
        QTest::newRow("dinov2 F16, positions resized 4x4 -> 3x3") << "dinov2-tiny" << 0;
        QTest::newRow("dinov2 with registers BF16, antialiased 6x6 -> 4x4") << "dinov2-reg-tiny" << 2;
    }
    void dinov2() {
        QFETCH(QString, name);
        QFETCH(int, registers);
        auto backend = lumen::inference::makeCpuBackend({.threads = 2});
        std::unique_ptr<ImageEncoder> encoder = openImageEncoder((kModels + name).toStdString(), *backend);
        auto* model = dynamic_cast<Dinov2Model*>(encoder.get());
        QVERIFY(model);
        QCOMPARE(model->registers(), registers);
        QCOMPARE(model->embeddingSize(), 64);
        const Json want = expected()[name.toStdString()];
        QCOMPARE(want.size(), std::size_t(3));
        for (const auto& [file, e] : want.items()) {
            const Dinov2Output out = model->run(preprocess(image(file), model->preprocessConfig()));
            QString diff = compare(out.cls, e["cls"]);
            QVERIFY2(diff.isEmpty(), qPrintable(QString::fromStdString(file) + " cls: " + diff));
            diff = compare(out.patchMean, e["patch_mean"]);
            QVERIFY2(diff.isEmpty(), qPrintable(QString::fromStdString(file) + " patch mean: " + diff));
            const auto features = model->embedImage(image(file));
            QCOMPARE(features.size(), std::size_t(64));
            QCOMPARE(features[0], out.cls[0]);
            QCOMPARE(features[32], out.patchMean[0]);
        }
    }

    // Weights written over in place while loaded (a truncated model.safetensors): no SIGBUS; the
    // next embedding says the file changed and asks for a reload.
    void weightsChangedOnDisk() {
        QTemporaryDir dir;
        for (const char* f : {"config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "model.safetensors"})
            QVERIFY(QFile::copy(kModels + "clip-tiny/" + f, dir.filePath(f)));
        auto backend = lumen::inference::makeCpuBackend({.threads = 1});
        auto model = ClipModel::load(dir.path().toStdString(), *backend);
        const RgbImage picture = image("gradient_37x53.png");
        QVERIFY(!model->embedImage(picture).empty());
        QVERIFY(QFile::resize(dir.filePath("model.safetensors"), 64));
        try {
            model->embedImage(picture);
            QFAIL("an embedding from a changed file was returned");
        } catch (const std::runtime_error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("changed on disk"), e.what());
        }
    }

    void bicubicResizeIsIdentityAtSameSize() {
        std::vector<float> grid(2 * 5 * 5);
        for (std::size_t i = 0; i < grid.size(); ++i) grid[i] = static_cast<float>(i % 7) - 3.0f;
        for (bool aa : {false, true}) {
            const auto same = resizeBicubic(grid, 2, 5, 5, 5, 5, aa);
            for (std::size_t i = 0; i < grid.size(); ++i) QVERIFY(std::abs(same[i] - grid[i]) < 1e-5f);
        }
    }

    void brokenFolders() {
        auto backend = lumen::inference::makeCpuBackend({.threads = 1});
        QTemporaryDir dir;
        const auto expectError = [&](const QString& contains) {
            try {
                openImageEncoder(dir.path().toStdString(), *backend);
                QFAIL("opened");
            } catch (const FormatError& e) {
                QVERIFY2(QString(e.what()).contains(contains), e.what());
            }
        };
        expectError("config.json: cannot be read");
        QVERIFY(lumen::test::writeFile(dir.filePath("config.json"), "{\"model_type\": \"bert\"}"));
        expectError("is not an image encoder");
        QVERIFY(lumen::test::writeFile(dir.filePath("config.json"), "{\"model_type\": \"clip\""));
        expectError("not valid JSON");
        // Values of the wrong JSON type: the file and key, not nlohmann's type_error.302.
        QVERIFY(lumen::test::writeFile(dir.filePath("config.json"), "{\"model_type\": 5}"));
        expectError("config.json: \"model_type\" must be a string");
        // A real config with weights missing a tensor.
        for (const char* f : {"config.json", "preprocessor_config.json", "vocab.json", "merges.txt"})
            QVERIFY(QFile::copy(kModels + "clip-tiny/" + f, dir.filePath(f)) || QFile::exists(dir.filePath(f)));
        QVERIFY(lumen::test::writeFile(dir.filePath("config.json"), lumen::test::readFile(kModels + "clip-tiny/config.json")));
        expectError("model.safetensors");
        QByteArray weights = lumen::test::readFile(kModels + "clip-tiny/model.safetensors");
        weights.replace("visual_projection.weight", "visual_projectionXweight");
        weights.replace("text_model.final_layer_norm.bias", "text_model.final_layer_normXbias");
        QVERIFY(lumen::test::writeFile(dir.filePath("model.safetensors"), weights));
        expectError("text_model.final_layer_norm.bias");
        // A preprocessing config that makes images of the wrong size.
        QVERIFY(lumen::test::writeFile(dir.filePath("model.safetensors"), lumen::test::readFile(kModels + "clip-tiny/model.safetensors")));
        QVERIFY(lumen::test::writeFile(dir.filePath("preprocessor_config.json"), R"({"crop_size": 40, "size": 40})"));
        expectError("makes 40x40 images but the model takes 32x32");
    }
};

QTEST_GUILESS_MAIN(TestVisionModels)
#include "tst_vision_models.moc"
