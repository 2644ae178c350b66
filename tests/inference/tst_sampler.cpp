// The sampler: greedy at temperature 0, the exact nucleus for top-p, top-k and min-p cut-offs,
// penalties, and draw frequencies that follow the probabilities for a fixed seed.

#include <QtTest>
#include <cmath>
#include <map>

#include "inference/llm/sampler.h"

using namespace lumen::inference;

namespace {

// Logits whose softmax is exactly `probs`.
std::vector<float> logitsFor(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
    return l;
}

SamplingParams only(float temperature) {
    SamplingParams p;
    p.temperature = temperature;
    p.topK = 0;
    p.topP = 1.0f;
    p.minP = 0.0f;
    return p;
}

}  // namespace

class TestSampler : public QObject {
    Q_OBJECT
private slots:
    void temperatureZeroIsGreedy() {
        Sampler s(only(0.0f));
        std::vector<float> l{0.1f, 2.5f, 2.4f, -1.0f};
        QCOMPARE(s.sample(l, {}), 1);
        std::vector<float> tie{1.0f, 3.0f, 3.0f};
        QCOMPARE(s.sample(tie, {}), 1);  // the first of equal maxima
    }

    void topPKeepsExactlyTheNucleus() {
        SamplingParams p = only(1.0f);
        p.topP = 0.8f;
        Sampler s(p);
        auto l = logitsFor({0.5, 0.25, 0.15, 0.06, 0.04});
        const auto c = s.candidates(l, {});
        // 0.5 + 0.25 = 0.75 < 0.8, adding 0.15 reaches 0.9: three tokens.
        QCOMPARE(c.size(), std::size_t(3));
        QCOMPARE(c[0].first, 0);
        QCOMPARE(c[2].first, 2);
        double total = 0;
        for (const auto& [token, prob] : c) total += prob;
        QVERIFY(std::fabs(total - 1.0) < 1e-6);
        QVERIFY(std::fabs(c[0].second - 0.5 / 0.9) < 1e-6);
    }

    void topKAndMinP() {
        SamplingParams p = only(1.0f);
        p.topK = 2;
        auto l = logitsFor({0.1, 0.4, 0.3, 0.2});
        auto c = Sampler(p).candidates(l, {});
        QCOMPARE(c.size(), std::size_t(2));
        QCOMPARE(c[0].first, 1);
        QCOMPARE(c[1].first, 2);
        p = only(1.0f);
        p.minP = 0.45f;  // keep tokens with at least 0.45 of the best probability (0.18)
        l = logitsFor({0.1, 0.4, 0.3, 0.2});
        c = Sampler(p).candidates(l, {});
        QCOMPARE(c.size(), std::size_t(3));  // 0.4, 0.3, 0.2 (0.1 < 0.18)
    }

    void drawsFollowProbabilities() {
        SamplingParams p = only(1.0f);
        p.seed = 42;
        Sampler s(p);
        const std::vector<double> probs{0.6, 0.3, 0.1};
        std::map<TokenId, int> counts;
        const int n = 20000;
        for (int i = 0; i < n; ++i) {
            auto l = logitsFor(probs);
            ++counts[s.sample(l, {})];
        }
        for (int t = 0; t < 3; ++t) {
            const double observed = counts[t] / static_cast<double>(n);
            // 5 standard deviations of a binomial proportion.
            const double tolerance = 5 * std::sqrt(probs[static_cast<std::size_t>(t)] * (1 - probs[static_cast<std::size_t>(t)]) / n);
            QVERIFY2(std::fabs(observed - probs[static_cast<std::size_t>(t)]) < tolerance,
                     qPrintable(QStringLiteral("token %1: %2 vs %3").arg(t).arg(observed).arg(probs[static_cast<std::size_t>(t)])));
        }
        // The same seed draws the same sequence.
        Sampler a(p), b(p);
        for (int i = 0; i < 100; ++i) {
            auto la = logitsFor(probs), lb = logitsFor(probs);
            QCOMPARE(a.sample(la, {}), b.sample(lb, {}));
        }
    }

    void lowTemperatureSharpens() {
        SamplingParams p = only(0.1f);
        auto l = logitsFor({0.5, 0.3, 0.2});
        const auto c = Sampler(p).candidates(l, {});
        QVERIFY(c[0].second > 0.99f);
    }

    void penalties() {
        SamplingParams p = only(0.0f);
        p.repeatPenalty = 2.0f;
        const std::vector<TokenId> history{0, 0, 3};
        std::vector<float> l{2.0f, 1.5f, 0.0f, -1.0f};
        QCOMPARE(Sampler(p).sample(l, history), 1);  // token 0: 2.0 / 2 = 1.0 < 1.5
        QCOMPARE(l[0], 1.0f);
        QCOMPARE(l[3], -2.0f);  // negative logits are multiplied
        p = only(0.0f);
        p.frequencyPenalty = 0.4f;
        p.presencePenalty = 0.2f;
        std::vector<float> f{2.0f, 1.5f};
        QCOMPARE(Sampler(p).sample(f, history), 1);  // 2.0 - 2*0.4 - 0.2 = 1.0
        QCOMPARE(f[0], 1.0f);
        // The window: only the last penaltyWindow tokens count.
        p = only(0.0f);
        p.repeatPenalty = 100.0f;
        p.penaltyWindow = 1;
        std::vector<float> w{2.0f, 1.5f, 0.0f, 0.0f};
        QCOMPARE(Sampler(p).sample(w, history), 0);  // token 0 is outside the window
    }
};

QTEST_GUILESS_MAIN(TestSampler)
#include "tst_sampler.moc"
