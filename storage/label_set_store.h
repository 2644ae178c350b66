#pragma once
// Label sets for image classification: labels, the prompt templates that turn a label into text
// for CLIP ("a photo of a {}."), labelled example images per label, and the mode that says how
// Classify combines them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/database.h"

namespace lumen::storage {

enum class ClassifyMode { ZeroShot, FewShot, Blended };
std::string_view toString(ClassifyMode mode);
std::optional<ClassifyMode> classifyModeFromString(std::string_view text);

struct Label {
    std::int64_t id = 0;
    std::string name;
    std::vector<std::string> exampleImages;  // SHA-256s, in the order added
};

struct LabelSet {
    std::int64_t id = 0;
    std::string name;
    ClassifyMode mode = ClassifyMode::ZeroShot;
    std::vector<std::string> promptTemplates;
    std::vector<Label> labels;
    std::int64_t createdAt = 0;
    std::int64_t updatedAt = 0;
};

struct LabelSetSummary {
    std::int64_t id = 0;
    std::string name;
    ClassifyMode mode = ClassifyMode::ZeroShot;
    int labelCount = 0;
};

class LabelSetStore {
public:
    explicit LabelSetStore(Database& db) : c_(db.connection()) {}

    std::int64_t create(std::string_view name, ClassifyMode mode,
                        const std::vector<std::string>& promptTemplates,
                        const std::vector<std::string>& labels);
    std::optional<LabelSet> get(std::int64_t id);
    std::vector<LabelSetSummary> list();  // by name
    void rename(std::int64_t id, std::string_view name);
    void setMode(std::int64_t id, ClassifyMode mode);
    void setPromptTemplates(std::int64_t id, const std::vector<std::string>& templates);
    void remove(std::int64_t id);

    std::int64_t addLabel(std::int64_t setId, std::string_view name);
    void renameLabel(std::int64_t labelId, std::string_view name);
    void removeLabel(std::int64_t labelId);
    // Adding an image a label already has does nothing.
    void addExample(std::int64_t labelId, std::string_view imageSha256);
    void removeExample(std::int64_t labelId, std::string_view imageSha256);

private:
    void touch(std::int64_t setId);
    std::int64_t setOfLabel(std::int64_t labelId);
    Connection& c_;
};

}  // namespace lumen::storage
