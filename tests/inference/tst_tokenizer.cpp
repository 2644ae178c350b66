// Tokenizers against real vocabularies and reference encodings from ../shared/data, and the
// SentencePiece reference fixture (fixtures/make_tokenizer_fixtures.py).

#include <QtTest>
#include <nlohmann/json.hpp>
#include <random>

#include "inference/formats/format_error.h"
#include "inference/formats/gguf.h"
#include "inference/llm/tokenizer.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

std::vector<TokenId> parseIds(const QByteArray& line) {
    std::vector<TokenId> ids;
    for (const QByteArray& part : line.split(' '))
        if (!part.isEmpty()) ids.push_back(part.toInt());
    return ids;
}

QString idsText(const std::vector<TokenId>& ids) {
    QStringList parts;
    for (auto id : ids) parts << QString::number(id);
    return parts.join(' ');
}

// The lines of a reference table ("<text as JSON>\t<ids>") whose ids ours differ from (and, with
// `roundTrip`, that do not decode back to the text, U+2581 aside: SentencePiece reads it as a
// space); `cases` counts the lines. The first few are printed.
int referenceMismatches(const Tokenizer& tok, const QString& path, int& cases, bool roundTrip) {
    int failures = 0;
    cases = 0;
    for (const QByteArray& line : lumen::test::readFile(path).split('\n')) {
        if (line.isEmpty()) continue;
        const qsizetype tab = line.indexOf('\t');
        const std::string text = nlohmann::json::parse(line.left(tab).toStdString()).get<std::string>();
        const auto want = parseIds(line.mid(tab + 1));
        const auto got = tok.encode(text, false, false);
        ++cases;
        if (got != want && ++failures <= 5)
            qWarning("%s\n  got  %s\n  want %s", line.left(tab).constData(), qPrintable(idsText(got)), qPrintable(idsText(want)));
        else if (roundTrip && got == want && text.find("\xE2\x96\x81") == std::string::npos && tok.decode(got) != text && ++failures <= 5)
            qWarning("%s does not decode back", line.left(tab).constData());
    }
    return failures;
}

}  // namespace

class TestTokenizer : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        shared_ = lumen::test::sharedDataDir();
        if (shared_.isEmpty()) QSKIP("../shared/data is absent: the tokenizer tests need its vocabularies");
    }

    // llama.cpp's test vectors: every case in <vocab>.gguf.inp encodes to the ids in .out
    // (no BOS), and decodes back to the input.
    void llamaCppVectors_data() {
        QTest::addColumn<QString>("vocab");
        QTest::newRow("llama-spm") << "ggml-vocab-llama-spm.gguf";
        QTest::newRow("phi-3") << "ggml-vocab-phi-3.gguf";
        QTest::newRow("gpt-2") << "ggml-vocab-gpt-2.gguf";
    }
    void llamaCppVectors() {
        QFETCH(QString, vocab);
        const QString base = shared_ + "/tokenizers/" + vocab;
        const GgufFile file = GgufFile::open(base.toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        const QByteArray inp = lumen::test::readFile(base + ".inp");
        const QByteArray out = lumen::test::readFile(base + ".out");
        const QList<QByteArray> cases = inp.split('\n');  // re-split below on the separator
        QList<QByteArray> texts;
        {
            QByteArray rest = inp;
            const QByteArray sep = "\n__ggml_vocab_test__\n";
            qsizetype at;
            while ((at = rest.indexOf(sep)) >= 0) {
                texts << rest.left(at);
                rest = rest.mid(at + sep.size());
            }
        }
        const QList<QByteArray> expected = out.split('\n');
        QVERIFY(texts.size() >= 40);
        int failures = 0;
        for (qsizetype i = 0; i < texts.size(); ++i) {
            const std::string text = texts[i].toStdString();
            const auto ids = tok.encode(text, false, false);
            const auto want = parseIds(expected[i]);
            if (ids != want) {
                ++failures;
                qWarning("case %lld %s\n  got  %s\n  want %s", static_cast<long long>(i), texts[i].toHex(' ').constData(),
                         qPrintable(idsText(ids)), qPrintable(idsText(want)));
            }
        }
        QCOMPARE(failures, 0);
        Q_UNUSED(cases);
    }

    // Phi-3's special tokens drop the whitespace after them (llama.cpp's rstrip attribute, given
    // by the model's name; not to <unk>, <s>, <|endoftext|>). Ids from llama.cpp's llama-tokenize
    // (commit c392e509) on the same vocabulary, special tokens parsed, no BOS.
    void phi3SpecialTokensStripWhitespaceAfter() {
        const GgufFile file = GgufFile::open((shared_ + "/tokenizers/ggml-vocab-phi-3.gguf").toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        QCOMPARE(tok.encode("<|user|>\nHi<|end|>\n<|assistant|>", false, true), (std::vector<TokenId>{32010, 6324, 32007, 32001}));
        QCOMPARE(tok.encode("</s>  x <s> y<|endoftext|>  z", false, true), (std::vector<TokenId>{2, 921, 29871, 1, 29871, 343, 32000, 259, 503}));
        QCOMPARE(tok.encode("<unk> \t<|system|>\n\n You are<|end|>  \n", false, true), (std::vector<TokenId>{0, 259, 12, 32006, 887, 526, 32007}));
        // Other vocabularies keep the whitespace.
        const GgufFile llama = GgufFile::open((shared_ + "/tokenizers/ggml-vocab-llama-spm.gguf").toStdString());
        QVERIFY(Tokenizer::fromGguf(llama).vocabulary().rstrip.empty());
    }

    void llama2Cases() {
        const GgufFile file = GgufFile::open((shared_ + "/tokenizers/ggml-vocab-llama-spm.gguf").toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        QCOMPARE(tok.encode(""), (std::vector<TokenId>{1}));
        QCOMPARE(tok.encode("I believe the meaning of life is"), (std::vector<TokenId>{1, 306, 4658, 278, 6593, 310, 2834, 338}));
        QCOMPARE(tok.encode("Simply put, the theory of relativity states that "),
                 (std::vector<TokenId>{1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871}));
        QCOMPARE(tok.encode("A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just "),
                 (std::vector<TokenId>{1, 319, 11473, 2643, 378, 629, 271, 18099, 278, 3815, 373, 278, 6826, 29901, 13, 13, 4706, 6324,
                                       14332, 29892, 13, 13, 4706, 306, 925, 29871}));
        QCOMPARE(tok.encode("Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe "
                            "poivrée\n        plush girafe => girafe peluche\n        cheese =>"),
                 (std::vector<TokenId>{1,    4103, 9632,  4223, 304,  5176,  29901, 13,   13,   4706, 7205, 4932, 357,  1149, 301,
                                       449,  276,  316,   2778, 13,   4706,  1236,  407,  837,  524,  1149, 6042, 354,  772,  440,
                                       29878, 1318, 13,   4706, 715,  1878,  330,   3055, 1725, 1149, 330,  3055, 1725, 4639, 28754,
                                       13,   4706, 923,   968,  1149}));
    }

    // 3000 generated strings encoded by Debian's python3-sentencepiece with the Llama 2 model
    // (fixtures/make_tokenizer_fixtures.py); ours must give the same ids for every one.
    void sentencePieceReference() {
        const GgufFile file = GgufFile::open((shared_ + "/tokenizers/ggml-vocab-llama-spm.gguf").toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        int cases = 0;
        QCOMPARE(referenceMismatches(tok, QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/tokenizer/spm_llama2.tsv"), cases, false), 0);
        QCOMPARE(cases, 3000);
    }

    // A vocabulary configured as Gemma's (no dummy prefix, byte fallback, digits split, user-defined
    // whitespace pieces and turn markers), trained by python3-sentencepiece, and 3000 strings it
    // encoded (fixtures/make_gemma_tokenizer_fixtures.py): the same ids from ours, which decode back.
    void gemmaStyleSentencePiece() {
        const GgufFile file = GgufFile::open(LUMEN_TEST_SOURCE_DIR "/fixtures/tokenizer/spm_gemma_style.gguf");
        const Tokenizer tok = Tokenizer::fromGguf(file);
        QVERIFY(!tok.vocabulary().addSpacePrefix);
        int cases = 0;
        QCOMPARE(referenceMismatches(tok, QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/tokenizer/spm_gemma_style.tsv"), cases, true), 0);
        QCOMPARE(cases, 3000);
    }

    // A byte token whose text is not <0xHH> is refused when the vocabulary loads (it used to
    // abort on decoding); lowercase hex digits are a byte too.
    void byteTokensAreValidated() {
        for (const char* text : {"<0xZZ>", "<0x4>", "<0x41", "byte"}) {
            GgufWriter w;
            w.set("tokenizer.ggml.model", GgufWriteValue::string("llama"));
            w.set("tokenizer.ggml.tokens", GgufWriteValue::stringArray({"<unk>", "<s>", text}));
            w.set("tokenizer.ggml.token_type", GgufWriteValue::i32Array({2, 3, 6}));
            const std::vector<std::uint8_t> bytes = w.toBytes();
            const GgufFile file = GgufFile::parse(bytes, "bad-byte.gguf");
            try {
                (void)Tokenizer::fromGguf(file);
                QFAIL(text);
            } catch (const FormatError& e) {
                QVERIFY2(QString::fromUtf8(e.what()).contains("token 2 is a byte token, but its text is not <0xHH>"), e.what());
            }
        }
        QCOMPARE(byteTokenValue("<0x4a>").value_or(0), 0x4a);
        QCOMPARE(byteTokenValue("<0xFF>").value_or(0), 0xff);
        QVERIFY(!byteTokenValue("<0xG0>"));
    }

    // OpenAI's harmony vocabulary (gpt-oss): "<|end|>" closes each message of a reply (the
    // analysis, then the final one) and must not end generation; "<|return|>" (the file's EOS),
    // "<|call|>" and "<|endoftext|>" do, as llama.cpp and the model's generation config have it.
    // The message markers render when asked (the reply's reasoning is split on them).
    void harmonyEndsOfGeneration() {
        GgufWriter w;
        w.set("tokenizer.ggml.model", GgufWriteValue::string("gpt2"));
        w.set("tokenizer.ggml.pre", GgufWriteValue::string("gpt-4o"));
        const std::vector<std::string> tokens{"a", "b", "ab", "<|endoftext|>", "<|return|>", "<|channel|>", "<|end|>", "<|message|>", "<|call|>"};
        w.set("tokenizer.ggml.tokens", GgufWriteValue::stringArray(tokens));
        w.set("tokenizer.ggml.token_type", GgufWriteValue::i32Array({1, 1, 1, 3, 3, 3, 3, 3, 3}));
        w.set("tokenizer.ggml.merges", GgufWriteValue::stringArray({"a b"}));
        w.set("tokenizer.ggml.eos_token_id", GgufWriteValue::u32(4));
        const std::vector<std::uint8_t> bytes = w.toBytes();
        const GgufFile file = GgufFile::parse(bytes, "harmony.gguf");
        const Tokenizer tok = Tokenizer::fromGguf(file);
        const Vocabulary& v = tok.vocabulary();
        QVERIFY(!v.isEndOfGeneration(6));  // <|end|>
        for (TokenId id : {3, 4, 8}) QVERIFY2(v.isEndOfGeneration(id), qPrintable(QString::number(id)));
        const std::vector<TokenId> reply{5, 0, 7, 2, 6};
        QCOMPARE(QString::fromStdString(tok.decode(reply, true)), QStringLiteral("<|channel|>a<|message|>ab<|end|>"));
    }

    void specialTokensOnlyWhenAsked() {
        const GgufFile file = GgufFile::open((shared_ + "/tokenizers/ggml-vocab-llama-spm.gguf").toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        const auto parsed = tok.encode("<s>Hi</s>", false, true);
        QCOMPARE(parsed.front(), 1);
        QCOMPARE(parsed.back(), 2);
        const auto plain = tok.encode("<s>Hi</s>", false, false);
        QVERIFY(std::find(plain.begin(), plain.end(), 1) == plain.end());
        QVERIFY(plain.size() > 3);
        // After a special token, text gets the SentencePiece space prefix again.
        QCOMPARE(tok.encode("<s>Hi", false, true), (std::vector<TokenId>{1, 6324}));
    }

    void roundTripAndStreaming() {
        for (const char* vocab : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
            const GgufFile file = GgufFile::open((shared_ + "/tokenizers/" + vocab).toStdString());
            const Tokenizer tok = Tokenizer::fromGguf(file);
            const std::string text = "Hello world! Grüße aus Köln 🦙 — 日本語のテキスト\n\ttabs and  spaces";
            const auto ids = tok.encode(text, false, false);
            QCOMPARE(QString::fromStdString(tok.decode(ids)), QString::fromStdString(text));
            // Streaming emits only whole UTF-8 characters, and the pieces add up to the text.
            Detokenizer d(tok);
            std::string streamed;
            for (auto id : ids) {
                const std::string piece = d.push(id);
                QVERIFY2(QString::fromUtf8(piece.data(), static_cast<qsizetype>(piece.size())).toUtf8().toStdString() == piece,
                         "a streamed piece split a UTF-8 character");
                streamed += piece;
            }
            streamed += d.finish();
            QCOMPARE(QString::fromStdString(streamed), QString::fromStdString(text));
        }
    }

    void tinyStoriesVocabulary() {
        const GgufFile file = GgufFile::open((shared_ + "/tinystories/stories260K.gguf").toStdString());
        const Tokenizer tok = Tokenizer::fromGguf(file);
        const auto ids = tok.encode("Once upon a time, there was a little girl named Lily.");
        QCOMPARE(ids.front(), 1);
        QCOMPARE(QString::fromStdString(tok.decode(ids)), QStringLiteral("Once upon a time, there was a little girl named Lily."));
        QVERIFY(ids.size() < 30);  // merges happened: 53 characters
    }

private:
    QString shared_;
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
