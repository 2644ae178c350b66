// The llama-family forward pass on random-weight models written by our own writer: every
// architecture variant runs, KV-cached decoding equals recomputing, and quantized weights stay
// close to the F32 model built from the same random values (bounds per type below).

#include <QtTest>
#include <cstdio>
#include <limits>
#include <fstream>
#include <cmath>
#include <nlohmann/json.hpp>

#include "inference/formats/gguf.h"
#include "inference/llm/benchmark.h"
#include "inference/llm/generator.h"
#include "inference/llm/model_writer.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

struct Loaded {
    std::shared_ptr<GgufFile> file;
    std::shared_ptr<LanguageModel> model;
};

Loaded load(const QString& path) {
    Loaded l;
    l.file = std::make_shared<GgufFile>(GgufFile::open(path.toStdString()));
    l.model = LanguageModel::load(l.file);
    return l;
}

// Logits after each of `tokens`, decoded one by one in a fresh session.
std::vector<std::vector<float>> run(const LanguageModel& model, Backend& backend, const std::vector<TokenId>& tokens,
                                    DType kvType = DType::F16) {
    auto shared = std::shared_ptr<const LanguageModel>(&model, [](const LanguageModel*) {});
    LanguageSession session(shared, backend, 256, kvType);
    std::vector<std::vector<float>> out;
    for (TokenId t : tokens) out.push_back(session.decode(t));
    return out;
}

double relativeRms(const std::vector<float>& a, const std::vector<float>& b) {
    double err = 0, ref = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        err += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
        ref += b[i] * static_cast<double>(b[i]);
    }
    return std::sqrt(err / ref);
}

const std::vector<TokenId> kPrompt{1, 300, 301, 17, 450, 302, 99, 311};

struct Errors {
    double maxDiff = 0, rel = 0;
};

// The logits of every prompt position against a golden file's (max |diff| and relative RMS).
Errors compareLogits(const std::vector<std::vector<float>>& logits, const nlohmann::json& golden) {
    double maxDiff = 0, err = 0, ref = 0;
    for (std::size_t t = 0; t < logits.size(); ++t) {
        const auto want = golden["logits"][t].get<std::vector<double>>();
        if (logits[t].size() != want.size()) return {INFINITY, INFINITY};
        for (std::size_t i = 0; i < want.size(); ++i) {
            const double d = logits[t][i] - want[i];
            maxDiff = std::max(maxDiff, std::fabs(d));
            err += d * d;
            ref += want[i] * want[i];
        }
    }
    return {maxDiff, std::sqrt(err / ref)};
}

// Eight greedy tokens after the prompt, with the KV cache (the prompt decoded one by one, or
// prefilled at once).
std::vector<TokenId> greedyContinuation(const std::shared_ptr<const LanguageModel>& model, Backend& backend, const std::vector<TokenId>& prompt,
                                        DType kvType, bool prefill) {
    LanguageSession session(model, backend, 256, kvType);
    const std::vector<float>* l = nullptr;
    if (prefill) l = &session.prefill(prompt);
    else
        for (TokenId t : prompt) l = &session.decode(t);
    std::vector<TokenId> greedy;
    for (int i = 0; i < 8; ++i) {
        const auto next = static_cast<TokenId>(std::max_element(l->begin(), l->end()) - l->begin());
        greedy.push_back(next);
        l = &session.decode(next);
    }
    return greedy;
}

}  // namespace

class TestLlama : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        backend_ = makeCpuBackend();
    }

    void architectures_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<bool>("tied");
        QTest::newRow("llama") << "llama" << false;
        QTest::newRow("mistral tied") << "mistral" << true;
        QTest::newRow("qwen2 biases neox") << "qwen2" << false;
        QTest::newRow("qwen3 q/k norms, wide heads") << "qwen3" << true;
        QTest::newRow("gemma2 post norms, window") << "gemma2" << true;
        QTest::newRow("gemma3 local/global") << "gemma3" << true;
        QTest::newRow("phi3 fused, partial rope") << "phi3" << false;
        QTest::newRow("smollm3 nope") << "smollm3" << false;
    }
    void architectures() {
        QFETCH(QString, arch);
        QFETCH(bool, tied);
        RandomModelSpec spec;
        spec.architecture = arch.toStdString();
        spec.tiedEmbeddings = tied;
        if (arch == "qwen3") spec.headDim = 128;
        if (arch.startsWith("gemma")) spec.slidingWindow = 4, spec.nLayers = 6;
        if (arch == "phi3") spec.ropeDims = 48;
        if (arch == "smollm3") spec.nLayers = 4;
        const QString path = dir_.filePath(arch + ".gguf");
        writeRandomLanguageModel(spec, path.toStdString());
        const Loaded m = load(path);
        QCOMPARE(m.model->config().architecture, arch.toStdString());
        const bool neox = arch != "llama" && arch != "mistral" && arch != "smollm3";
        QVERIFY(m.model->config().ropeStyle == (neox ? RopeStyle::NeoX : RopeStyle::Interleaved));
        if (arch == "qwen3") QCOMPARE(m.model->config().headDim, 128);
        if (arch == "gemma3") QVERIFY(m.model->config().layers[0].window == 4 && m.model->config().layers[5].window == 0);
        if (arch == "phi3") QCOMPARE(m.model->config().ropeDims, 48);
        if (arch == "smollm3") QVERIFY(m.model->config().layers[2].rope && !m.model->config().layers[3].rope);
        QCOMPARE(m.model->weights().output.data == m.model->weights().tokenEmbedding.data, tied);
        if (arch == "qwen2") QVERIFY(m.model->weights().layers[0].bq.data != nullptr);
        const auto logits = run(*m.model, *backend_, kPrompt);
        for (const auto& row : logits)
            for (float v : row) QVERIFY(std::isfinite(v));
        // Different positions give different logits (RoPE and attention at work).
        QVERIFY(logits[3] != logits[4]);

        // Through the generator: a cached follow-up equals a fresh run, token for token.
        const auto tokenizer = Tokenizer::fromGguf(*m.file);
        auto shared = std::const_pointer_cast<const LanguageModel>(m.model);
        LanguageSession a(shared, *backend_, 64), b(shared, *backend_, 64);
        Generator ga(a, tokenizer), gb(b, tokenizer);
        GenerationParams p;
        p.maxTokens = 6;
        p.sampling.temperature = 0;
        ga.generate(std::vector<TokenId>(kPrompt.begin(), kPrompt.begin() + 5), p);
        const auto cached = ga.generate(kPrompt, p);
        const auto fresh = gb.generate(kPrompt, p);
        QCOMPARE(cached.reusedPromptTokens, 5);
        QCOMPARE(cached.tokens, fresh.tokens);
    }

    // The same random values stored in each type: relative RMS difference of the logits from
    // the F32 model, over all positions. Measured when written: F16 0.0009, BF16 0.0058, Q8_0 0.025 (with 8-bit activations),
    // Q6_K 0.062, Q4_K_M 0.221, Q4_K 0.263, Q4_0 0.308; the bounds are about 1.5x those.
    void quantizedCloseToF32_data() {
        QTest::addColumn<int>("type");
        QTest::addColumn<bool>("q4km");
        QTest::addColumn<double>("bound");
        QTest::newRow("F16") << static_cast<int>(DType::F16) << false << 0.0015;
        QTest::newRow("BF16") << static_cast<int>(DType::BF16) << false << 0.009;
        QTest::newRow("Q8_0") << static_cast<int>(DType::Q8_0) << false << 0.038;
        QTest::newRow("Q6_K") << static_cast<int>(DType::Q6_K) << false << 0.095;
        QTest::newRow("Q4_K_M") << static_cast<int>(DType::Q4_K) << true << 0.33;
        QTest::newRow("Q4_K") << static_cast<int>(DType::Q4_K) << false << 0.4;
        QTest::newRow("Q4_0") << static_cast<int>(DType::Q4_0) << false << 0.46;
    }
    void quantizedCloseToF32() {
        QFETCH(int, type);
        QFETCH(bool, q4km);
        QFETCH(double, bound);
        RandomModelSpec spec;
        const QString f32Path = dir_.filePath("ref-f32.gguf");
        if (!QFile::exists(f32Path)) writeRandomLanguageModel(spec, f32Path.toStdString());
        spec.weightType = static_cast<DType>(type);
        spec.mix = q4km ? WeightMix::Q4_K_M : WeightMix::Uniform;
        const QString path = dir_.filePath(QStringLiteral("q-%1-%2.gguf").arg(type).arg(q4km));
        writeRandomLanguageModel(spec, path.toStdString());
        const Loaded ref = load(f32Path), quant = load(path);
        const auto a = run(*quant.model, *backend_, kPrompt), b = run(*ref.model, *backend_, kPrompt);
        std::vector<float> flatA, flatB;
        for (std::size_t i = 0; i < a.size(); ++i) {
            flatA.insert(flatA.end(), a[i].begin(), a[i].end());
            flatB.insert(flatB.end(), b[i].begin(), b[i].end());
        }
        const double rel = relativeRms(flatA, flatB);
        qInfo("%s%s: logits differ from F32 by %.4f (relative RMS)", std::string(name(static_cast<DType>(type))).c_str(), q4km ? " (Q4_K_M mix)" : "", rel);
        QVERIFY2(rel < bound, qPrintable(QStringLiteral("relative RMS %1").arg(rel)));
        QVERIFY(rel > 0 || type == static_cast<int>(DType::F32));
    }

    // Against the independent PyTorch reference (fixtures/make_llama_goldens.py): logits of every
    // prompt position, and the greedy continuation. The reference runs in float64; we run in
    // float32 with an F16 KV cache: logits agree to max |diff| <= 0.005 and relative RMS <= 0.001
    // (measured about 0.0007 and 0.0003; the Q4_0, Q4_K and Q6_K models up to 0.0026 and
    // 0.00044). The fast backend's quantized paths also round the activations to 8 bits (as
    // llama.cpp does): per 32 for Q8_0 and Q4_0, max |diff| <= 0.06, relative RMS <= 0.025
    // (measured up to 0.037 and 0.014); per 256 for the K-quants, max |diff| <= 0.25, relative
    // RMS <= 0.04 (measured 0.18 and 0.028). With an F32 KV cache, the float models agree to
    // max |diff| <= 1e-4 (measured 1e-6: the fixtures' rounding).
    void pytorchGoldens_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("reference");
        QTest::addColumn<bool>("f32Cache");
        for (const char* n : {"llama-f32", "llama-f16", "llama-q8_0", "mistral-f32-mha", "qwen2-f32", "qwen2-q8_0", "llama3-rope-scaling",
                              "llama-q4_0", "llama-q4_k", "qwen2-q6_k"}) {
            QTest::newRow(qPrintable(QString::fromLatin1(n) + " scalar")) << QString::fromLatin1(n) << true << false;
            QTest::newRow(qPrintable(QString::fromLatin1(n) + " fast")) << QString::fromLatin1(n) << false << false;
        }
        for (const char* n : {"llama-f32", "mistral-f32-mha", "qwen2-f32", "llama3-rope-scaling", "llama-f16"}) {
            QTest::newRow(qPrintable(QString::fromLatin1(n) + " scalar f32-kv")) << QString::fromLatin1(n) << true << true;
            QTest::newRow(qPrintable(QString::fromLatin1(n) + " fast f32-kv")) << QString::fromLatin1(n) << false << true;
        }
    }
    void pytorchGoldens() {
        QFETCH(QString, name);
        QFETCH(bool, reference);
        QFETCH(bool, f32Cache);
        const QString base = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/llama/") + name;
        const QByteArray text = lumen::test::readFile(base + ".json");
        const auto golden = nlohmann::json::parse(text.constData(), text.constData() + text.size());
        const Loaded m = load(base + ".gguf");
        auto backend = makeCpuBackend({.threads = reference ? 1 : 2, .simd = !reference});
        const auto prompt = golden["prompt"].get<std::vector<TokenId>>();
        const auto [maxDiff, rel] = compareLogits(run(*m.model, *backend, prompt, f32Cache ? DType::F32 : DType::F16), golden);
        qInfo("%s (%s%s): max |diff| %.6f, relative RMS %.7f", qPrintable(name), reference ? "scalar" : "fast", f32Cache ? ", F32 cache" : "", maxDiff, rel);
        if (f32Cache) QVERIFY2(maxDiff <= 1e-4, qPrintable(QStringLiteral("max %1").arg(maxDiff)));
        const bool eightBitActivations = !reference && (name.contains("q8_0") || name.contains("q4_") || name.contains("q6_k"));
        const bool perSuperBlock = eightBitActivations && name.contains("_k");  // one activation scale per 256
        const double maxBound = perSuperBlock ? 0.25 : eightBitActivations ? 0.06 : 0.005;
        const double relBound = perSuperBlock ? 0.04 : eightBitActivations ? 0.025 : 0.001;
        QVERIFY2(maxDiff <= maxBound && rel <= relBound, qPrintable(QStringLiteral("max %1 rel %2").arg(maxDiff).arg(rel)));

        // Greedy with the KV cache equals the reference's from-scratch recomputation.
        QCOMPARE(greedyContinuation(m.model, *backend, prompt, DType::F16, false), golden["greedy"].get<std::vector<TokenId>>());
    }

    // The families beyond llama against their float64 references (fixtures/make_family_goldens.py
    // and make_qwen35_goldens.py, whose Gated DeltaNet layers run the chunked form on the 20-row
    // prompt and token by token in the greedy steps:
    // qwen3's q/k norms and wide heads, gemma2's soft-caps and alternating windows, gemma3's
    // q/k norms, local/global RoPE bases and linear scaling, phi3's fused tensors, partial RoPE,
    // LongRoPE and window, smollm3's NoPE layers, Qwen3-MoE's and Mixtral's experts (tokens routed
    // to different experts); prompts longer than the windows). With F32
    // weights and an F32 KV cache the logits agree to max |diff| <= 1e-4; with an F16 cache to
    // 0.005 (relative RMS 0.001). Q8_0 weights: the scalar backend within the same bounds, the fast
    // one (8-bit activations, whose rounding compounds over gemma3's six layers) within max 0.12 and
    // relative RMS 0.04 (measured up to 0.095 and 0.028, gemma3-q8_0; qwen35-q8_0 0.092 and 0.030,
    // qwen35moe-q8_0 0.103 and 0.026: see make_qwen35_goldens.py on why; 0.048 and 0.016 for the others).
    // A Q8_0 cache (the qwen3 fixtures, whose heads are 32 wide): within 0.06 and relative RMS 0.02
    // (measured 0.028 and 0.0094).
    void familyGoldens_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("reference");
        QTest::addColumn<int>("kv");
        for (const char* family : {"qwen3", "gemma2", "gemma3", "phi3", "smollm3", "qwen3moe", "mixtral", "gpt-oss", "qwen2moe", "qwen35", "qwen35moe"})
            for (const char* type : {"f32", "q8_0"}) {
                const QString n = QStringLiteral("%1-%2").arg(QLatin1String(family), QLatin1String(type));
                QTest::newRow(qPrintable(n + " scalar f32-kv")) << n << true << static_cast<int>(DType::F32);
                QTest::newRow(qPrintable(n + " fast f32-kv")) << n << false << static_cast<int>(DType::F32);
                QTest::newRow(qPrintable(n + " fast f16-kv")) << n << false << static_cast<int>(DType::F16);
                if (QLatin1String(family).startsWith(QLatin1String("qwen3"))) {  // (the fixtures with heads of 32 dimensions; qwen35's attention layers')
                    QTest::newRow(qPrintable(n + " scalar q8_0-kv")) << n << true << static_cast<int>(DType::Q8_0);
                    QTest::newRow(qPrintable(n + " fast q8_0-kv")) << n << false << static_cast<int>(DType::Q8_0);
                }
            }
        // YaRN RoPE scaling read from a qwen3 file (rope.scaling.type = yarn)
        QTest::newRow("qwen3-yarn-f32 scalar f32-kv") << QStringLiteral("qwen3-yarn-f32") << true << static_cast<int>(DType::F32);
        QTest::newRow("qwen3-yarn-f32 fast f32-kv") << QStringLiteral("qwen3-yarn-f32") << false << static_cast<int>(DType::F32);
    }
    void familyGoldens() {
        QFETCH(QString, name);
        QFETCH(bool, reference);
        QFETCH(int, kv);
        const auto kvType = static_cast<DType>(kv);
        const QString base = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/families/") + name;
        const QByteArray text = lumen::test::readFile(base + ".json");
        const auto golden = nlohmann::json::parse(text.constData(), text.constData() + text.size());
        const Loaded m = load(base + ".gguf");
        const QString family = name.section('-', 0, -2);
        QCOMPARE(QString::fromStdString(m.model->config().architecture), family == "mixtral" ? QStringLiteral("llama") : family.section('-', 0, 0) == "qwen3" ? QStringLiteral("qwen3") : family);
        auto backend = makeCpuBackend({.threads = reference ? 1 : 2, .simd = !reference, .minParallelWork = 0});
        const auto prompt = golden["prompt"].get<std::vector<TokenId>>();
        const auto [maxDiff, rel] = compareLogits(run(*m.model, *backend, prompt, kvType), golden);
        qInfo("%s (%s, %s cache): max |diff| %.6f, relative RMS %.7f", qPrintable(name), reference ? "scalar" : "fast",
              kvType == DType::F32 ? "F32" : kvType == DType::F16 ? "F16" : "Q8_0", maxDiff, rel);
        const bool eightBitActivations = !reference && name.contains("q8_0");
        const bool q8Cache = kvType == DType::Q8_0;
        const double maxBound = eightBitActivations ? 0.12 : q8Cache ? 0.06 : kvType == DType::F32 ? 1e-4 : 0.005;
        const double relBound = eightBitActivations ? 0.04 : q8Cache ? 0.02 : kvType == DType::F32 ? 1e-5 : 0.001;
        QVERIFY2(maxDiff <= maxBound && rel <= relBound, qPrintable(QStringLiteral("max %1 rel %2").arg(maxDiff).arg(rel)));

        // Greedy with the KV cache (after a prefill) equals the reference's from-scratch recomputation.
        QCOMPARE(greedyContinuation(m.model, *backend, prompt, kvType, true), golden["greedy"].get<std::vector<TokenId>>());
    }

    // Gated DeltaNet (qwen35): a prompt run in chunks (150 rows: chunks of 64 and a remainder)
    // equals the same rows decoded one by one within |diff| <= 5e-4 (measured 1.3e-4: the op's two
    // forms agree to 2e-7 (tst_cpu_backend), and this random model's gated norms magnify the
    // difference over its six DeltaNet layers as they magnify 8-bit activations' rounding),
    // on the reference and the fast backend; the session keeps snapshots every interval and at the
    // calls' ends asked for, bounded by the limit; truncating goes back to the latest snapshot at
    // or before the position (or the start), and the logits from there equal a fresh session's.
    void recurrentStateSnapshots() {
        const Loaded m = load(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/families/qwen35-f32.gguf"));
        auto shared = std::const_pointer_cast<const LanguageModel>(m.model);
        const ModelConfig& c = m.model->config();
        QCOMPARE(c.nLayers, 8);  // (the file's multi-token-prediction layer is not one of them)
        QVERIFY(c.layers[0].recurrent && c.layers[2].recurrent && !c.layers[3].recurrent && !c.layers[7].recurrent);
        QCOMPARE(c.deltaNet.nVHeads, 4);
        std::vector<TokenId> tokens;
        for (int i = 0; i < 150; ++i) tokens.push_back(static_cast<TokenId>((i * 37 + 11) % c.vocabSize));
        const auto diff = [](std::span<const float> a, std::span<const float> b) {
            double worst = a.size() == b.size() ? 0.0 : INFINITY;
            for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
            return worst;
        };
        const auto row = [&](const std::vector<float>& logits, std::size_t t) { return std::span(logits).subspan(t * c.vocabSize, c.vocabSize); };
        for (bool simd : {false, true}) {
            auto backend = makeCpuBackend({.threads = 2, .simd = simd, .minParallelWork = 0});
            LanguageSession chunked(shared, *backend, 256), stepped(shared, *backend, 256);
            chunked.setSnapshotInterval(0);
            const std::vector<float> all = chunked.prefill(tokens, true);
            double worst = 0;
            for (std::size_t t = 0; t < tokens.size(); ++t) worst = std::max(worst, diff(row(all, t), stepped.decode(tokens[t])));
            qInfo("%s: chunked prompt against token by token, max |diff| %.2e", simd ? "fast" : "reference", worst);
            QVERIFY(worst <= 5e-4);
            QVERIFY(chunked.snapshotPositions().empty());
            QCOMPARE(stepped.snapshotPositions(), (std::vector<std::int64_t>{}));  // (the interval is 256)

            // Snapshots every 32 positions and where asked; back to 70 restarts at 64.
            LanguageSession session(shared, *backend, 256);
            session.setSnapshotInterval(32);
            session.prefill(std::span(tokens).first(100));
            session.snapshot();
            QCOMPARE(session.snapshotPositions(), (std::vector<std::int64_t>{32, 64, 96, 100}));
            QCOMPARE(session.snapshotBytes(), 4 * static_cast<std::uint64_t>(6 * c.deltaNet.stateFloats() * 4));
            session.truncate(70);
            QCOMPARE(session.position(), std::int64_t{64});
            QCOMPARE(session.snapshotPositions(), (std::vector<std::int64_t>{32, 64}));
            const std::vector<float> resumed = session.prefill(std::span(tokens).subspan(64, 86), true);
            for (std::size_t t = 0; t < 86; ++t) QVERIFY2(diff(row(resumed, t), row(all, 64 + t)) <= 5e-4, qPrintable(QString::number(t)));
            // Before every snapshot: from the start.
            session.truncate(20);
            QCOMPARE(session.position(), std::int64_t{0});
            QVERIFY(session.snapshotPositions().empty());
            QVERIFY(diff(session.prefill(std::span(tokens).first(1)), row(all, 0)) <= 5e-4);
            // The limit keeps the newest that fit.
            session.truncate(0);
            session.setSnapshotLimit(2 * static_cast<std::uint64_t>(6 * c.deltaNet.stateFloats() * 4));
            session.prefill(std::span(tokens).first(130));
            QCOMPARE(session.snapshotPositions(), (std::vector<std::int64_t>{96, 128}));
            // The latest prompt-end snapshot (regenerate's) goes last: two fit, the interval ones
            // come and go, the one at 100 stays.
            session.truncate(0);
            session.setSnapshotLimit(2 * static_cast<std::uint64_t>(6 * c.deltaNet.stateFloats() * 4));
            session.prefill(std::span(tokens).first(100));
            session.snapshot();
            for (std::size_t t = 100; t < 140; ++t) session.decode(tokens[t]);
            QCOMPARE(session.snapshotPositions(), (std::vector<std::int64_t>{100, 128}));
            session.truncate(100);
            QCOMPARE(session.position(), std::int64_t{100});
            session.setSnapshotLimit(0);
            QVERIFY(session.snapshotPositions().empty());
        }
        // The memory estimate counts the state and the snapshots the limit and the context allow:
        // a 1024-position context holds 4 intervals' and the prompt end's.
        const auto state = static_cast<std::uint64_t>(6 * c.deltaNet.stateFloats() * 4);
        const auto none = m.model->estimateMemory(1024, DType::F16, 0), two = m.model->estimateMemory(1024, DType::F16, 2 * state + 1);
        const auto many = m.model->estimateMemory(1024, DType::F16, 1000 * state);
        QCOMPARE(two.kvCache - none.kvCache, 2 * state);
        QCOMPARE(many.kvCache - none.kvCache, 5 * state);
    }

    // Regenerating a reply of a recurrent model restarts from the snapshot at the prompt's last
    // token (one token run), a follow-up turn from the latest snapshot before it differs, and both
    // give the tokens a fresh session gives.
    void recurrentRegenerate() {
        const QString path = dir_.filePath("qwen35-tiny.gguf");
        writeRandomLanguageModel({.architecture = "qwen35", .dim = 64, .nLayers = 4, .nHeads = 2, .nKvHeads = 1, .headDim = 32, .ffnDim = 96,
                                  .vocabSize = 300, .weightScale = 0.2f, .deltaKHeads = 2, .deltaVHeads = 4, .deltaHeadDim = 16},
                                 path.toStdString());
        const Loaded m = load(path);
        auto shared = std::const_pointer_cast<const LanguageModel>(m.model);
        const auto tokenizer = Tokenizer::fromGguf(*m.file);
        GenerationParams p;
        p.maxTokens = 12;
        p.sampling.temperature = 0;
        std::vector<TokenId> prompt{1};
        for (int i = 0; i < 40; ++i) prompt.push_back(static_cast<TokenId>(260 + i % 37));
        LanguageSession session(shared, *backend_, 256);
        Generator generator(session, tokenizer);
        const auto first = generator.generate(prompt, p);
        const auto kept = session.snapshotPositions();
        QVERIFY(std::find(kept.begin(), kept.end(), static_cast<std::int64_t>(prompt.size()) - 1) != kept.end());
        const auto again = generator.generate(prompt, p);
        QCOMPARE(again.reusedPromptTokens, static_cast<int>(prompt.size()) - 1);
        QCOMPARE(again.tokens, first.tokens);
        // A follow-up that changes the last 5 prompt tokens: back to the start (no snapshot before them) ...
        std::vector<TokenId> edited = prompt;
        for (int i = 0; i < 5; ++i) edited[edited.size() - 1 - static_cast<std::size_t>(i)] = 270;
        const auto changed = generator.generate(edited, p);
        LanguageSession freshSession(shared, *backend_, 256);
        Generator fresh(freshSession, tokenizer);
        QCOMPARE(changed.tokens, fresh.generate(edited, p).tokens);
        QCOMPARE(changed.reusedPromptTokens, 0);
    }

    // Sliding-window layers on the CPU keep only their window plus room for a piece of new rows
    // (here 3: a 5-position window in 7 slots, moved back to the start every 3 rows): the logits
    // equal a session keeping every position (|diff| <= 1e-4) through a prompt run in pieces and
    // a long decode, for every cache type; global layers keep the whole context; the memory
    // estimate counts the windows; and a truncation that lost the window it needs starts over.
    void windowedCacheMatchesFullCache_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("kv");
        for (const char* n : {"gemma3-f32", "gemma2-f32", "phi3-f32", "gpt-oss-f32"})
            for (DType t : {DType::F32, DType::F16}) QTest::newRow(qPrintable(QStringLiteral("%1 %2").arg(n, name(t).data()))) << n << static_cast<int>(t);
    }
    void windowedCacheMatchesFullCache() {
        QFETCH(QString, name);
        QFETCH(int, kv);
        const auto kvType = static_cast<DType>(kv);
        const Loaded m = load(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/families/") + name + ".gguf");
        auto shared = std::const_pointer_cast<const LanguageModel>(m.model);
        const ModelConfig& c = m.model->config();
        auto backend = makeCpuBackend({.threads = 2, .minParallelWork = 0});
        const std::int64_t ctx = 100, chunk = 3;
        LanguageSession full(shared, *backend, ctx, kvType, 0), windowed(shared, *backend, ctx, kvType, chunk);
        for (std::int64_t l = 0; l < c.nLayers; ++l) {
            const std::int64_t window = c.layers[static_cast<std::size_t>(l)].window;
            QCOMPARE(full.cachePositions(l), ctx);
            QCOMPARE(windowed.cachePositions(l), window > 0 ? window - 1 + chunk : ctx);
        }
        const auto same = [&](const std::vector<float>& a, const std::vector<float>& b, const QString& where) {
            QCOMPARE(a.size(), b.size());
            for (std::size_t i = 0; i < a.size(); ++i)
                if (std::fabs(a[i] - b[i]) > 1e-4f) QFAIL(qPrintable(QStringLiteral("%1, logit %2: %3 vs %4").arg(where).arg(i).arg(a[i]).arg(b[i])));
        };
        std::vector<TokenId> tokens;
        for (int i = 0; i < 20; ++i) tokens.push_back(static_cast<TokenId>((i * 37 + 11) % c.vocabSize));
        same(full.prefill(tokens, true), windowed.prefill(tokens, true), "prompt");
        TokenId next = 1;
        for (int step = 0; step < 50; ++step) {
            const auto& a = full.decode(next);
            same(a, windowed.decode(next), QStringLiteral("step %1").arg(step));
            tokens.push_back(next);
            next = static_cast<TokenId>(std::max_element(a.begin(), a.end()) - a.begin());
        }
        // Back 2 positions: within the window it keeps, or everything goes.
        const std::int64_t back = full.position() - 2;
        full.truncate(back);
        windowed.truncate(back);
        QVERIFY(windowed.position() == back || windowed.position() == 0);
        if (windowed.position() < back)
            windowed.prefill(std::span<const TokenId>(tokens).subspan(static_cast<std::size_t>(windowed.position()), static_cast<std::size_t>(back)));
        same(full.decode(tokens[static_cast<std::size_t>(back)]), windowed.decode(tokens[static_cast<std::size_t>(back)]), "after truncation");
        // Far back: the windowed layers no longer hold what position 30 needs.
        windowed.truncate(30);
        QCOMPARE(windowed.position(), std::int64_t{0});
        // The estimate counts each layer's positions.
        double positions = 0;
        for (std::int64_t l = 0; l < c.nLayers; ++l) positions += static_cast<double>(windowedCachePositions(c.layers[static_cast<std::size_t>(l)].window, 4096));
        QCOMPARE(m.model->estimateMemory(4096, DType::F32).kvCache, static_cast<std::uint64_t>(2 * positions * static_cast<double>(c.nKvHeads * c.headDim) * 4));
        QVERIFY(m.model->estimateMemory(4096, DType::F32).kvCache < 2ull * 4096 * static_cast<std::uint64_t>(c.nLayers * c.nKvHeads * c.headDim) * 4);
    }

    // A model whose weights hold NaN (a broken download, a bad conversion) does not print "nan"
    // logits: the session says the model is broken.
    void nanWeightsAreReported() {
        const std::string path = dir_.filePath("nan.gguf").toStdString();
        writeRandomLanguageModel(RandomModelSpec{.dim = 64, .nLayers = 1, .nHeads = 2, .nKvHeads = 1, .ffnDim = 64, .vocabSize = 300}, path);
        std::uint64_t at = 0;
        {
            const GgufFile file = GgufFile::open(path);
            at = file.dataOffset() + file.tensor("blk.0.attn_norm.weight").offset;
        }
        {
            std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(static_cast<std::streamoff>(at));
            const float nan = std::numeric_limits<float>::quiet_NaN();
            f.write(reinterpret_cast<const char*>(&nan), 4);
        }
        const Loaded m = load(QString::fromStdString(path));
        auto backend = makeCpuBackend({.threads = 1});
        LanguageSession session(std::const_pointer_cast<const LanguageModel>(m.model), *backend, 32);
        try {
            session.decode(1);
            QFAIL("NaN logits were returned");
        } catch (const std::runtime_error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("NaN") && QString::fromUtf8(e.what()).contains("broken"), e.what());
        }
    }

    // A model file truncated or written over in place while mapped (`cp new.gguf model.gguf`):
    // reads past its new end are caught (no SIGBUS) and the step ends with a clear error; the same
    // bytes rewritten in place (a new modification time) are reported too. Replacing the file
    // by a rename leaves the session running.
    void modelFileChangedOnDisk_data() {
        QTest::addColumn<QString>("change");
        QTest::newRow("truncated") << "truncated";
        QTest::newRow("rewritten") << "rewritten";
        QTest::newRow("renamed over") << "renamed over";
    }
    void modelFileChangedOnDisk() {
        QFETCH(QString, change);
        const QString path = dir_.filePath("changing-" + QString(change).replace(' ', '-') + ".gguf");
        writeRandomLanguageModel(RandomModelSpec{.dim = 256, .nLayers = 2, .ffnDim = 512, .vocabSize = 4096, .weightType = DType::Q8_0},
                                 path.toStdString());
        const Loaded m = load(path);
        auto backend = makeCpuBackend({.threads = 1});
        LanguageSession session(std::const_pointer_cast<const LanguageModel>(m.model), *backend, 32);
        const auto first = session.decode(1);
        QVERIFY(!m.file->changedOnDisk());
        const QByteArray bytes = lumen::test::readFile(path);
        if (change == "truncated") {
            QVERIFY(QFile::resize(path, 4096));  // the weights' pages are gone
        } else if (change == "rewritten") {
            QTest::qWait(20);
            QFile f(path);
            QVERIFY(f.open(QIODevice::ReadWrite));
            f.write(bytes);  // the same bytes: only the modification time moves
        } else {
            const QString other = path + ".new";
            QVERIFY(lumen::test::writeFile(other, bytes));
            QVERIFY(std::rename(other.toLocal8Bit().constData(), path.toLocal8Bit().constData()) == 0);
        }
        session.truncate(0);
        if (change == "renamed over") {
            QCOMPARE(session.decode(1), first);
            return;
        }
        try {
            session.decode(1);
            QFAIL("a step over a changed file went through");
        } catch (const std::runtime_error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("changed on disk"), e.what());
        }
        QVERIFY(m.file->changedOnDisk());
    }

    // A Q8_0 cache needs heads of a multiple of 32 dimensions (the llama fixture's have 16):
    // a clear error that says what to use instead, not a wrong answer.
    void q8CacheNeedsWholeBlocks() {
        const Loaded m = load(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/llama/llama-f32.gguf"));
        auto backend = makeCpuBackend({.threads = 1});
        try {
            LanguageSession session(std::const_pointer_cast<const LanguageModel>(m.model), *backend, 64, DType::Q8_0);
            QFAIL("a q8_0 cache of 16-dimension heads was accepted");
        } catch (const std::invalid_argument& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("multiple of 32") && QString::fromUtf8(e.what()).contains("f16"), e.what());
        }
    }

    // Prefill (all prompt tokens per matrix) equals decoding them one by one, for every
    // architecture and for float and quantized weights, on both backends.
    void prefillEqualsDecode_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"llama/llama-f32", "llama/llama-q8_0", "llama/qwen2-f32", "llama/llama3-rope-scaling", "families/qwen3-f32",
                              "families/gemma2-f32", "families/gemma3-q8_0", "families/phi3-f32", "families/smollm3-f32", "families/qwen3moe-f32",
                              "families/mixtral-q8_0", "families/gpt-oss-f32", "families/gpt-oss-q8_0", "families/qwen2moe-q8_0",
                              "families/qwen35-f32", "families/qwen35moe-q8_0"})
            QTest::newRow(n) << QString::fromLatin1(n);
    }
    void prefillEqualsDecode() {
        QFETCH(QString, name);
        const Loaded m = load(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/") + name + ".gguf");
        auto shared = std::const_pointer_cast<const LanguageModel>(m.model);
        const std::int64_t vocab = m.model->config().vocabSize;
        const std::vector<TokenId> prompt{1, 17, 42, 99, 5, 77, 3, 120};  // within the fixtures' 128 tokens
        for (bool simd : {false, true}) {
            auto backend = makeCpuBackend({.threads = 2, .simd = simd});
            const auto oneByOne = run(*m.model, *backend, prompt);
            LanguageSession session(shared, *backend, 64);
            // Two chunks, the second continuing the first's cache.
            const std::vector<TokenId> first(prompt.begin(), prompt.begin() + 3), second(prompt.begin() + 3, prompt.end());
            const auto a = session.prefill(first, true);
            const auto b = session.prefill(second, true);
            QCOMPARE(static_cast<std::int64_t>(a.size() + b.size()), vocab * static_cast<std::int64_t>(prompt.size()));
            for (std::size_t t = 0; t < prompt.size(); ++t) {
                const float* got = t < 3 ? a.data() + t * vocab : b.data() + (t - 3) * vocab;
                for (std::int64_t i = 0; i < vocab; ++i)
                    if (std::fabs(got[i] - oneByOne[t][static_cast<std::size_t>(i)]) > 1e-4f)
                        QFAIL(qPrintable(QStringLiteral("position %1 logit %2: %3 vs %4").arg(t).arg(i).arg(got[i]).arg(oneByOne[t][static_cast<std::size_t>(i)])));
            }
            // The last-token form returns the same final row.
            LanguageSession again(shared, *backend, 64);
            const auto last = again.prefill(prompt);
            QCOMPARE(last, oneByOne.back());
        }
    }

    // What `lumen-cli bench` reports: the weight bytes a decode step reads (the embedding table
    // once when tied to the output, else one row of it), rates that agree with each other, and
    // the mean +- sample standard deviation of repetitions.
    void benchmarkFigures() {
        for (bool tied : {false, true}) {
            RandomModelSpec spec;
            spec.tiedEmbeddings = tied;
            const QString path = dir_.filePath(tied ? "bench-tied.gguf" : "bench.gguf");
            writeRandomLanguageModel(spec, path.toStdString());
            const Loaded m = load(path);
            const auto& w = m.model->weights();
            std::uint64_t all = 0;
            for (const auto& t : m.file->tensors()) all += static_cast<std::uint64_t>(t.bytes);
            const auto table = static_cast<std::uint64_t>(w.tokenEmbedding.rowBytes() * w.tokenEmbedding.rows());
            const auto row = static_cast<std::uint64_t>(w.tokenEmbedding.rowBytes());
            QCOMPARE(weightBytesPerToken(*m.model), tied ? all + row : all - table + row);

            auto backend = makeCpuBackend({.threads = 2});
            const auto run = benchmark(std::const_pointer_cast<const LanguageModel>(m.model), LayerSplit{backend.get(), nullptr, 0}, 6, 5);
            QCOMPARE(run.prefillTokens, 6);
            QCOMPARE(run.decodeTokens, 5);
            QVERIFY(run.prefillSeconds > 0 && run.prefillTokensPerSecond > 0 && run.decodeTokensPerSecond > 0);
            QVERIFY(std::fabs(run.prefillTokensPerSecond * run.prefillSeconds - 6) < 1e-6);
            QVERIFY(std::fabs(run.weightBytesPerSecond / run.decodeTokensPerSecond - static_cast<double>(weightBytesPerToken(*m.model))) < 1e-3);
            QVERIFY(run.backend.find("CPU") != std::string::npos);
        }
        const std::vector<double> values{2, 4, 4, 4, 5, 5, 7, 9};
        const Spread s = spreadOf(values);
        QCOMPARE(s.mean, 5.0);
        QVERIFY(std::fabs(s.sd - std::sqrt(32.0 / 7.0)) < 1e-12);
        QCOMPARE(spreadOf(std::vector<double>{3.5}).sd, 0.0);
        QCOMPARE(spreadOf(std::vector<double>{}).mean, 0.0);
    }

    void badModels() {
        RandomModelSpec spec;
        spec.weightType = DType::Q4_K;
        spec.dim = 96;  // not a multiple of 256
        spec.nHeads = 4;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, writeRandomLanguageModel(spec, dir_.filePath("bad.gguf").toStdString()));
        // A file without the model tensors is refused with the tensor's name.
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("llama"));
        w.set("llama.embedding_length", GgufWriteValue::u32(64));
        w.set("llama.block_count", GgufWriteValue::u32(1));
        w.set("llama.attention.head_count", GgufWriteValue::u32(4));
        w.set("llama.feed_forward_length", GgufWriteValue::u32(64));
        const QString path = dir_.filePath("empty-llama.gguf");
        w.write(path.toStdString());
        try {
            load(path);
            QFAIL("a model without tensors loaded");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("token_embd.weight' is missing"), e.what());
        }
    }

    // Files of a known family that lack one of its tensors or keys (fixtures/families/broken,
    // written by make_family_goldens.py into expected.tsv and make_qwen35_goldens.py into
    // expected-qwen35.tsv) are refused with a message naming it.
    void badFamilyFiles() {
        const QString dir = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/families/broken/");
        QStringList lines;
        for (const char* table : {"expected.tsv", "expected-qwen35.tsv"})
            lines += QString::fromUtf8(lumen::test::readFile(dir + table)).split('\n', Qt::SkipEmptyParts);
        QVERIFY(lines.size() >= 15);
        for (const QString& line : lines) {
            const QString file = line.section('\t', 0, 0), expected = line.section('\t', 1);
            try {
                load(dir + file);
                QFAIL(qPrintable(file + " loaded"));
            } catch (const FormatError& e) {
                QVERIFY2(QString::fromUtf8(e.what()).contains(expected), qPrintable(file + ": " + QString::fromUtf8(e.what())));
            }
        }
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<Backend> backend_;
};

QTEST_GUILESS_MAIN(TestLlama)
#include "tst_llama.moc"
