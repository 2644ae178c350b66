#include "storage/label_set_store.h"

#include <map>

#include "storage/clock.h"

namespace lumen::storage {
std::string_view toString(ClassifyMode mode) {
    switch (mode) {
        case ClassifyMode::ZeroShot: return "zero-shot";
        case ClassifyMode::FewShot: return "few-shot";
        case ClassifyMode::Blended: return "blended";
    }
    return "zero-shot";
}

std::optional<ClassifyMode> classifyModeFromString(std::string_view text) {
    if (text == "zero-shot") return ClassifyMode::ZeroShot;
    if (text == "few-shot") return ClassifyMode::FewShot;
    if (text == "blended") return ClassifyMode::Blended;
    return std::nullopt;
}

std::int64_t LabelSetStore::create(std::string_view name, ClassifyMode mode,
                                   const std::vector<std::string>& promptTemplates,
                                   const std::vector<std::string>& labels) {
    Transaction tx(c_);
    const std::int64_t now = nowMs();
    try {
        c_.prepare("INSERT INTO label_sets(name, mode, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .bindAll(name, toString(mode), now, now)
            .run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("a label set named '" + std::string(name) + "' already exists", e.sqliteCode());
        throw;
    }
    const std::int64_t id = c_.lastInsertRowId();
    setPromptTemplates(id, promptTemplates);
    for (const auto& label : labels) addLabel(id, label);
    tx.commit();
    return id;
}

std::optional<LabelSet> LabelSetStore::get(std::int64_t id) {
    Statement s = c_.prepare("SELECT id, name, mode, created_at, updated_at FROM label_sets WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    LabelSet set;
    set.id = s.getInt(0);
    set.name = s.getText(1);
    set.mode = classifyModeFromString(s.getText(2)).value_or(ClassifyMode::ZeroShot);
    set.createdAt = s.getInt(3);
    set.updatedAt = s.getInt(4);

    Statement prompts =
        c_.prepare("SELECT text FROM label_set_prompts WHERE label_set_id = ? ORDER BY position, id");
    prompts.bind(1, id);
    while (prompts.step()) set.promptTemplates.push_back(prompts.getText(0));

    Statement labels = c_.prepare("SELECT id, name FROM labels WHERE label_set_id = ? ORDER BY position, id");
    labels.bind(1, id);
    std::map<std::int64_t, std::size_t> index;
    while (labels.step()) {
        set.labels.push_back({labels.getInt(0), labels.getText(1), {}});
        index[set.labels.back().id] = set.labels.size() - 1;
    }
    Statement examples = c_.prepare(
        "SELECT e.label_id, e.image_sha256 FROM label_examples e JOIN labels l ON l.id = e.label_id "
        "WHERE l.label_set_id = ? ORDER BY e.label_id, e.position");
    examples.bind(1, id);
    while (examples.step()) set.labels[index.at(examples.getInt(0))].exampleImages.push_back(examples.getText(1));
    return set;
}

std::vector<LabelSetSummary> LabelSetStore::list() {
    Statement s = c_.prepare(
        "SELECT s.id, s.name, s.mode, (SELECT count(*) FROM labels l WHERE l.label_set_id = s.id) "
        "FROM label_sets s ORDER BY s.name COLLATE NOCASE, s.id");
    std::vector<LabelSetSummary> result;
    while (s.step())
        result.push_back({s.getInt(0), s.getText(1),
                          classifyModeFromString(s.getText(2)).value_or(ClassifyMode::ZeroShot),
                          static_cast<int>(s.getInt(3))});
    return result;
}

void LabelSetStore::touch(std::int64_t setId) {
    c_.prepare("UPDATE label_sets SET updated_at = ? WHERE id = ?").bindAll(nowMs(), setId).run();
}

void LabelSetStore::rename(std::int64_t id, std::string_view name) {
    try {
        c_.prepare("UPDATE label_sets SET name = ?, updated_at = ? WHERE id = ?")
            .bindAll(name, nowMs(), id)
            .run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("a label set named '" + std::string(name) + "' already exists", e.sqliteCode());
        throw;
    }
}

void LabelSetStore::setMode(std::int64_t id, ClassifyMode mode) {
    c_.prepare("UPDATE label_sets SET mode = ?, updated_at = ? WHERE id = ?")
        .bindAll(toString(mode), nowMs(), id)
        .run();
}

void LabelSetStore::setPromptTemplates(std::int64_t id, const std::vector<std::string>& templates) {
    Transaction tx(c_);
    c_.prepare("DELETE FROM label_set_prompts WHERE label_set_id = ?").bind(1, id).run();
    Statement insert =
        c_.prepare("INSERT INTO label_set_prompts(label_set_id, position, text) VALUES (?, ?, ?)");
    for (std::size_t i = 0; i < templates.size(); ++i) {
        insert.reset();
        insert.bindAll(id, static_cast<std::int64_t>(i), templates[i]).run();
    }
    touch(id);
    tx.commit();
}

void LabelSetStore::remove(std::int64_t id) {
    c_.prepare("DELETE FROM label_sets WHERE id = ?").bind(1, id).run();
}

std::int64_t LabelSetStore::addLabel(std::int64_t setId, std::string_view name) {
    try {
        c_.prepare(
              "INSERT INTO labels(label_set_id, position, name) VALUES "
              "(?1, (SELECT coalesce(max(position) + 1, 0) FROM labels WHERE label_set_id = ?1), ?2)")
            .bindAll(setId, name)
            .run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("the label '" + std::string(name) + "' is already in this set (or the set does not exist)",
                        e.sqliteCode());
        throw;
    }
    const std::int64_t id = c_.lastInsertRowId();
    touch(setId);
    return id;
}

std::int64_t LabelSetStore::setOfLabel(std::int64_t labelId) {
    Statement s = c_.prepare("SELECT label_set_id FROM labels WHERE id = ?");
    s.bind(1, labelId);
    if (!s.step()) throw Error("label " + std::to_string(labelId) + " does not exist");
    return s.getInt(0);
}

void LabelSetStore::renameLabel(std::int64_t labelId, std::string_view name) {
    const std::int64_t setId = setOfLabel(labelId);
    try {
        c_.prepare("UPDATE labels SET name = ? WHERE id = ?").bindAll(name, labelId).run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("the label '" + std::string(name) + "' is already in this set", e.sqliteCode());
        throw;
    }
    touch(setId);
}

void LabelSetStore::removeLabel(std::int64_t labelId) {
    const std::int64_t setId = setOfLabel(labelId);
    c_.prepare("DELETE FROM labels WHERE id = ?").bind(1, labelId).run();
    touch(setId);
}

void LabelSetStore::addExample(std::int64_t labelId, std::string_view imageSha256) {
    const std::int64_t setId = setOfLabel(labelId);
    try {
        c_.prepare(
              "INSERT INTO label_examples(label_id, image_sha256, position) VALUES "
              "(?1, ?2, (SELECT coalesce(max(position) + 1, 0) FROM label_examples WHERE label_id = ?1)) "
              "ON CONFLICT(label_id, image_sha256) DO NOTHING")
            .bindAll(labelId, imageSha256)
            .run();
    } catch (const Error& e) {
        if (e.isConstraint())
            throw Error("image " + std::string(imageSha256) + " is not in the image store", e.sqliteCode());
        throw;
    }
    touch(setId);
}

void LabelSetStore::removeExample(std::int64_t labelId, std::string_view imageSha256) {
    const std::int64_t setId = setOfLabel(labelId);
    c_.prepare("DELETE FROM label_examples WHERE label_id = ? AND image_sha256 = ?")
        .bindAll(labelId, imageSha256)
        .run();
    touch(setId);
}

}  // namespace lumen::storage
