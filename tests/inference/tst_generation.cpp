// Text generation on the real TinyStories model and on small models written by our writer:
// greedy output byte for byte, prompt-cache reuse, sampler behaviour, stop strings, limits.

#include <QtTest>
#include <random>
#include <thread>

#include "inference/formats/gguf.h"
#include "inference/formats/quants.h"
#include "inference/llm/generator.h"
#include "stories_expected.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

GenerationParams greedy(int n) {
    GenerationParams p;
    p.maxTokens = n;
    p.sampling.temperature = 0.0f;
    return p;
}

}  // namespace

class TestGeneration : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: the generation tests need stories260K.gguf");
        file_ = std::make_shared<GgufFile>(GgufFile::open((shared + "/tinystories/stories260K.gguf").toStdString()));
        model_ = LanguageModel::load(file_);
        tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::fromGguf(*file_));
        backend_ = makeCpuBackend();
    }

    void configFromMetadata() {
        const ModelConfig& c = model_->config();
        QCOMPARE(c.dim, 64);
        QCOMPARE(c.nLayers, 5);
        QCOMPARE(c.nHeads, 8);
        QCOMPARE(c.nKvHeads, 4);
        QCOMPARE(c.headDim, 8);
        QCOMPARE(c.ffnDim, 172);
        QCOMPARE(c.vocabSize, 512);
    }

    void storyFromBos() {
        LanguageSession session(model_, *backend_, 512);
        Generator generator(session, *tokenizer_);
        std::string streamed;
        const std::vector<TokenId> prompt{*tokenizer_->vocabulary().bos};
        const auto r = generator.generate(prompt, greedy(200), [&](std::string_view piece) {
            streamed += piece;
            return true;
        });
        QCOMPARE(r.tokens.size(), std::size_t(200));
        QVERIFY(r.stopReason == StopReason::MaxTokens);
        QCOMPARE(QString::fromStdString(r.text), QString::fromUtf8(lumen::test::kStory));
        QCOMPARE(streamed, r.text);
        QVERIFY(r.ttftMs > 0 && r.decodeTokensPerSecond > 0);
    }

    void zooPrompt() {
        LanguageSession session(model_, *backend_, 512);
        Generator generator(session, *tokenizer_);
        const auto prompt = tokenizer_->encode("Zoo");
        QCOMPARE(prompt.size(), std::size_t(4));
        const auto r = generator.generate(prompt, greedy(60 - static_cast<int>(prompt.size()) + 1));
        std::vector<TokenId> all(prompt.begin(), prompt.end());
        all.insert(all.end(), r.tokens.begin(), r.tokens.end());
        QCOMPARE(QString::fromStdString(tokenizer_->decode(all)), QString::fromUtf8(lumen::test::kZoo));
        // The streamed reply continues the prompt: its first piece keeps its space.
        QCOMPARE(QString::fromStdString("Zoo" + r.text), QString::fromUtf8(lumen::test::kZoo));
    }

    // A follow-up call reuses the cached prefix and gives the same logits as a fresh session.
    void promptCacheEqualsRecompute() {
        LanguageSession cachedSession(model_, *backend_, 256);
        Generator cached(cachedSession, *tokenizer_);
        const auto first = tokenizer_->encode("Once upon a time there was a dog");
        cached.generate(first, greedy(5));
        const auto second = tokenizer_->encode("Once upon a time there was a cat who");
        std::vector<std::vector<float>> cachedLogits, freshLogits;
        const auto r = cached.generate(second, greedy(3), {}, nullptr, [&](std::span<const float> l) { cachedLogits.emplace_back(l.begin(), l.end()); });
        QVERIFY(r.reusedPromptTokens > 3);

        LanguageSession freshSession(model_, *backend_, 256);
        Generator fresh(freshSession, *tokenizer_);
        const auto r2 = fresh.generate(second, greedy(3), {}, nullptr, [&](std::span<const float> l) { freshLogits.emplace_back(l.begin(), l.end()); });
        QCOMPARE(r2.reusedPromptTokens, 0);
        QCOMPARE(r.tokens, r2.tokens);
        // The fresh run saw every prompt position; compare the positions both computed.
        const std::size_t skip = freshLogits.size() - cachedLogits.size();
        for (std::size_t i = 0; i < cachedLogits.size(); ++i) QCOMPARE(cachedLogits[i], freshLogits[i + skip]);
    }

    void stopStringsAndLimits() {
        LanguageSession session(model_, *backend_, 512);
        Generator generator(session, *tokenizer_);
        GenerationParams p = greedy(200);
        p.stopStrings = {"red ball"};
        std::string streamed;
        const auto r = generator.generate(std::vector<TokenId>{1}, p, [&](std::string_view s) {
            streamed += s;
            return true;
        });
        QVERIFY(r.stopReason == StopReason::StopString);
        QCOMPARE(QString::fromStdString(r.text),
                 QStringLiteral("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, "));
        QCOMPARE(streamed, r.text);  // nothing of the stop string was streamed

        // The callback can stop the reply.
        int pieces = 0;
        const auto stopped = generator.generate(std::vector<TokenId>{1}, greedy(100), [&](std::string_view) { return ++pieces < 3; });
        QVERIFY(stopped.stopReason == StopReason::Cancelled);
        QVERIFY(stopped.tokens.size() < 10);

        // A context that fills up ends the reply; a prompt that does not fit is refused.
        LanguageSession small(model_, *backend_, 16);
        Generator tiny(small, *tokenizer_);
        const auto full = tiny.generate(std::vector<TokenId>{1}, greedy(100));
        QVERIFY(full.stopReason == StopReason::ContextFull);
        QCOMPARE(full.tokens.size(), std::size_t(16));
        const std::vector<TokenId> longPrompt(16, 1);
        QVERIFY_THROWS_EXCEPTION(std::length_error, tiny.generate(longPrompt, greedy(1)));
    }

    // Another thread sets the cancel flag; the loop stops within one token of seeing it.
    void cancellationFromAnotherThread() {
        LanguageSession session(model_, *backend_, 512);
        Generator generator(session, *tokenizer_);
        std::atomic<bool> cancel{false};
        std::atomic<int> pieces{0};
        std::thread canceller([&] {
            while (pieces.load() < 5) std::this_thread::yield();
            cancel.store(true);
        });
        int tokensAfterCancel = 0;
        const auto r = generator.generate(std::vector<TokenId>{1}, greedy(500), [&](std::string_view) {
            if (cancel.load()) ++tokensAfterCancel;
            pieces.fetch_add(1);
            return true;
        }, &cancel);
        canceller.join();
        QVERIFY(r.stopReason == StopReason::Cancelled);
        QVERIFY2(tokensAfterCancel <= 1, qPrintable(QString::number(tokensAfterCancel)));
        QVERIFY(r.tokens.size() < 500);
    }

    void seededSamplingIsDeterministic() {
        GenerationParams p;
        p.maxTokens = 40;
        p.sampling.temperature = 1.0f;
        p.sampling.seed = 1234;
        std::vector<std::vector<TokenId>> runs;
        for (int i = 0; i < 2; ++i) {
            LanguageSession session(model_, *backend_, 128);
            Generator generator(session, *tokenizer_);
            runs.push_back(generator.generate(std::vector<TokenId>{1}, p).tokens);
        }
        QCOMPARE(runs[0], runs[1]);
        p.sampling.seed = 99;
        LanguageSession session(model_, *backend_, 128);
        Generator generator(session, *tokenizer_);
        QVERIFY(generator.generate(std::vector<TokenId>{1}, p).tokens != runs[0]);
    }

private:
    std::shared_ptr<GgufFile> file_;
    std::shared_ptr<LanguageModel> model_;
    std::unique_ptr<Tokenizer> tokenizer_;
    std::unique_ptr<Backend> backend_;
};

QTEST_GUILESS_MAIN(TestGeneration)
#include "tst_generation.moc"
