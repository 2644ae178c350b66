// LLaVA: the mmproj (CLIP tower + projector) and a llama LLM with the image's rows spliced into
// the prompt, against PyTorch (fixtures/make_llava_goldens.py). Tolerances: projected rows 2e-4
// (plus 2e-4 relative); logits 2e-3 (F16 LLM weights; the reference sums in float64).

#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/formats/format_error.h"
#include "inference/formats/inspect.h"
#include "inference/llm/generator.h"
#include "inference/llm/multimodal.h"
#include "test_util.h"
#include "vision/embedding_cache.h"
#include "vision/mmproj.h"

using namespace lumen;
using namespace lumen::vision;
using inference::FormatError;
using Json = nlohmann::json;

namespace {

const QString kDir = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/llava/");

Json expected() { return Json::parse(test::readFile(kDir + "expected.json").toStdString()); }

RgbImage image(const std::string& file) {
    const QByteArray bytes = test::readFile(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/preprocess/") + QString::fromStdString(file));
    return decodeImage({reinterpret_cast<const std::uint8_t*>(bytes.data()), static_cast<std::size_t>(bytes.size())});
}

}  // namespace

class TestLlava : public QObject {
    Q_OBJECT
private slots:
    void projectorMatchesReference_data() {
        QTest::addColumn<bool>("simd");
        QTest::newRow("scalar reference") << false;
        QTest::newRow("simd") << true;
    }
    void projectorMatchesReference() {
        QFETCH(bool, simd);
        auto backend = inference::makeCpuBackend({.threads = 2, .simd = simd});
        auto mmproj = Mmproj::load((kDir + "mmproj-tiny.gguf").toStdString(), *backend);
        const Json want = expected();
        QCOMPARE(mmproj->imageRows(), want["rows"].get<std::int64_t>());
        QCOMPARE(mmproj->outputWidth(), 64);
        const auto rows = mmproj->encode(image(want["image"]));
        const auto ref = want["projected"].get<std::vector<float>>();
        QCOMPARE(rows.size(), ref.size());
        for (std::size_t i = 0; i < rows.size(); ++i)
            QVERIFY2(std::abs(rows[i] - ref[i]) <= 2e-4f + 2e-4f * std::abs(ref[i]), qPrintable(QString("value %1: %2 vs %3").arg(i).arg(rows[i]).arg(ref[i])));
    }

    // LLaVA-1.6 tiling against Hugging Face's LlavaNext steps: a tall, a wide and a tiny image.
    void anyresMatchesReference() {
        auto backend = inference::makeCpuBackend({.threads = 2});
        auto mmproj = Mmproj::load((kDir + "mmproj-anyres-tiny.gguf").toStdString(), *backend);
        QVERIFY(mmproj->anyres());
        const Json want = expected()["anyres"];
        QCOMPARE(want.size(), std::size_t(3));
        for (const auto& [file, ref] : want.items()) {
            const auto rows = mmproj->encode(image(file));
            QVERIFY2(rows.size() == ref.size(), qPrintable(QString("%1: %2 values, expected %3").arg(QString::fromStdString(file)).arg(rows.size()).arg(ref.size())));
            for (std::size_t i = 0; i < rows.size(); ++i) {
                const float r = ref[i].get<float>();
                QVERIFY2(std::abs(rows[i] - r) <= 2e-4f + 2e-4f * std::abs(r), qPrintable(QString("%1 value %2: %3 vs %4").arg(QString::fromStdString(file)).arg(i).arg(rows[i]).arg(r)));
            }
        }
    }

    void promptWithAnImageMatchesReference() {
        auto backend = inference::makeCpuBackend({.threads = 2});
        auto mmproj = Mmproj::load((kDir + "mmproj-tiny.gguf").toStdString(), *backend);
        auto file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open((kDir + "llm-tiny.gguf").toStdString()));
        auto model = inference::LanguageModel::load(file);
        mmproj->checkFits(model->config().dim, "llm-tiny.gguf");
        const Json want = expected();
        const auto rows = mmproj->encode(image(want["image"]));
        const auto before = want["before"].get<std::vector<std::int32_t>>(), after = want["after"].get<std::vector<std::int32_t>>();
        inference::LanguageSession session(model, *backend, 64);
        std::vector<float> logits = session.prefill(before, true);
        const auto& imageLogits = session.prefillEmbeddings(rows, true);
        logits.insert(logits.end(), imageLogits.begin(), imageLogits.end());
        const auto& afterLogits = session.prefill(after, true);
        logits.insert(logits.end(), afterLogits.begin(), afterLogits.end());
        const Json ref = want["logits"];
        const std::size_t vocab = static_cast<std::size_t>(model->config().vocabSize);
        QCOMPARE(logits.size(), ref.size() * vocab);
        QCOMPARE(static_cast<std::int64_t>(ref.size()), static_cast<std::int64_t>(before.size() + after.size()) + mmproj->imageRows());
        for (std::size_t t = 0; t < ref.size(); ++t)
            for (std::size_t i = 0; i < vocab; ++i) {
                const float r = ref[t][i].get<float>(), g = logits[t * vocab + i];
                QVERIFY2(std::abs(g - r) <= 2e-3f, qPrintable(QString("position %1 logit %2: %3 vs %4").arg(t).arg(i).arg(g).arg(r)));
            }
        QCOMPARE(session.position(), static_cast<std::int64_t>(ref.size()));
    }

    void placeholdersAndSplicing() {
        const auto a = inference::imagePlaceholders(42, 5), b = inference::imagePlaceholders(42, 5), c = inference::imagePlaceholders(43, 5);
        QCOMPARE(a, b);
        QVERIFY(a != c);
        for (auto id : a) QVERIFY(id < 0);
        // An image's rows are keyed by the projector that computed them too: after a switch of
        // projectors the same image gets other ids, so the KV cache cannot serve the old rows.
        const std::string sha(64, 'a');
        QCOMPARE(inference::imageRowsKey("/models/mmproj-a.gguf", sha), inference::imageRowsKey("/models/mmproj-a.gguf", sha));
        QVERIFY(inference::imageRowsKey("/models/mmproj-a.gguf", sha) != inference::imageRowsKey("/models/mmproj-b.gguf", sha));
        QVERIFY(inference::imageRowsKey("ab", "c") != inference::imageRowsKey("a", "bc"));
        QVERIFY(inference::imagePlaceholders(inference::imageRowsKey("a", sha), 5) != inference::imagePlaceholders(inference::imageRowsKey("b", sha), 5));
        const std::vector<inference::TokenId> ids = {1, 7, 32000, 9};
        const auto spliced = inference::spliceImages(ids, 32000, {a});
        QCOMPARE(spliced.size(), std::size_t(8));
        QCOMPARE(spliced[2], a[0]);
        QCOMPARE(spliced.back(), 9);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, inference::spliceImages(ids, 32000, {a, c}));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, inference::spliceImages(ids, 32000, {}));
    }

    void mismatchedPairsAndBrokenFiles() {
        auto backend = inference::makeCpuBackend({.threads = 1});
        auto mmproj = Mmproj::load((kDir + "mmproj-tiny.gguf").toStdString(), *backend);
        try {
            mmproj->checkFits(2048, "tinyllama.gguf");
            QFAIL("a 64-wide projector fitted a 2048-wide model");
        } catch (const FormatError& e) {
            QVERIFY2(QString(e.what()).contains("this mmproj is for a 64-wide model; tinyllama.gguf is 2048-wide"), e.what());
        }
        const auto expectError = [&](const QString& path, const QString& contains) {
            try {
                Mmproj::load(path.toStdString(), *backend);
                QFAIL("loaded");
            } catch (const FormatError& e) {
                QVERIFY2(QString(e.what()).contains(contains), e.what());
            }
        };
        expectError(kDir + "llm-tiny.gguf", "not an mmproj file");
        QTemporaryDir dir;
        QByteArray bytes = test::readFile(kDir + "mmproj-tiny.gguf");
        QVERIFY(test::writeFile(dir.filePath("truncated.gguf"), bytes.left(bytes.size() / 2)));
        expectError(dir.filePath("truncated.gguf"), "truncated.gguf");
        bytes.replace("mm.2.weight", "mm.3.weight");
        QVERIFY(test::writeFile(dir.filePath("no-projector.gguf"), bytes));
        expectError(dir.filePath("no-projector.gguf"), "mm.2.weight");
        bytes = test::readFile(kDir + "mmproj-tiny.gguf");
        bytes.replace(QByteArray("\x03\0\0\0\0\0\0\0mlp", 11), QByteArray("\x03\0\0\0\0\0\0\0ldp", 11));
        QVERIFY(test::writeFile(dir.filePath("ldp.gguf"), bytes));
        expectError(dir.filePath("ldp.gguf"), "projector type \"ldp\"");
        QVERIFY(QString::fromStdString(inference::mmprojSummary(inference::GgufFile::open((kDir + "mmproj-tiny.gguf").toStdString()))).contains("for LLMs 64 wide"));
    }

    void embeddingCache() {
        EmbeddingCache cache(3 * 100 * sizeof(float));
        QVERIFY(!cache.find("m", "a"));
        cache.insert("m", "a", std::vector<float>(100, 1.0f));
        cache.insert("m", "b", std::vector<float>(100, 2.0f));
        QCOMPARE(cache.find("m", "a")->at(0), 1.0f);  // a is now the most recent
        cache.insert("m", "c", std::vector<float>(100, 3.0f));
        cache.insert("m", "d", std::vector<float>(100, 4.0f));  // over budget: b (least recent) goes
        QVERIFY(!cache.find("m", "b"));
        QVERIFY(cache.find("m", "a"));
        QVERIFY(!cache.find("other model", "a"));
        QCOMPARE(cache.hits(), std::uint64_t(2));
        QCOMPARE(cache.misses(), std::uint64_t(3));
        QCOMPARE(cache.bytes(), 3 * 100 * sizeof(float));
    }
};

QTEST_GUILESS_MAIN(TestLlava)
#include "tst_llava.moc"
