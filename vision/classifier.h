#pragma once
// Image classification from embeddings:
//
// Zero-shot (CLIP): each label's text embedding is the mean of its prompts' normalized
//   embeddings ("a photo of a {}." ...), normalized again (CLIP's prompt ensembling); an image's
//   logits are logitScale * cos(image, label).
// Prototypes (few-shot, CLIP or DINOv2 features): each label's prototype is the normalized mean
//   of its examples' normalized features; logits = scale * cos(image, prototype).
// Tip-Adapter (Zhang et al. 2022, training-free, CLIP): the zero-shot logits plus a cache model of
//   the examples, alpha * exp(-beta * (1 - f K^T)) V, with K the normalized example features and V
//   their one-hot labels. alpha weighs the examples against the prompts, beta sharpens the
//   affinities; the paper's defaults (alpha 1, beta 5.5) are ours.
// Probabilities are the softmax of the logits.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace lumen::vision {

class ClipModel;

using Embedding = std::vector<float>;

struct LabelScore {
    std::string label;
    float probability = 0.0f;
    float logit = 0.0f;
};

// Text embeddings by (model, text), shared by the classifiers of a session.
class TextEmbeddingCache {
public:
    Embedding get(const std::string& modelKey, const std::string& text, const std::function<Embedding()>& compute);
    std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, Embedding> entries_;
};

// Labelled example features for the few-shot classifiers.
struct Examples {
    std::vector<std::string> labels;   // the classes, in order
    std::vector<Embedding> features;   // one per example
    std::vector<int> classOf;          // index into labels, one per example
};

class Classifier {
public:
    // Zero-shot over labels x templates ("{}" is replaced by the label; a template without it is
    // followed by the label). Throws std::invalid_argument on no labels or duplicate labels.
    static Classifier zeroShot(ClipModel& model, const std::vector<std::string>& labels, const std::vector<std::string>& templates,
                               TextEmbeddingCache* cache = nullptr, const std::string& modelKey = {});
    // Zero-shot from label embeddings already computed (one per label, e.g. from a cache).
    static Classifier fromEmbeddings(const std::vector<std::string>& labels, std::vector<Embedding> classEmbeddings, float scale);
    // Class prototypes from examples; every label needs at least one.
    static Classifier prototypes(const Examples& examples, float scale);
    // The zero-shot classifier plus the examples' cache model (labels must be the same, in order).
    static Classifier tipAdapter(Classifier zeroShot, const Examples& examples, float alpha = 1.0f, float beta = 5.5f);

    const std::vector<std::string>& labels() const { return labels_; }
    std::vector<float> logits(const Embedding& image) const;
    // All labels, most probable first; at most k of them (k <= 0: all).
    std::vector<LabelScore> classify(const Embedding& image, int k = 0) const;

private:
    std::vector<std::string> labels_;
    std::vector<Embedding> classes_;  // normalized, one per label
    float scale_ = 1.0f;
    // Tip-Adapter's cache
    std::vector<Embedding> keys_;
    std::vector<int> keyClass_;
    float alpha_ = 0.0f, beta_ = 0.0f;
};

// CLIP's published prompt ensemble, abridged: templates that work without tuning.
const std::vector<std::string>& defaultTemplates();

// Accuracy, per-class precision / recall / F1 and the confusion matrix (rows: true class,
// columns: predicted).
struct Evaluation {
    std::vector<std::string> labels;
    std::vector<std::vector<int>> confusion;
    double accuracy = 0.0;
    std::vector<double> precision, recall, f1;
    double macroF1 = 0.0;
    int total = 0;
};
Evaluation evaluate(const std::vector<std::string>& labels, const std::vector<int>& truth, const std::vector<int>& predicted);

}  // namespace lumen::vision
