// The CLIP tokenizer against OpenAI's reference ids (../shared/data/clip/clip_tokenizer_cases.json,
// every case), the same vocabulary read as a Hugging Face vocab.json + merges.txt, and bad files.

#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/formats/format_error.h"
#include "test_util.h"
#include "vision/clip_tokenizer.h"
#include "inference/llm/unicode.h"

#include <zlib.h>

using namespace lumen::vision;
using lumen::inference::FormatError;
using Json = nlohmann::json;

namespace {

QString sharedClip() {
    const QString shared = lumen::test::sharedDataDir();
    return shared.isEmpty() ? QString() : shared + "/clip/";
}

}  // namespace

class TestClipTokenizer : public QObject {
    Q_OBJECT
private slots:
    void referenceCases() {
        if (sharedClip().isEmpty()) QSKIP("../shared/data is absent: the CLIP vocabulary and cases live there");
        const ClipTokenizer tok = ClipTokenizer::fromBpeFile((sharedClip() + "bpe_simple_vocab_16e6.txt.gz").toStdString());
        const Json cases = Json::parse(lumen::test::readFile(sharedClip() + "clip_tokenizer_cases.json").toStdString());
        QCOMPARE(static_cast<std::int64_t>(tok.vocabSize()), cases["vocab_size"].get<std::int64_t>());
        QCOMPARE(tok.startId(), cases["sot"].get<std::int32_t>());
        QCOMPARE(tok.endId(), cases["eot"].get<std::int32_t>());
        int checked = 0;
        for (const Json& c : cases["cases"]) {
            const std::string text = c["text"].get<std::string>();
            const auto ids = tok.encode(text);
            QVERIFY2(ids == c["ids"].get<std::vector<std::int32_t>>(), ("ids of \"" + text + "\": " + Json(ids).dump()).c_str());
            const auto marked = tok.tokenize(text, 1 << 20);
            QVERIFY2(marked == c["with_markers"].get<std::vector<std::int32_t>>(), text.c_str());
            QCOMPARE(QString::fromStdString(tok.decode(ids)), QString::fromStdString(c["decoded"].get<std::string>()));
            ++checked;
        }
        QCOMPARE(checked, 22);
    }

    void truncatesToTheContextKeepingTheEnd() {
        if (sharedClip().isEmpty()) QSKIP("../shared/data is absent");
        const ClipTokenizer tok = ClipTokenizer::fromBpeFile((sharedClip() + "bpe_simple_vocab_16e6.txt.gz").toStdString());
        std::string text;
        for (int i = 0; i < 100; ++i) text += "dog ";
        const auto ids = tok.tokenize(text);
        QCOMPARE(ids.size(), std::size_t(77));
        QCOMPARE(ids.front(), tok.startId());
        QCOMPARE(ids.back(), tok.endId());
        QCOMPARE(ids[75], ids[1]);
    }

    void huggingFaceFilesGiveTheSameIds() {
        if (sharedClip().isEmpty()) QSKIP("../shared/data is absent");
        const std::string gzPath = (sharedClip() + "bpe_simple_vocab_16e6.txt.gz").toStdString();
        const ClipTokenizer original = ClipTokenizer::fromBpeFile(gzPath);
        // The same vocabulary as Hugging Face's CLIPTokenizer files: vocab.json and merges.txt.
        std::string text;
        gzFile f = gzopen(gzPath.c_str(), "rb");
        QVERIFY(f);
        char buffer[65536];
        for (int n; (n = gzread(f, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
        gzclose(f);
        std::string merges = "#version: 0.2\n";
        std::size_t pos = text.find('\n') + 1;
        for (int i = 0; i < 49152 - 256 - 2; ++i) {
            const std::size_t nl = text.find('\n', pos);
            merges += text.substr(pos, nl - pos + 1);
            pos = nl + 1;
        }
        Json vocab = Json::object();
        for (std::int32_t id = 0; id < static_cast<std::int32_t>(original.vocabSize()); ++id) vocab[original.piece(id)] = id;
        QTemporaryDir dir;
        QVERIFY(lumen::test::writeFile(dir.filePath("vocab.json"), QByteArray::fromStdString(vocab.dump())));
        QVERIFY(lumen::test::writeFile(dir.filePath("merges.txt"), QByteArray::fromStdString(merges)));
        const ClipTokenizer hf = ClipTokenizer::fromHuggingFace(dir.filePath("vocab.json").toStdString(), dir.filePath("merges.txt").toStdString());
        QCOMPARE(hf.vocabSize(), original.vocabSize());
        for (const char* s : {"a photo of a golden retriever.", "C++ and C# aren't the same", "東京タワーの写真", "emoji 🐱🐶 mix"})
            QVERIFY2(hf.encode(s) == original.encode(s), s);
    }

    void smallHuggingFaceVocabulary() {
        // The byte symbols, two merges and the markers, with ids in an order of the file's choosing.
        Json vocab = Json::object();
        std::int32_t next = 1000;
        for (int b = 0; b < 256; ++b) {
            vocab[lumen::inference::byteToUnicode(static_cast<std::uint8_t>(b))] = --next;
            vocab[lumen::inference::byteToUnicode(static_cast<std::uint8_t>(b)) + "</w>"] = --next;
        }
        vocab["ca"] = 3;
        vocab["cat</w>"] = 4;
        vocab["<|startoftext|>"] = 0;
        vocab["<|endoftext|>"] = 1;
        vocab["unused"] = 2;
        for (std::int32_t id = 5; id < next; ++id) vocab["filler" + std::to_string(id)] = id;
        const ClipTokenizer tok = ClipTokenizer::fromVocabAndMerges(vocab.dump(), "#version: 0.2\nc a\nca t</w>\n", "tiny");
        QCOMPARE(tok.encode("Cat"), (std::vector<std::int32_t>{4}));
        const std::int32_t t = vocab["t"].get<std::int32_t>(), s = vocab["s</w>"].get<std::int32_t>();
        QCOMPARE(tok.encode("cats"), (std::vector<std::int32_t>{3, t, s}));
        QCOMPARE(tok.tokenize("cat"), (std::vector<std::int32_t>{0, 4, 1}));
        QCOMPARE(tok.tokenize("cat cat cat", 3), (std::vector<std::int32_t>{0, 4, 1}));
        QCOMPARE(QString::fromStdString(tok.decode(tok.encode("cats!"))), QString("cats ! "));
    }

    void cleaning() {
        QCOMPARE(QString::fromStdString(ClipTokenizer::clean("  A\tPHOTO \n of &amp;amp; a Café &#x41;&#66; ")), QString("a photo of & a café ab"));
        QCOMPARE(QString::fromStdString(ClipTokenizer::clean("ÄÖÜ ΣΑΣ Ǆ")), QString("äöü σασ ǆ"));
        QCOMPARE(QString::fromStdString(ClipTokenizer::clean("   ")), QString());
        QCOMPARE(QString::fromStdString(ClipTokenizer::clean("&unknown; &#xZZ; &#99999999;")), QString("&unknown; &#xzz; \xEF\xBF\xBD"));
    }

    void badFiles_data() {
        QTest::addColumn<QString>("vocab");
        QTest::addColumn<QString>("merges");
        QTest::addColumn<QString>("message");
        QTest::newRow("vocab not json") << "{" << "" << "not valid JSON";
        QTest::newRow("vocab array") << "[]" << "" << "not an object";
        QTest::newRow("id out of range") << R"({"a": 5})" << "" << "is not in 0..0";
        QTest::newRow("id twice") << R"({"a": 0, "b": 0})" << "" << "given twice";
        QTest::newRow("no markers") << R"({"a": 0})" << "" << "<|startoftext|>";
        QTest::newRow("bad merge") << R"({"<|startoftext|>": 0, "<|endoftext|>": 1})" << "#version\na b c\n" << "line 2 is not a merge";
        QTest::newRow("no bytes") << R"({"<|startoftext|>": 0, "<|endoftext|>": 1})" << "" << "lacks the byte symbol";
    }
    void badFiles() {
        QFETCH(QString, vocab);
        QFETCH(QString, merges);
        QFETCH(QString, message);
        try {
            ClipTokenizer::fromVocabAndMerges(vocab.toStdString(), merges.toStdString(), "model");
            QFAIL("accepted");
        } catch (const FormatError& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        QVERIFY_THROWS_EXCEPTION(FormatError, ClipTokenizer::fromBpeFile("/no/such/file.txt.gz"));
    }
};

QTEST_GUILESS_MAIN(TestClipTokenizer)
#include "tst_clip_tokenizer.moc"
