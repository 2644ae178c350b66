#include "vision/classifier.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "vision/clip_model.h"
#include "vision/vit.h"

namespace lumen::vision {
namespace {

float dot(const Embedding& a, const Embedding& b) {
    if (a.size() != b.size()) throw std::invalid_argument("embeddings of " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + " values cannot be compared");
    double s = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return static_cast<float>(s);
}

Embedding normalized(Embedding v) {
    normalize(v);
    return v;
}

void checkLabels(const std::vector<std::string>& labels) {
    if (labels.empty()) throw std::invalid_argument("no labels to classify into");
    std::set<std::string> seen;
    for (const auto& l : labels) {
        if (l.empty()) throw std::invalid_argument("a label is empty");
        if (!seen.insert(l).second) throw std::invalid_argument("the label \"" + l + "\" is given twice");
    }
}

std::string fill(const std::string& tpl, const std::string& label) {
    const std::size_t at = tpl.find("{}");
    if (at == std::string::npos) return tpl + " " + label;
    return tpl.substr(0, at) + label + tpl.substr(at + 2);
}

}  // namespace

Embedding TextEmbeddingCache::get(const std::string& modelKey, const std::string& text, const std::function<Embedding()>& compute) {
    {
        std::lock_guard lock(mutex_);
        if (const auto it = entries_.find({modelKey, text}); it != entries_.end()) return it->second;
    }
    Embedding e = compute();
    std::lock_guard lock(mutex_);
    entries_.emplace(std::make_pair(modelKey, text), e);
    return e;
}

std::size_t TextEmbeddingCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

const std::vector<std::string>& defaultTemplates() {
    static const std::vector<std::string> templates = {
        "a photo of a {}.", "a bad photo of a {}.", "a photo of the large {}.", "a photo of the small {}.", "a close-up photo of a {}.",
        "a bright photo of a {}.", "a cropped photo of a {}.", "a good photo of a {}.", "a rendering of a {}.", "art of the {}.",
    };
    return templates;
}

Classifier Classifier::zeroShot(ClipModel& model, const std::vector<std::string>& labels, const std::vector<std::string>& templates,
                                TextEmbeddingCache* cache, const std::string& modelKey) {
    checkLabels(labels);
    const std::vector<std::string>& tpls = templates.empty() ? defaultTemplates() : templates;
    Classifier c;
    c.labels_ = labels;
    c.scale_ = model.logitScale();
    for (const auto& label : labels) {
        Embedding sum;
        for (const auto& tpl : tpls) {
            const std::string prompt = fill(tpl, label);
            const auto compute = [&] { return model.embedText(prompt); };
            Embedding e = normalized(cache ? cache->get(modelKey, prompt, compute) : compute());
            if (sum.empty()) sum.assign(e.size(), 0.0f);
            for (std::size_t i = 0; i < e.size(); ++i) sum[i] += e[i];
        }
        c.classes_.push_back(normalized(std::move(sum)));
    }
    return c;
}

Classifier Classifier::fromEmbeddings(const std::vector<std::string>& labels, std::vector<Embedding> classEmbeddings, float scale) {
    checkLabels(labels);
    if (classEmbeddings.size() != labels.size()) throw std::invalid_argument("one embedding per label is needed");
    Classifier c;
    c.labels_ = labels;
    c.scale_ = scale;
    const std::size_t size = classEmbeddings.front().size();
    for (auto& e : classEmbeddings) {
        if (e.size() != size || size == 0) throw std::invalid_argument("label embeddings must be non-empty and of one size");
        c.classes_.push_back(normalized(std::move(e)));
    }
    return c;
}

Classifier Classifier::prototypes(const Examples& examples, float scale) {
    checkLabels(examples.labels);
    if (examples.features.size() != examples.classOf.size()) throw std::invalid_argument("examples and their labels differ in number");
    Classifier c;
    c.labels_ = examples.labels;
    c.scale_ = scale;
    std::vector<Embedding> sums(examples.labels.size());
    for (std::size_t i = 0; i < examples.features.size(); ++i) {
        const int k = examples.classOf[i];
        if (k < 0 || static_cast<std::size_t>(k) >= examples.labels.size()) throw std::invalid_argument("an example's label is out of range");
        const Embedding e = normalized(examples.features[i]);
        auto& s = sums[static_cast<std::size_t>(k)];
        if (s.empty()) s.assign(e.size(), 0.0f);
        if (s.size() != e.size()) throw std::invalid_argument("example features differ in size");
        for (std::size_t j = 0; j < e.size(); ++j) s[j] += e[j];
    }
    for (std::size_t k = 0; k < sums.size(); ++k) {
        if (sums[k].empty()) throw std::invalid_argument("the label \"" + examples.labels[k] + "\" has no example");
        c.classes_.push_back(normalized(std::move(sums[k])));
    }
    return c;
}

Classifier Classifier::tipAdapter(Classifier zeroShot, const Examples& examples, float alpha, float beta) {
    if (examples.labels != zeroShot.labels_) throw std::invalid_argument("the examples' labels must be the zero-shot labels, in the same order");
    if (examples.features.size() != examples.classOf.size()) throw std::invalid_argument("examples and their labels differ in number");
    for (std::size_t i = 0; i < examples.features.size(); ++i) {
        const int k = examples.classOf[i];
        if (k < 0 || static_cast<std::size_t>(k) >= examples.labels.size()) throw std::invalid_argument("an example's label is out of range");
        zeroShot.keys_.push_back(normalized(examples.features[i]));
        zeroShot.keyClass_.push_back(k);
    }
    zeroShot.alpha_ = alpha;
    zeroShot.beta_ = beta;
    return zeroShot;
}

std::vector<float> Classifier::logits(const Embedding& image) const {
    const Embedding f = normalized(image);
    std::vector<float> out(labels_.size());
    for (std::size_t k = 0; k < classes_.size(); ++k) out[k] = scale_ * dot(f, classes_[k]);
    for (std::size_t i = 0; i < keys_.size(); ++i)
        out[static_cast<std::size_t>(keyClass_[i])] += alpha_ * std::exp(-beta_ * (1.0f - dot(f, keys_[i])));
    return out;
}

std::vector<LabelScore> Classifier::classify(const Embedding& image, int k) const {
    const std::vector<float> z = logits(image);
    const float m = *std::max_element(z.begin(), z.end());
    double sum = 0.0;
    for (float v : z) sum += std::exp(static_cast<double>(v - m));
    std::vector<LabelScore> scores;
    for (std::size_t i = 0; i < z.size(); ++i) scores.push_back({labels_[i], static_cast<float>(std::exp(static_cast<double>(z[i] - m)) / sum), z[i]});
    std::stable_sort(scores.begin(), scores.end(), [](const LabelScore& a, const LabelScore& b) { return a.logit > b.logit; });
    if (k > 0 && static_cast<std::size_t>(k) < scores.size()) scores.resize(static_cast<std::size_t>(k));
    return scores;
}

Evaluation evaluate(const std::vector<std::string>& labels, const std::vector<int>& truth, const std::vector<int>& predicted) {
    if (truth.size() != predicted.size()) throw std::invalid_argument("as many predictions as true labels are needed");
    const std::size_t n = labels.size();
    Evaluation e;
    e.labels = labels;
    e.confusion.assign(n, std::vector<int>(n, 0));
    int correct = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
        if (truth[i] < 0 || predicted[i] < 0 || static_cast<std::size_t>(truth[i]) >= n || static_cast<std::size_t>(predicted[i]) >= n)
            throw std::invalid_argument("a class index is out of range");
        ++e.confusion[static_cast<std::size_t>(truth[i])][static_cast<std::size_t>(predicted[i])];
        correct += truth[i] == predicted[i];
    }
    e.total = static_cast<int>(truth.size());
    e.accuracy = e.total ? static_cast<double>(correct) / e.total : 0.0;
    for (std::size_t k = 0; k < n; ++k) {
        int predictedK = 0, actualK = 0;
        for (std::size_t j = 0; j < n; ++j) {
            predictedK += e.confusion[j][k];
            actualK += e.confusion[k][j];
        }
        const double tp = e.confusion[k][k];
        const double p = predictedK ? tp / predictedK : 0.0, r = actualK ? tp / actualK : 0.0;
        e.precision.push_back(p);
        e.recall.push_back(r);
        e.f1.push_back(p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0);
        e.macroF1 += e.f1.back() / static_cast<double>(n);
    }
    return e;
}

}  // namespace lumen::vision
