// The BPE pre-tokenizers' split expressions (through PCRE2) against python3-regex.

#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/formats/format_error.h"
#include "inference/llm/tokenizer.h"
#include "test_util.h"

using namespace lumen::inference;

class TestPreTokenizer : public QObject {
    Q_OBJECT
private slots:
    void matchesPythonRegex() {
        const QByteArray table = lumen::test::readFile(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/tokenizer/pretokenize.tsv"));
        QVERIFY(!table.isEmpty());
        int cases = 0, failures = 0;
        for (const QByteArray& line : table.split('\n')) {
            if (line.isEmpty()) continue;
            const QList<QByteArray> f = line.split('\t');
            const std::string pre = f[0].toStdString();
            const std::string text = nlohmann::json::parse(f[1].toStdString()).get<std::string>();
            const auto want = nlohmann::json::parse(f[2].toStdString()).get<std::vector<std::string>>();
            const auto got = preTokenize(pre, text);
            ++cases;
            if (got != want && ++failures <= 5)
                qWarning("%s %s: got %s", pre.c_str(), f[1].constData(), nlohmann::json(got).dump().c_str());
        }
        QCOMPARE(cases, 3200);
        QCOMPARE(failures, 0);
    }

    void unknownPreTokenizer() {
        QVERIFY_THROWS_EXCEPTION(FormatError, preTokenize("no-such-model", "x"));
    }

    void invalidUtf8DoesNotStopSplitting() {
        const auto pieces = preTokenize("llama-bpe", "ab\xff\xfe cd");
        std::string joined;
        for (const auto& p : pieces) joined += p;
        QCOMPARE(QByteArray::fromStdString(joined), QByteArray("ab\xff\xfe cd"));
    }
};

QTEST_GUILESS_MAIN(TestPreTokenizer)
#include "tst_pretokenizer.moc"
