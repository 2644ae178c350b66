#include "storage/schema.h"

namespace lumen::storage {
namespace {

// Times are milliseconds since the Unix epoch (UTC). Images are content-addressed by the
// lowercase hex SHA-256 of their file bytes. The FTS5 tables index message text and chat titles
// as external-content tables kept in step by triggers.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE chats (
    id          INTEGER PRIMARY KEY,
    title       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX chats_by_update ON chats(updated_at DESC, id DESC);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    chat_id           INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL DEFAULT 'complete'
                              CHECK (status IN ('partial', 'complete', 'stopped', 'error')),
    error             TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    prompt_tokens     INTEGER,
    generated_tokens  INTEGER,
    ttft_ms           REAL,
    tokens_per_second REAL,
    model             TEXT
);
CREATE INDEX messages_by_chat ON messages(chat_id, id);

CREATE TABLE images (
    sha256      TEXT    PRIMARY KEY NOT NULL CHECK (length(sha256) = 64),
    mime_type   TEXT    NOT NULL,
    width       INTEGER NOT NULL CHECK (width >= 0),
    height      INTEGER NOT NULL CHECK (height >= 0),
    byte_size   INTEGER NOT NULL,
    bytes       BLOB    NOT NULL,
    thumbnail   BLOB,
    created_at  INTEGER NOT NULL
);

CREATE TABLE message_images (
    message_id    INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    image_sha256  TEXT    NOT NULL REFERENCES images(sha256),
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX message_images_by_image ON message_images(image_sha256);

CREATE TABLE templates (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL DEFAULT 'chat',
    system_prompt  TEXT    NOT NULL DEFAULT '',
    body           TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE template_examples (
    id            INTEGER PRIMARY KEY,
    template_id   INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    input         TEXT    NOT NULL DEFAULT '',
    output        TEXT    NOT NULL DEFAULT '',
    image_sha256  TEXT    REFERENCES images(sha256)
);
CREATE INDEX template_examples_by_template ON template_examples(template_id, position);
CREATE INDEX template_examples_by_image ON template_examples(image_sha256);

CREATE TABLE label_sets (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    mode        TEXT    NOT NULL DEFAULT 'zero-shot'
                        CHECK (mode IN ('zero-shot', 'few-shot', 'blended')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE label_set_prompts (
    id            INTEGER PRIMARY KEY,
    label_set_id  INTEGER NOT NULL REFERENCES label_sets(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    text          TEXT    NOT NULL
);
CREATE INDEX label_set_prompts_by_set ON label_set_prompts(label_set_id, position);

CREATE TABLE labels (
    id            INTEGER PRIMARY KEY,
    label_set_id  INTEGER NOT NULL REFERENCES label_sets(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    UNIQUE (label_set_id, name)
);

CREATE TABLE label_examples (
    label_id      INTEGER NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    image_sha256  TEXT    NOT NULL REFERENCES images(sha256),
    position      INTEGER NOT NULL,
    PRIMARY KEY (label_id, image_sha256)
) WITHOUT ROWID;
CREATE INDEX label_examples_by_image ON label_examples(image_sha256);

-- key: an image's SHA-256 or a text's exact string; model_id names the encoder and its weights.
CREATE TABLE embeddings (
    kind        TEXT    NOT NULL CHECK (kind IN ('image', 'text')),
    key         TEXT    NOT NULL,
    model_id    TEXT    NOT NULL,
    dim         INTEGER NOT NULL CHECK (dim > 0),
    vector      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, key, model_id)
) WITHOUT ROWID;

CREATE TABLE settings (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
) WITHOUT ROWID;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;

CREATE VIRTUAL TABLE chats_fts USING fts5(
    title, content='chats', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
    INSERT INTO chats_fts(rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
    INSERT INTO chats_fts(chats_fts, rowid, title) VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats BEGIN
    INSERT INTO chats_fts(chats_fts, rowid, title) VALUES ('delete', old.id, old.title);
    INSERT INTO chats_fts(rowid, title) VALUES (new.id, new.title);
END;
)sql";

// A reasoning model's thinking, kept apart from its answer, and how long it took.
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN reasoning_ms REAL;
)sql";

// A chat's own settings go with it: a deleted chat's can no longer pass to a new chat that gets
// its id. The ones version 2 kept as settings "chat.<id>.<key>" move over (those of chats that
// are gone are dropped).
constexpr std::string_view kSchemaV3 = R"sql(
CREATE TABLE chat_settings (
    chat_id  INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (chat_id, key)
) WITHOUT ROWID;
INSERT INTO chat_settings(chat_id, key, value)
    SELECT CAST(substr(key, 6, instr(substr(key, 6), '.') - 1) AS INTEGER), substr(key, 6 + instr(substr(key, 6), '.')), value
    FROM settings
    WHERE key GLOB 'chat.[0-9]*.?*' AND CAST(substr(key, 6, instr(substr(key, 6), '.') - 1) AS INTEGER) IN (SELECT id FROM chats);
DELETE FROM settings WHERE key GLOB 'chat.[0-9]*.?*';
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema: chats, messages, images, templates, label sets, embeddings, settings",
     kSchemaV1},
    {2, "messages: reasoning and reasoning_ms", kSchemaV2},
    {3, "chat_settings: a chat's own settings, deleted with it", kSchemaV3},
};

}  // namespace

std::span<const Migration> schemaMigrations() { return kMigrations; }

int currentSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

}  // namespace lumen::storage
