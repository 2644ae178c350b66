// The LLM host: the one rule for context, cache type and placement the app and lumen-cli share,
// the memory check, projector pairing, image rows keyed by projector and image, and prompt tokens.

#include <QTemporaryDir>
#include <QtTest>

#include "app/llm_host.h"
#include "inference/core/compute_devices.h"
#include "inference/formats/format_error.h"
#include "inference/llm/model_writer.h"
#include "storage/sha256.h"
#include "test_util.h"
#include "vision/embedding_cache.h"
#include "vision/mmproj.h"

using namespace lumen;

namespace {
const QString kVision = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../vision/fixtures/");
}

class TestLlmHost : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        inference::RandomModelSpec spec;
        spec.dim = 96;  // not the tiny projector's 64
        spec.nHeads = 4;
        spec.nKvHeads = 2;  // heads of 16: too small for a Q8_0 cache
        spec.ffnDim = 128;
        spec.contextLength = 1024;
        spec.chatTemplate = "{% for m in messages %}{{ bos_token }}{{ m.content }}{% endfor %}";
        inference::writeRandomLanguageModel(spec, path("tiny.gguf"));
        spec.chatTemplate = "{% for m in messages %}{{ m.content }}";  // never closed
        inference::writeRandomLanguageModel(spec, path("broken-template.gguf"));
        spec.dim = 64;  // the tiny projector's width
        spec.chatTemplate.clear();
        inference::writeRandomLanguageModel(spec, path("tiny-64.gguf"));
    }

    // The context: what the caller asks, at most what the model was trained for; 4096 by default.
    // The cache: Q8_0 only for heads in whole blocks of 32.
    void contextAndCacheRules() {
        const auto llm = app::openLlm(path("tiny.gguf"));
        QCOMPARE(llm.fileName, std::string("tiny.gguf"));
        QVERIFY(llm.parameters > 64 * 512);
        QCOMPARE(app::contextFor(*llm.model, 0), std::int64_t{1024});
        QCOMPARE(app::contextFor(*llm.model, 300), std::int64_t{300});
        QCOMPARE(app::contextFor(*llm.model, 1 << 20), std::int64_t{1024});
        QCOMPARE(app::kvTypeFor(*llm.model, inference::DType::Q8_0), inference::DType::F16);
        QCOMPARE(app::kvTypeFor(*llm.model, inference::DType::F32), inference::DType::F32);
    }

    // A template that does not parse fails the load when the template is needed, and is set
    // aside otherwise (generate from text still works).
    void brokenTemplate() {
        QVERIFY_THROWS_EXCEPTION(inference::FormatError, app::openLlm(path("broken-template.gguf")));
        const auto llm = app::openLlm(path("broken-template.gguf"), false);
        QVERIFY(!llm.chatTemplate);
        QCOMPARE(llm.templateOr("chatml").name(), inference::ChatTemplate::builtin("chatml").name());
    }

    // The one placement rule, on a machine with or without a usable GPU.
    void placement() {
        const auto llm = app::openLlm(path("tiny.gguf"));
        auto cpu = app::placeLlm(*llm.model, {.gpuLayers = 0});
        QCOMPARE(cpu.gpuLayers, std::int64_t{0});
        QVERIFY(!cpu.gpu);
        QCOMPARE(cpu.where(), std::string("CPU"));
        QCOMPARE(cpu.describe(), std::string(cpu.cpu->name()));
        QVERIFY(cpu.notes.empty());

        bool usable = true;
        try {
            inference::makeCudaBackend();
        } catch (const std::exception&) {
            usable = false;
        }
        const auto automatic = app::placeLlm(*llm.model, {.gpuLayers = -1});
        if (usable) {
            QCOMPARE(automatic.gpuLayers, std::int64_t{2});  // a tiny model fits whole
            QCOMPARE(automatic.where(), std::string("GPU"));
        } else {
            QCOMPARE(automatic.gpuLayers, std::int64_t{0});
            // CUDA built but unusable says why; a build without CUDA has nothing to say.
            QCOMPARE(automatic.notes.size(), std::size_t{inference::queryComputeDevices().cudaBuilt ? 1u : 0u});
            try {
                app::placeLlm(*llm.model, {.gpuLayers = 1});
                QFAIL("one GPU layer without a usable GPU was placed");
            } catch (const app::FitError& e) {
                QCOMPARE(e.kind(), app::FitError::Kind::Gpu);
                QVERIFY2(QString::fromUtf8(e.what()).startsWith("cannot use the GPU"), e.what());
            }
        }
    }

    // The memory check names what is needed and what is free, as a Memory error.
    void memoryCheck() {
        const auto llm = app::openLlm(path("tiny.gguf"));
        const auto need = llm.model->estimateMemory(1024, inference::DType::F16, 0).total();
        app::requireFits(*llm.model, 1024, inference::DType::F16, 0, need);
        try {
            app::requireFits(*llm.model, 1024, inference::DType::F16, 0, need - 1);
            QFAIL("a model one byte too large fitted");
        } catch (const app::FitError& e) {
            QCOMPARE(e.kind(), app::FitError::Kind::Memory);
            QVERIFY2(QString::fromUtf8(e.what()).contains("for 1024 tokens) but only"), e.what());
        }
    }

    // A loaded model's sessions take its context and cache; the summary says where it runs.
    void loadAndSummary() {
        const auto loaded = app::loadLlm(app::openLlm(path("tiny.gguf")), {.contextSize = 256, .gpuLayers = 0, .kvType = inference::DType::Q8_0});
        QCOMPARE(loaded.contextSize, std::int64_t{256});
        QCOMPARE(loaded.kvType, inference::DType::F16);
        const auto session = loaded.newSession();
        QCOMPARE(session->contextSize(), std::int64_t{256});
        const QString summary = QString::fromStdString(loaded.summary());
        QVERIFY2(summary.startsWith("tiny.gguf (llama, 2 layers, ") && summary.endsWith(" parameters, CPU)"), qPrintable(summary));
    }

    // BOS goes in front unless the template wrote it; special-token text becomes its id.
    void promptTokens() {
        const auto llm = app::openLlm(path("tiny.gguf"));
        const auto& vocab = llm.tokenizer->vocabulary();
        QVERIFY(vocab.bos);
        const std::string bos = vocab.tokens[static_cast<std::size_t>(*vocab.bos)];
        const auto plain = app::promptTokens(*llm.tokenizer, "ab");
        QCOMPARE(plain.front(), *vocab.bos);
        const auto written = app::promptTokens(*llm.tokenizer, bos + "ab");
        QCOMPARE(written, plain);  // the template's BOS, parsed, and no second one
    }

    // An image's rows are keyed by projector and image: the same bytes through another
    // projector file get other placeholder ids, and the cache serves the second request.
    void imageRowsByProjector() {
        const auto loaded = app::loadLlm(app::openLlm(path("tiny-64.gguf")), {.gpuLayers = 0});
        const auto first = app::openProjector(test::str(kVision + "llava/mmproj-tiny.gguf"), loaded);
        QVERIFY(QFileInfo(QString::fromStdString(first.key)).isAbsolute());
        const QByteArray image = test::readFile(kVision + "preprocess/gradient_37x53.png");
        QVERIFY(!image.isEmpty());
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(image.constData()), static_cast<std::size_t>(image.size()));
        const std::string sha = storage::sha256Hex(bytes);
        vision::EmbeddingCache cache;
        const auto a = app::projectImage(first, cache, bytes, sha);
        QVERIFY(!a.cached);
        QCOMPARE(static_cast<std::int64_t>(a.placeholders.size()) * first.mmproj->outputWidth(), static_cast<std::int64_t>(a.rows->size()));
        const auto again = app::projectImage(first, cache, bytes, sha);
        QVERIFY(again.cached);
        QCOMPARE(again.placeholders, a.placeholders);
        QCOMPARE(again.rows.get(), a.rows.get());

        // The same projector under another name (a copy): its own key, its own placeholders.
        const QString copy = dir_.filePath("copy-of-mmproj.gguf");
        QVERIFY(QFile::copy(kVision + "llava/mmproj-tiny.gguf", copy));
        const auto second = app::openProjector(test::str(copy), loaded);
        const auto b = app::projectImage(second, cache, bytes, sha);
        QVERIFY(!b.cached);
        QVERIFY(b.placeholders != a.placeholders);
        QCOMPARE(*b.rows, *a.rows);

        inference::EmbeddingRows rows;
        app::addRows(first, a, rows);
        QCOMPARE(rows.size(), a.placeholders.size());
        QCOMPARE(rows.at(a.placeholders[1]), a.rows->data() + first.mmproj->outputWidth());

        // A projector for another width is refused with what it is for.
        const auto other = app::loadLlm(app::openLlm(path("tiny.gguf")), {.gpuLayers = 0});
        QVERIFY_THROWS_EXCEPTION(inference::FormatError, app::openProjector(test::str(kVision + "llava/mmproj-tiny.gguf"), other));
        QVERIFY_THROWS_EXCEPTION(inference::FormatError, app::openProjector(test::str(kVision + "llava/llm-tiny.gguf"), loaded));
    }

private:
    std::string path(const char* name) const { return dir_.filePath(QString::fromLatin1(name)).toStdString(); }
    QTemporaryDir dir_;
};

QTEST_GUILESS_MAIN(TestLlmHost)
#include "tst_llm_host.moc"
