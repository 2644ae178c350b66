#include "storage/template_store.h"

#include <algorithm>

#include "storage/clock.h"

namespace lumen::storage {
namespace {

PromptTemplate readTemplate(const Statement& s) {
    PromptTemplate t;
    t.id = s.getInt(0);
    t.name = s.getText(1);
    t.kind = s.getText(2);
    t.systemPrompt = s.getText(3);
    t.body = s.getText(4);
    t.createdAt = s.getInt(5);
    t.updatedAt = s.getInt(6);
    return t;
}

}  // namespace

void TemplateStore::nameTaken(std::string_view name, const Error& e) {
    if (e.isConstraint())
        throw Error("a template named '" + std::string(name) + "' already exists", e.sqliteCode());
    throw e;
}

std::int64_t TemplateStore::create(const PromptTemplate& t) {
    const std::int64_t now = nowMs();
    try {
        c_.prepare(
              "INSERT INTO templates(name, kind, system_prompt, body, created_at, updated_at) "
              "VALUES (?, ?, ?, ?, ?, ?)")
            .bindAll(t.name, t.kind, t.systemPrompt, t.body, now, now)
            .run();
    } catch (const Error& e) {
        nameTaken(t.name, e);
    }
    return c_.lastInsertRowId();
}

void TemplateStore::update(const PromptTemplate& t) {
    try {
        c_.prepare(
              "UPDATE templates SET name = ?, kind = ?, system_prompt = ?, body = ?, updated_at = ? "
              "WHERE id = ?")
            .bindAll(t.name, t.kind, t.systemPrompt, t.body, nowMs(), t.id)
            .run();
    } catch (const Error& e) {
        nameTaken(t.name, e);
    }
    if (c_.changes() == 0) throw Error("template " + std::to_string(t.id) + " does not exist");
}

void TemplateStore::rename(std::int64_t id, std::string_view name) {
    try {
        c_.prepare("UPDATE templates SET name = ?, updated_at = ? WHERE id = ?")
            .bindAll(name, nowMs(), id)
            .run();
    } catch (const Error& e) {
        nameTaken(name, e);
    }
    if (c_.changes() == 0) throw Error("template " + std::to_string(id) + " does not exist");
}

void TemplateStore::remove(std::int64_t id) {
    c_.prepare("DELETE FROM templates WHERE id = ?").bind(1, id).run();
}

std::int64_t TemplateStore::duplicate(std::int64_t id, std::string_view newName) {
    auto original = get(id);
    if (!original) throw Error("template " + std::to_string(id) + " does not exist");
    Transaction tx(c_);
    original->name = std::string(newName);
    const std::int64_t copy = create(*original);
    c_.prepare(
          "INSERT INTO template_examples(template_id, position, input, output, image_sha256) "
          "SELECT ?, position, input, output, image_sha256 FROM template_examples "
          "WHERE template_id = ? ORDER BY position, id")
        .bindAll(copy, id)
        .run();
    tx.commit();
    return copy;
}

std::optional<PromptTemplate> TemplateStore::get(std::int64_t id) {
    Statement s = c_.prepare(
        "SELECT id, name, kind, system_prompt, body, created_at, updated_at FROM templates WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return readTemplate(s);
}

std::vector<PromptTemplate> TemplateStore::list() {
    Statement s = c_.prepare(
        "SELECT id, name, kind, system_prompt, body, created_at, updated_at FROM templates "
        "ORDER BY name COLLATE NOCASE, id");
    std::vector<PromptTemplate> result;
    while (s.step()) result.push_back(readTemplate(s));
    return result;
}

std::int64_t TemplateStore::addExample(std::int64_t templateId, std::string_view input,
                                       std::string_view output,
                                       std::optional<std::string_view> imageSha256) {
    Statement s = c_.prepare(
        "INSERT INTO template_examples(template_id, position, input, output, image_sha256) VALUES "
        "(?1, (SELECT coalesce(max(position) + 1, 0) FROM template_examples WHERE template_id = ?1), "
        "?2, ?3, ?4)");
    s.bindAll(templateId, input, output);
    if (imageSha256)
        s.bind(4, *imageSha256);
    else
        s.bindNull(4);
    try {
        s.run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("template " + std::to_string(templateId) + " or the example's image does not exist",
                        e.sqliteCode());
        throw;
    }
    return c_.lastInsertRowId();
}

void TemplateStore::updateExample(const FewShotExample& ex) {
    c_.prepare("UPDATE template_examples SET input = ?, output = ?, image_sha256 = ? WHERE id = ?")
        .bindAll(ex.input, ex.output, ex.imageSha256, ex.id)
        .run();
    if (c_.changes() == 0) throw Error("example " + std::to_string(ex.id) + " does not exist");
}

void TemplateStore::removeExample(std::int64_t exampleId) {
    Statement owner = c_.prepare("SELECT template_id FROM template_examples WHERE id = ?");
    owner.bind(1, exampleId);
    if (!owner.step()) return;
    const std::int64_t templateId = owner.getInt(0);
    Transaction tx(c_);
    c_.prepare("DELETE FROM template_examples WHERE id = ?").bind(1, exampleId).run();
    std::vector<std::int64_t> ids;
    for (const auto& ex : examples(templateId)) ids.push_back(ex.id);
    renumber(templateId, ids);
    tx.commit();
}

void TemplateStore::moveExample(std::int64_t exampleId, int newPosition) {
    Statement owner = c_.prepare("SELECT template_id FROM template_examples WHERE id = ?");
    owner.bind(1, exampleId);
    if (!owner.step()) throw Error("example " + std::to_string(exampleId) + " does not exist");
    const std::int64_t templateId = owner.getInt(0);
    std::vector<std::int64_t> ids;
    for (const auto& ex : examples(templateId))
        if (ex.id != exampleId) ids.push_back(ex.id);
    const auto at = static_cast<std::size_t>(std::clamp(newPosition, 0, static_cast<int>(ids.size())));
    ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(at), exampleId);
    Transaction tx(c_);
    renumber(templateId, ids);
    tx.commit();
}

void TemplateStore::renumber(std::int64_t templateId, const std::vector<std::int64_t>& orderedIds) {
    Statement s = c_.prepare("UPDATE template_examples SET position = ? WHERE id = ? AND template_id = ?");
    for (std::size_t i = 0; i < orderedIds.size(); ++i) {
        s.reset();
        s.bindAll(static_cast<std::int64_t>(i), orderedIds[i], templateId).run();
    }
}

std::vector<FewShotExample> TemplateStore::examples(std::int64_t templateId) {
    Statement s = c_.prepare(
        "SELECT id, template_id, position, input, output, image_sha256 FROM template_examples "
        "WHERE template_id = ? ORDER BY position, id");
    s.bind(1, templateId);
    std::vector<FewShotExample> result;
    while (s.step())
        result.push_back({s.getInt(0), s.getInt(1), static_cast<int>(s.getInt(2)), s.getText(3),
                          s.getText(4), s.getOptionalText(5)});
    return result;
}

}  // namespace lumen::storage
