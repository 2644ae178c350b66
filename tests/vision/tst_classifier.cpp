// Zero-shot, prototype and Tip-Adapter classification, and the evaluation metrics: against the
// PyTorch reference's zero-shot logits (tiny CLIP; tolerance 2e-3 on logits scaled by 100), on a
// synthetic set of generated images in three colour families, and on hand-computed cases.

#include <QtTest>
#include <nlohmann/json.hpp>
#include <random>

#include "test_util.h"
#include "vision/classifier.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"

using namespace lumen::vision;
using Json = nlohmann::json;

namespace {

const QString kModels = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/models/");

// Images in three colour families (reddish, greenish, bluish) with random brightness, noise and
// a random darker square, so members of a family differ.
std::vector<std::pair<RgbImage, int>> colourSet(int perClass, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> noise(-25, 25), offset(0, 40), side(8, 30), where(0, 30);
    std::vector<std::pair<RgbImage, int>> set;
    for (int i = 0; i < perClass; ++i)
        for (int cls = 0; cls < 3; ++cls) {
            RgbImage img{48, 40, std::vector<std::uint8_t>(48 * 40 * 3)};
            const int base = 170 + offset(rng), s = side(rng), x0 = where(rng), y0 = where(rng);
            for (int y = 0; y < 40; ++y)
                for (int x = 0; x < 48; ++x)
                    for (int c = 0; c < 3; ++c) {
                        int v = (c == cls ? base : 40 + offset(rng) / 2) + noise(rng);
                        if (x >= x0 && x < x0 + s && y >= y0 && y < y0 + s) v = v * 2 / 3;
                        img.pixels[static_cast<std::size_t>((y * 48 + x) * 3 + c)] = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
                    }
            set.emplace_back(std::move(img), cls);
        }
    return set;
}

}  // namespace

class TestClassifier : public QObject {
    Q_OBJECT
private slots:
    void zeroShotMatchesReference() {
        auto backend = lumen::inference::makeCpuBackend({.threads = 2});
        auto model = ClipModel::load((kModels + "clip-tiny").toStdString(), *backend);
        const Json want = Json::parse(lumen::test::readFile(kModels + "expected.json").toStdString())["clip-tiny"];
        TextEmbeddingCache cache;
        const auto labels = want["labels"].get<std::vector<std::string>>();
        const auto templates = want["templates"].get<std::vector<std::string>>();
        const Classifier c = Classifier::zeroShot(*model, labels, templates, &cache, "clip-tiny");
        QCOMPARE(cache.size(), labels.size() * templates.size());
        int checked = 0;
        for (const auto& [file, e] : want["images"].items()) {
            const Json ref = e["logits"];
            const auto logits = c.logits(e["embedding"].get<std::vector<float>>());
            for (std::size_t k = 0; k < labels.size(); ++k) QVERIFY2(std::abs(logits[k] - ref[k].get<float>()) < 2e-3f, file.c_str());
            const auto top = c.classify(e["embedding"].get<std::vector<float>>(), 2);
            QCOMPARE(top.size(), std::size_t(2));
            const auto probs = e["probs"].get<std::vector<float>>();
            const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
            QCOMPARE(top[0].label, labels[static_cast<std::size_t>(best)]);
            QVERIFY(std::abs(top[0].probability - probs[static_cast<std::size_t>(best)]) < 1e-3f);
            ++checked;
        }
        QCOMPARE(checked, 3);
        // Cached: a second classifier computes nothing new.
        Classifier::zeroShot(*model, labels, templates, &cache, "clip-tiny");
        QCOMPARE(cache.size(), labels.size() * templates.size());
    }

    void zeroShotRanksALabelsOwnPromptFirst() {
        auto backend = lumen::inference::makeCpuBackend({.threads = 2});
        auto model = ClipModel::load((kModels + "clip-tiny").toStdString(), *backend);
        const std::vector<std::string> labels = {"red", "green", "blue", "striped cat", "photo"};
        const Classifier c = Classifier::zeroShot(*model, labels, {"a photo of a {}."});
        for (const auto& label : labels) {
            const auto scores = c.classify(model->embedText("a photo of a " + label + "."));
            QCOMPARE(scores[0].label, label);
            QVERIFY(std::abs(scores[0].logit - model->logitScale()) < 1e-3f);  // cosine 1
        }
    }

    void fewShotSeparatesColourFamilies_data() {
        QTest::addColumn<QString>("model");
        QTest::newRow("CLIP features") << "clip-tiny";
        QTest::newRow("DINOv2 features") << "dinov2-tiny";
    }
    void fewShotSeparatesColourFamilies() {
        QFETCH(QString, model);
        auto backend = lumen::inference::makeCpuBackend({.threads = 2});
        auto encoder = openImageEncoder((kModels + model).toStdString(), *backend);
        Examples examples;
        examples.labels = {"red", "green", "blue"};
        for (auto& [img, cls] : colourSet(4, 1)) {
            examples.features.push_back(encoder->embedImage(img));
            examples.classOf.push_back(cls);
        }
        const Classifier c = Classifier::prototypes(examples, 20.0f);
        std::vector<int> truth, predicted;
        for (auto& [img, cls] : colourSet(10, 2)) {
            const auto top = c.classify(encoder->embedImage(img), 1);
            truth.push_back(cls);
            predicted.push_back(static_cast<int>(std::find(examples.labels.begin(), examples.labels.end(), top[0].label) - examples.labels.begin()));
        }
        const Evaluation e = evaluate(examples.labels, truth, predicted);
        QCOMPARE(e.total, 30);
        qInfo("%s prototypes, 4 examples per colour: accuracy %.3f, macro F1 %.3f", qPrintable(model), e.accuracy, e.macroF1);
        QVERIFY2(e.accuracy >= 0.9, qPrintable(QString("accuracy %1").arg(e.accuracy)));
    }

    void tipAdapterAddsTheCacheModel() {
        auto backend = lumen::inference::makeCpuBackend({.threads = 2});
        auto model = ClipModel::load((kModels + "clip-tiny").toStdString(), *backend);
        const std::vector<std::string> labels = {"red", "green", "blue"};
        const Classifier zs = Classifier::zeroShot(*model, labels, {"a photo of a {}."});
        Examples examples;
        examples.labels = labels;
        for (auto& [img, cls] : colourSet(3, 3)) {
            examples.features.push_back(model->embedImage(img));
            examples.classOf.push_back(cls);
        }
        const float alpha = 2.0f, beta = 5.5f;
        const Classifier tip = Classifier::tipAdapter(zs, examples, alpha, beta);
        const auto query = model->embedImage(colourSet(1, 4)[0].first);
        // By hand: zero-shot logits + alpha * sum over examples of exp(-beta (1 - cos)).
        auto want = zs.logits(query);
        auto q = query;
        normalize(q);
        for (std::size_t i = 0; i < examples.features.size(); ++i) {
            auto k = examples.features[i];
            normalize(k);
            double cos = 0.0;
            for (std::size_t j = 0; j < k.size(); ++j) cos += static_cast<double>(k[j]) * q[j];
            want[static_cast<std::size_t>(examples.classOf[i])] += alpha * static_cast<float>(std::exp(-beta * (1.0 - cos)));
        }
        const auto got = tip.logits(query);
        for (std::size_t k = 0; k < labels.size(); ++k) QVERIFY(std::abs(got[k] - want[k]) < 1e-4f);
        const Classifier none = Classifier::tipAdapter(zs, examples, 0.0f, beta);
        QCOMPARE(none.logits(query), zs.logits(query));
    }

    void metricsByHand() {
        // truth:     a a a b b c
        // predicted: a a b b c c
        const Evaluation e = evaluate({"a", "b", "c"}, {0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2});
        QCOMPARE(e.confusion, (std::vector<std::vector<int>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}));
        QCOMPARE(e.accuracy, 4.0 / 6.0);
        QCOMPARE(e.precision, (std::vector<double>{1.0, 0.5, 0.5}));
        QCOMPARE(e.recall, (std::vector<double>{2.0 / 3.0, 0.5, 1.0}));
        QVERIFY(std::abs(e.f1[0] - 0.8) < 1e-12);
        QVERIFY(std::abs(e.macroF1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0) < 1e-12);
    }

    void badInput() {
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Classifier::prototypes(Examples{{"a", "a"}, {{1.0f}, {1.0f}}, {0, 1}}, 10.0f));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Classifier::prototypes(Examples{{"a", "b"}, {{1.0f}}, {0}}, 10.0f));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Classifier::prototypes(Examples{{}, {}, {}}, 10.0f));
        const Classifier c = Classifier::prototypes(Examples{{"a", "b"}, {{1.0f, 0.0f}, {0.0f, 1.0f}}, {0, 1}}, 10.0f);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, c.logits({1.0f, 2.0f, 3.0f}));
        QCOMPARE(c.classify({0.2f, 0.9f})[0].label, std::string("b"));
    }
};

QTEST_GUILESS_MAIN(TestClassifier)
#include "tst_classifier.moc"
