// Splitting a streamed reply into reasoning and answer, whatever pieces the text comes in.

#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/llm/reasoning.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

// The reply fed in pieces of `size` bytes (0: all at once).
ReasoningSplitter::Pieces split(const std::string& reply, std::size_t size, bool startInside = false, bool harmony = false) {
    ReasoningSplitter s(ReasoningMarkers{.harmony = harmony}, startInside);
    ReasoningSplitter::Pieces all;
    const auto add = [&](const ReasoningSplitter::Pieces& p) {
        all.reasoning += p.reasoning;
        all.answer += p.answer;
    };
    if (size == 0) add(s.feed(reply));
    else
        for (std::size_t i = 0; i < reply.size(); i += size) add(s.feed(std::string_view(reply).substr(i, size)));
    add(s.finish());
    return all;
}

}  // namespace

class TestReasoning : public QObject {
    Q_OBJECT
private slots:
    void splits_data() {
        QTest::addColumn<QString>("reply");
        QTest::addColumn<bool>("startInside");
        QTest::addColumn<QString>("reasoning");
        QTest::addColumn<QString>("answer");
        QTest::newRow("qwen3") << "<think>\nThe user greets me.\n</think>\n\nHello!" << false << "The user greets me.\n" << "Hello!";
        QTest::newRow("opened by the prompt (QwQ, R1)") << "Let me count: 2.\n</think>\n\nTwo." << true << "Let me count: 2.\n" << "Two.";
        QTest::newRow("thinking disabled") << "<think>\n\n</think>\n\nSure." << false << "" << "Sure.";
        QTest::newRow("no reasoning") << "Plain answer with </think> in it." << false << "" << "Plain answer with </think> in it.";
        QTest::newRow("marker quoted in the answer") << "Use <think> tags." << false << "" << "Use <think> tags.";
        QTest::newRow("never closed (stopped)") << "<think>still thinking <thi" << false << "still thinking <thi" << "";
        QTest::newRow("lone angle brackets") << "<think>a < b and c <</think> <b>x</b> <" << false << "a < b and c <" << "<b>x</b> <";
    }
    void splits() {
        QFETCH(QString, reply);
        QFETCH(bool, startInside);
        QFETCH(QString, reasoning);
        QFETCH(QString, answer);
        for (std::size_t size : {0, 1, 2, 3, 5, 7}) {
            const auto p = split(reply.toStdString(), size, startInside);
            QCOMPARE(QString::fromStdString(p.reasoning), reasoning);
            QCOMPARE(QString::fromStdString(p.answer), answer);
        }
    }

    void markersFromTemplate() {
        QVERIFY(reasoningMarkers("{%- if '</think>' in content %}...").has_value());
        QVERIFY(!reasoningMarkers("{{ '<|im_start|>' + message['role'] }}").has_value());
        const ReasoningMarkers m;
        QVERIFY(promptOpensReasoning("<|im_start|>assistant\n<think>\n", m));
        QVERIFY(!promptOpensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", m));
        QVERIFY(!promptOpensReasoning("<|im_start|>assistant\n", m));
        // The real thinking templates name the markers: Qwen3's and QwQ's (whose generation
        // prompt opens the thinking itself).
        for (const char* name : {"Qwen-Qwen3-0.6B.jinja", "Qwen-QwQ-32B.jinja", "Qwen-Qwen3.5-4B.jinja"}) {
            const QByteArray text = lumen::test::readFile(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/chat_templates/models/") + name);
            QVERIFY2(!text.isEmpty() && reasoningMarkers(text.toStdString()).has_value(), name);
        }
        // Qwen3.5's generation prompt opens the thinking unless enable_thinking is false (its
        // renders in chat_templates/goldens.json).
        const QByteArray goldens = lumen::test::readFile(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/chat_templates/goldens.json"));
        const auto qwen35 = nlohmann::json::parse(goldens.constData(), goldens.constData() + goldens.size())["models/Qwen-Qwen3.5-4B.jinja"];
        QVERIFY(promptOpensReasoning(qwen35["system_user_generation"]["output"].get<std::string>(), m));
        QVERIFY(!promptOpensReasoning(qwen35["thinking_off"]["output"].get<std::string>(), m));
        // gpt-oss's template writes the harmony format.
        const QByteArray gptOss = lumen::test::readFile(QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/chat_templates/models/openai-gpt-oss-20b.jinja"));
        const auto harmony = reasoningMarkers(gptOss.toStdString());
        QVERIFY(harmony && harmony->harmony);
        QVERIFY(!promptOpensReasoning("<|start|>assistant", *harmony));
    }

    // gpt-oss's replies, as the model writes them (special tokens rendered): the analysis channel
    // is the reasoning, the final channel the answer, headers and message ends are neither.
    void harmony_data() {
        QTest::addColumn<QString>("reply");
        QTest::addColumn<QString>("reasoning");
        QTest::addColumn<QString>("answer");
        QTest::newRow("analysis then final")
            << "<|channel|>analysis<|message|>User asks 2+2. Answer 4.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4."
            << "User asks 2+2. Answer 4." << "2 + 2 = 4.";
        QTest::newRow("final only") << "<|channel|>final<|message|>Hi <there>!" << "" << "Hi <there>!";
        QTest::newRow("two analysis messages")
            << "<|channel|>analysis<|message|>First.<|end|><|start|>assistant<|channel|>analysis<|message|>Second.<|end|><|start|>assistant<|channel|>final<|message|>Done."
            << "First.\n\nSecond." << "Done.";
        QTest::newRow("stopped in the analysis") << "<|channel|>analysis<|message|>Thinking about <|en" << "Thinking about <|en" << "";
        QTest::newRow("final with a constraint") << "<|channel|>final <|constrain|>json<|message|>{\"a\": 1}" << "" << "{\"a\": 1}";
        QTest::newRow("no header at all (a broken reply)") << "Just text." << "" << "Just text.";
        QTest::newRow("tool call ends with call")
            << "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{}"
            << "Need the weather." << "{}";
    }
    void harmony() {
        QFETCH(QString, reply);
        QFETCH(QString, reasoning);
        QFETCH(QString, answer);
        for (std::size_t size : {0, 1, 2, 3, 5, 7, 11}) {
            const auto p = split(reply.toStdString(), size, false, true);
            QCOMPARE(QString::fromStdString(p.reasoning), reasoning);
            QCOMPARE(QString::fromStdString(p.answer), answer);
        }
    }
};

QTEST_GUILESS_MAIN(TestReasoning)
#include "tst_reasoning.moc"
