// GGUF: writer <-> reader round trips, real files from ../shared, the broken-file corpus.

#include <QLocale>
#include <QtTest>
#include <fstream>
#include <random>
#include <sstream>

#include "inference/formats/gguf.h"
#include "inference/formats/inspect.h"
#include "inference/formats/quants.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

std::vector<std::uint8_t> randomTensorBytes(DType t, std::int64_t elements, unsigned seed) {
    std::vector<float> x(static_cast<std::size_t>(elements));
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (auto& v : x) v = dist(rng);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(*byteSize(t, elements)));
    if (canQuantize(t)) {
        quantize(t, x.data(), bytes.data(), elements);
    } else {
        // No quantizer: random bytes with every fp16 field kept small by masking.
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng() & 0x37);
    }
    return bytes;
}

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT
private slots:
    void init() { QVERIFY(dir_.isValid()); }

    void metadataRoundTrip() {
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("llama"));
        w.set("t.u8", GgufWriteValue::u8(250));
        w.set("t.i8", GgufWriteValue::i8(-120));
        w.set("t.u16", GgufWriteValue::u16(65000));
        w.set("t.i16", GgufWriteValue::i16(-32000));
        w.set("t.u32", GgufWriteValue::u32(4000000000u));
        w.set("t.i32", GgufWriteValue::i32(-2000000000));
        w.set("t.u64", GgufWriteValue::u64(1ull << 62));
        w.set("t.i64", GgufWriteValue::i64(-(1ll << 61)));
        w.set("t.f32", GgufWriteValue::f32(0.15625f));
        w.set("t.f64", GgufWriteValue::f64(1e-300));
        w.set("t.bool", GgufWriteValue::boolean(true));
        w.set("t.string", GgufWriteValue::string("héllo\n\"world\""));
        w.set("t.empty", GgufWriteValue::string(""));
        w.set("t.strings", GgufWriteValue::stringArray({"<s>", "", "▁the", "\xe2\x96\x81"}));
        w.set("t.floats", GgufWriteValue::f32Array({1.5f, -2.0f}));
        w.set("t.ints", GgufWriteValue::i32Array({-1, 0, 7}));
        w.set("t.u64s", GgufWriteValue::array(GgufType::U64, {GgufWriteValue::u64(9), GgufWriteValue::u64(1ull << 63)}));
        w.set("t.bools", GgufWriteValue::array(GgufType::Bool, {GgufWriteValue::boolean(false), GgufWriteValue::boolean(true)}));
        w.set("t.nested", GgufWriteValue::array(GgufType::Array, {GgufWriteValue::stringArray({"a b", "c"}),
                                                                   GgufWriteValue::stringArray({})}));
        w.set("t.u32", GgufWriteValue::u32(7));  // replaced in place, order kept
        const auto bytes = w.toBytes();
        const GgufFile f = GgufFile::parse(bytes, "memory.gguf");

        QCOMPARE(f.version(), 3u);
        QCOMPARE(f.metadata().size(), std::size_t(20));
        QCOMPARE(QString::fromLatin1(f.metadata()[5].first.data(), 5), QStringLiteral("t.u32"));
        QCOMPARE(f.getInt("t.u8"), 250);
        QCOMPARE(f.getInt("t.i8"), -120);
        QCOMPARE(f.getInt("t.u16"), 65000);
        QCOMPARE(f.getInt("t.i16"), -32000);
        QCOMPARE(f.getInt("t.u32"), 7);
        QCOMPARE(f.getInt("t.i32"), -2000000000);
        QCOMPARE(f.getInt("t.u64"), std::int64_t(1) << 62);
        QCOMPARE(f.getInt("t.i64"), -(std::int64_t(1) << 61));
        QCOMPARE(f.getFloat("t.f32"), 0.15625);
        QCOMPARE(f.getFloat("t.f64"), 1e-300);
        QCOMPARE(f.getBool("t.bool"), true);
        QCOMPARE(QString::fromStdString(f.getString("t.string")), QStringLiteral("héllo\n\"world\""));
        QCOMPARE(f.getString("t.empty"), std::string());
        const auto strings = f.getStringArray("t.strings");
        QCOMPARE(strings.size(), std::size_t(4));
        QCOMPARE(std::string(strings[2]), std::string("▁the"));
        QCOMPARE(f.getFloatArray("t.floats"), (std::vector<float>{1.5f, -2.0f}));
        QCOMPARE(f.getIntArray("t.ints"), (std::vector<std::int64_t>{-1, 0, 7}));
        QCOMPARE(f.getIntArray("t.bools"), (std::vector<std::int64_t>{0, 1}));
        QCOMPARE(f.getArray("t.u64s").count, std::uint64_t(2));
        QVERIFY_THROWS_EXCEPTION(FormatError, f.getIntArray("t.u64s"));  // 2^63 does not fit int64
        const GgufValue& nested = f.getArray("t.nested");
        QCOMPARE(nested.items.size(), std::size_t(2));
        QCOMPARE(std::string(nested.items[0].strings[0]), std::string("a b"));
        QCOMPARE(nested.items[1].count, std::uint64_t(0));

        // Fallbacks and errors.
        QCOMPARE(f.getInt("missing.key", 42), 42);
        try {
            f.getInt("llama.block_count");
            QFAIL("missing key accepted");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("memory.gguf: metadata 'llama.block_count': missing"), e.what());
        }
        try {
            f.getString("t.u32");
            QFAIL("type mismatch accepted");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("is u32, expected a string"), e.what());
        }
        QVERIFY_THROWS_EXCEPTION(FormatError, f.getFloat("t.i32"));
        QVERIFY_THROWS_EXCEPTION(FormatError, f.getStringArray("t.floats"));
        QVERIFY_THROWS_EXCEPTION(FormatError, f.getInt("t.string", 3));
    }

    void everyDTypeRoundTripsThroughAFile() {
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("test"));
        std::vector<std::vector<std::uint8_t>> data;
        int seed = 0;
        for (DType t : kAllDTypes) {
            const std::vector<std::int64_t> shape = {256, 3};
            data.push_back(randomTensorBytes(t, 256 * 3, static_cast<unsigned>(++seed)));
            w.addTensor("tensor." + std::string(name(t)), t, shape, data.back());
        }
        const auto path = dir_.filePath("all.gguf").toStdString();
        w.write(path);
        const GgufFile f = GgufFile::open(path);
        QCOMPARE(f.tensors().size(), std::size(kAllDTypes));
        std::size_t i = 0;
        for (DType t : kAllDTypes) {
            const GgufTensor& tensor = f.tensor("tensor." + std::string(name(t)));
            QVERIFY(tensor.dtype == t);
            QCOMPARE(tensor.shape, (std::vector<std::int64_t>{256, 3}));
            QCOMPARE(tensor.offset % 32, std::uint64_t(0));
            QVERIFY(std::equal(tensor.data.begin(), tensor.data.end(), data[i].begin(), data[i].end()));
            ++i;
        }
        QCOMPARE(f.dataOffset() % 32, std::uint64_t(0));
        QCOMPARE(f.fileSize() % 32, std::uint64_t(0));  // padded after the last tensor
        // Views into the mapping, not copies: tensors sit at their offsets from one base.
        const auto& a = f.tensors()[0];
        const auto& b = f.tensors()[5];
        QCOMPARE(static_cast<std::uint64_t>(b.data.data() - a.data.data()), b.offset - a.offset);
        QVERIFY_THROWS_EXCEPTION(FormatError, f.tensor("nope"));
    }

    void customAlignment() {
        GgufWriter w;
        w.setAlignment(64);
        const std::vector<std::uint8_t> d(4 * 3, 1);
        w.addTensor("a", DType::F32, {3}, d);
        w.addTensor("b", DType::F32, {3}, d);
        const auto bytes = w.toBytes();
        const GgufFile f = GgufFile::parse(bytes, "aligned.gguf");
        QCOMPARE(f.alignment(), 64u);
        QCOMPARE(f.tensor("b").offset, std::uint64_t(64));
        QCOMPARE(f.dataOffset() % 64, std::uint64_t(0));
    }

    void q4kmStyleMix() {
        // A Q4_K_M-style file: most weights Q4_K, the sensitive ones (attn_v, ffn_down, output) Q6_K.
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("llama"));
        w.set("general.file_type", GgufWriteValue::u32(15));  // LLAMA_FTYPE_MOSTLY_Q4_K_M
        std::vector<std::vector<std::uint8_t>> keep;
        const char* names[] = {"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "output.weight"};
        for (const char* n : names) {
            const DType t = std::string(n).find("attn_q") != std::string::npos ? DType::Q4_K : DType::Q6_K;
            keep.push_back(randomTensorBytes(t, 512 * 4, 9));
            w.addTensor(n, t, {512, 4}, keep.back());
        }
        const auto path = dir_.filePath("mix.gguf").toStdString();
        w.write(path);
        const GgufFile f = GgufFile::open(path);
        QVERIFY(f.tensor("blk.0.attn_q.weight").dtype == DType::Q4_K);
        QVERIFY(f.tensor("output.weight").dtype == DType::Q6_K);

        // --dump writes the dequantized tensor in file order.
        const auto out = dir_.filePath("out.f32").toStdString();
        QCOMPARE(dumpTensorF32(path, "blk.0.attn_q.weight", out), std::int64_t(2048));
        const QByteArray dumped = lumen::test::readFile(QString::fromStdString(out));
        std::vector<float> expected(2048);
        dequantize(DType::Q4_K, keep[0].data(), expected.data(), 2048);
        QCOMPARE(dumped.size(), qsizetype(2048 * 4));
        QVERIFY(std::memcmp(dumped.constData(), expected.data(), 2048 * 4) == 0);

        std::ostringstream report;
        inspectModel(path, report);
        QVERIFY(report.str().find("Q4_K×1 Q6_K×3") != std::string::npos);
    }

    void stories260K() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping the real TinyStories file");
        const auto path = (shared + "/tinystories/stories260K.gguf").toStdString();
        const GgufFile f = GgufFile::open(path);
        QCOMPARE(f.getString("general.architecture"), std::string("llama"));
        QCOMPARE(f.getInt("llama.block_count"), 5);
        QCOMPARE(f.getInt("llama.embedding_length"), 64);
        QCOMPARE(f.getInt("llama.attention.head_count"), 8);
        QCOMPARE(f.getInt("llama.attention.head_count_kv"), 4);
        QCOMPARE(f.getInt("llama.feed_forward_length"), 172);
        QCOMPARE(f.getStringArray("tokenizer.ggml.tokens").size(), std::size_t(512));
        QCOMPARE(f.getString("tokenizer.ggml.model"), std::string("llama"));
        QCOMPARE(f.tensors().size(), std::size_t(48));
        std::int64_t params = 0;
        for (const auto& t : f.tensors()) params += t.elements;
        QCOMPARE(params, std::int64_t(292800));
        const GgufTensor& emb = f.tensor("token_embd.weight");
        QCOMPARE(emb.shape, (std::vector<std::int64_t>{64, 512}));
        QVERIFY(emb.dtype == DType::F32);

        // Dumping an F32 tensor reproduces its bytes exactly.
        const auto out = dir_.filePath("emb.f32").toStdString();
        dumpTensorF32(path, "token_embd.weight", out);
        const QByteArray dumped = lumen::test::readFile(QString::fromStdString(out));
        QVERIFY(std::equal(emb.data.begin(), emb.data.end(), reinterpret_cast<const std::uint8_t*>(dumped.constData())));
    }

    void vocabularyFiles_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("tokens");
        QTest::newRow("llama-spm") << "ggml-vocab-llama-spm.gguf" << 32000;
        QTest::newRow("phi-3") << "ggml-vocab-phi-3.gguf" << 32064;
        QTest::newRow("gpt-2") << "ggml-vocab-gpt-2.gguf" << 50257;
        QTest::newRow("bert-bge") << "ggml-vocab-bert-bge.gguf" << 30522;
    }
    void vocabularyFiles() {
        QFETCH(QString, file);
        QFETCH(int, tokens);
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping the vocabulary files");
        const auto path = (shared + "/tokenizers/" + file).toStdString();
        const GgufFile f = GgufFile::open(path);
        QVERIFY(f.tensors().empty());
        QCOMPARE(f.getStringArray("tokenizer.ggml.tokens").size(), static_cast<std::size_t>(tokens));
        std::ostringstream report;
        inspectModel(path, report);
        QVERIFY(report.str().find("vocabulary only") != std::string::npos);
    }

    // A mixture of experts: inspect names the experts and what one token goes through. The
    // qwen3moe golden file: 8 experts of 32 (of 64 inputs), 2 per token, on 2 layers, so each
    // token skips 6/8 of the 2 x 3 x 8 x 32 x 64 expert weights.
    void inspectShowsExperts() {
        const std::string path = LUMEN_TEST_SOURCE_DIR "/fixtures/families/qwen3moe-f32.gguf";
        std::ostringstream report;
        inspectModel(path, report);
        const QString text = QString::fromStdString(report.str());
        QVERIFY2(text.contains("experts 8, 2 used per token, each 32 wide"), qPrintable(text));
        const auto file = GgufFile::open(path);
        std::int64_t params = 0;
        for (const auto& t : file.tensors()) params += t.elements;
        const std::int64_t active = params - 2 * 3 * 6 * 32 * 64;
        QVERIFY2(text.contains(QStringLiteral("active parameters per token: %1 (2 of 8 experts)").arg(QLocale(QLocale::English).toString(active))),
                 qPrintable(text));
    }

    // Every file in fixtures/broken (made by make_broken_files.py) gives its expected error.
    void brokenCorpus() {
        const QString dir = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/broken/");
        const QByteArray table = lumen::test::readFile(dir + "expected.tsv");
        QVERIFY(!table.isEmpty());
        int checked = 0;
        for (const QByteArray& line : table.split('\n')) {
            if (line.isEmpty()) continue;
            const qsizetype tab = line.indexOf('\t');
            const QString file = QString::fromUtf8(line.left(tab));
            const QString expected = QString::fromUtf8(line.mid(tab + 1));
            std::ostringstream report;
            try {
                inspectModel((dir + file).toStdString(), report);
                QFAIL(qPrintable(file + " was accepted"));
            } catch (const FormatError& e) {
                const QString message = QString::fromUtf8(e.what());
                QVERIFY2(message.contains(expected), qPrintable(file + ": " + message));
                QVERIFY2(message.contains(file), qPrintable(file + ": the message does not name the file: " + message));
            }
            ++checked;
        }
        QVERIFY(checked >= 40);
    }

private:
    QTemporaryDir dir_;
};

QTEST_GUILESS_MAIN(TestGguf)
#include "tst_gguf.moc"
