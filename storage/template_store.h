#pragma once
// Prompt templates (a system prompt and a body with {{variables}}) and their few-shot examples
// (input/output pairs, optionally with an image), kept in the order the user arranges them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/database.h"

namespace lumen::storage {

struct PromptTemplate {
    std::int64_t id = 0;
    std::string name;
    std::string kind = "chat";  // what it is for: "chat", "describe", ...
    std::string systemPrompt;
    std::string body;
    std::int64_t createdAt = 0;
    std::int64_t updatedAt = 0;
};

struct FewShotExample {
    std::int64_t id = 0;
    std::int64_t templateId = 0;
    int position = 0;
    std::string input;
    std::string output;
    std::optional<std::string> imageSha256;
};

class TemplateStore {
public:
    explicit TemplateStore(Database& db) : c_(db.connection()) {}

    // Inserts name, kind, systemPrompt and body; returns the new id. Names are unique.
    std::int64_t create(const PromptTemplate& t);
    // Saves name, kind, systemPrompt and body of the template with t.id.
    void update(const PromptTemplate& t);
    void rename(std::int64_t id, std::string_view name);
    void remove(std::int64_t id);
    // Copies the template and its examples under a new name; returns the copy's id.
    std::int64_t duplicate(std::int64_t id, std::string_view newName);
    std::optional<PromptTemplate> get(std::int64_t id);
    std::vector<PromptTemplate> list();  // by name

    // Appends an example at the end.
    std::int64_t addExample(std::int64_t templateId, std::string_view input, std::string_view output,
                            std::optional<std::string_view> imageSha256 = std::nullopt);
    void updateExample(const FewShotExample& example);
    void removeExample(std::int64_t exampleId);
    // Moves an example to `newPosition` (0-based, clamped) and renumbers the others.
    void moveExample(std::int64_t exampleId, int newPosition);
    std::vector<FewShotExample> examples(std::int64_t templateId);

private:
    void renumber(std::int64_t templateId, const std::vector<std::int64_t>& orderedIds);
    [[noreturn]] void nameTaken(std::string_view name, const Error& e);
    Connection& c_;
};

}  // namespace lumen::storage
