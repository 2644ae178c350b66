// Opening, refusing and migrating database files.

#include <QtTest>
#include <array>

#include "storage/chat_store.h"
#include "storage/database.h"
#include "storage/embedding_cache.h"
#include "storage/label_set_store.h"
#include "storage/settings_store.h"
#include "storage/template_store.h"
#include "test_util.h"

using namespace lumen::storage;
using lumen::test::fileHash;
using lumen::test::readFile;
using lumen::test::str;
using lumen::test::writeFile;

class TestDatabase : public QObject {
    Q_OBJECT
private slots:
    void init() { QVERIFY(dir_.isValid()); }

    void createsFreshDatabase() {
        const QString path = dir_.filePath("fresh.db");
        Database db = Database::open(str(path));
        QCOMPARE(db.schemaVersion(), currentSchemaVersion());
        QCOMPARE(db.connection().pragmaInt("application_id"), static_cast<std::int64_t>(kApplicationId));
        QCOMPARE(db.connection().pragmaInt("user_version"), static_cast<std::int64_t>(currentSchemaVersion()));
        QCOMPARE(db.connection().pragmaInt("foreign_keys"), 1);
        Statement mode = db.connection().prepare("PRAGMA journal_mode");
        QVERIFY(mode.step());
        QCOMPARE(QString::fromStdString(mode.getText(0)), QStringLiteral("wal"));
        QVERIFY(!db.backupPath());
        QCOMPARE(QString::fromStdString(db.integrityCheck()), QStringLiteral("ok"));
    }

    void reopensWithoutMigrating() {
        const QString path = dir_.filePath("again.db");
        {
            Database db = Database::open(str(path));
            ChatStore(db).createChat("kept");
        }
        Database db = Database::open(str(path));
        QVERIFY(!db.backupPath());
        QCOMPARE(ChatStore(db).chats().size(), std::size_t(1));
    }

    void refusesNonDatabaseFileUnchanged() {
        const QString path = dir_.filePath("notes.txt");
        QByteArray text;
        for (int i = 0; i < 200; ++i) text += "These are my notes, not a database.\n";
        QVERIFY(writeFile(path, text));
        const QByteArray before = fileHash(path);
        try {
            Database::open(str(path));
            QFAIL("opened a text file as a database");
        } catch (const Error& e) {
            const QString message = QString::fromUtf8(e.what());
            QVERIFY2(message.contains("not a database"), qPrintable(message));
            QVERIFY2(message.contains(path), qPrintable(message));
        }
        QCOMPARE(fileHash(path), before);
        QVERIFY(!QFile::exists(path + "-wal"));
    }

    void refusesOtherProgramsDatabaseUnchanged() {
        const QString path = dir_.filePath("other.db");
        {
            Connection c = Connection::open(str(path));
            c.exec("PRAGMA application_id = 1234; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
        }
        const QByteArray before = fileHash(path);
        try {
            Database::open(str(path));
            QFAIL("opened another program's database");
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("not a Lumen database"), e.what());
        }
        QCOMPARE(fileHash(path), before);
    }

    void refusesFutureVersionUnchanged() {
        const QString path = dir_.filePath("future.db");
        {
            Database db = Database::open(str(path));
            ChatStore(db).createChat("from the future");
            db.connection().exec("PRAGMA user_version = 99; PRAGMA journal_mode = DELETE;");
        }
        const QByteArray before = fileHash(path);
        try {
            Database::open(str(path));
            QFAIL("opened a database from a newer version");
        } catch (const Error& e) {
            const QString message = QString::fromUtf8(e.what());
            QVERIFY2(message.contains("newer version of Lumen"), qPrintable(message));
            QVERIFY2(message.contains("v99"), qPrintable(message));
            QVERIFY2(message.contains("left unchanged"), qPrintable(message));
        }
        QCOMPARE(fileHash(path), before);
        QVERIFY(!QFile::exists(path + "-wal"));
    }

    void refusesCorruptDatabaseUnchanged() {
        const QString path = dir_.filePath("corrupt.db");
        {
            Database db = Database::open(str(path));
            ChatStore chats(db);
            chats.createChat("about to be damaged");
            db.connection().exec("PRAGMA journal_mode = DELETE");
        }
        QByteArray bytes = readFile(path);
        QVERIFY(bytes.size() > 4096);
        // Scribble over page 1's b-tree header and schema cells (after the 100-byte file header).
        for (int i = 100; i < 4096; ++i) bytes[i] = static_cast<char>((i * 37) & 0xFF);
        QVERIFY(writeFile(path, bytes));
        const QByteArray before = fileHash(path);
        try {
            Database::open(str(path));
            QFAIL("opened a damaged database");
        } catch (const Error& e) {
            const QString message = QString::fromUtf8(e.what());
            QVERIFY2(message.contains("damaged") || message.contains("malformed"), qPrintable(message));
            QVERIFY2(message.contains("left unchanged"), qPrintable(message));
        }
        QCOMPARE(fileHash(path), before);
    }

    // Damaged data pages (the schema page intact, so it would open as an empty chat list): the
    // quick check on open refuses the file unchanged, naming the newest backup (the copy kept
    // after the previous good open); read-only opening still works and refuses writes; restoring
    // the backup brings the chats back and keeps the damaged file aside.
    void damagedDataPagesOfferBackupAndReadOnly() {
        const QString path = dir_.filePath("pages.db");
        const std::string text(600, 'x');
        {
            Database db = Database::open(str(path));
            ChatStore chats(db);
            for (int i = 0; i < 40; ++i) chats.addMessage(chats.createChat("chat " + std::to_string(i)).id, NewMessage{.content = text});
            db.connection().exec("PRAGMA journal_mode = DELETE");
        }
        QVERIFY(!Database::newestBackup(str(path)));  // (a new file has none yet)
        { Database again = Database::open(str(path)); }  // a good open of an existing file: the daily copy
        const auto backup = Database::newestBackup(str(path));
        QVERIFY(backup && QFile::exists(QString::fromStdString(backup->string())));
        QVERIFY(QString::fromStdString(backup->string()).endsWith(".last-good.bak"));
        {
            Database db = Database::open(str(path));
            db.connection().exec("PRAGMA journal_mode = DELETE");
        }
        QByteArray bytes = readFile(path);
        QVERIFY(bytes.size() >= 12 * 4096);
        for (int i = 5 * 4096; i < 9 * 4096; ++i) bytes[i] = static_cast<char>((i * 131) & 0xFF);
        QVERIFY(writeFile(path, bytes));
        const QByteArray before = fileHash(path);
        try {
            Database::open(str(path));
            QFAIL("opened a database with damaged pages");
        } catch (const DamagedDatabase& e) {
            const QString message = QString::fromUtf8(e.what());
            QVERIFY2(message.contains("damaged") && message.contains("left unchanged") && message.contains(path), qPrintable(message));
            QVERIFY2(message.contains(QString::fromStdString(backup->string())), qPrintable(message));
            QCOMPARE(e.backup(), backup);
        }
        QCOMPARE(fileHash(path), before);
        {
            Database db = Database::open(str(path), OpenOptions{.readOnly = true});
            QVERIFY(db.readOnly());
            SettingsStore settings(db);
            try {
                settings.set("k", "v");
                QFAIL("a read-only database took a write");
            } catch (const Error& e) {  // (which file, and what to do)
                const QString message = QString::fromUtf8(e.what());
                QVERIFY2(message.contains(path) && message.contains("read-only") && message.contains("writable"), qPrintable(message));
            }
        }
        QCOMPARE(fileHash(path), before);
        const auto aside = Database::restoreBackup(str(path), *backup);
        QVERIFY(QFile::exists(QString::fromStdString(aside.string())));
        QCOMPARE(fileHash(QString::fromStdString(aside.string())), before);
        Database restored = Database::open(str(path));
        ChatStore chats(restored);
        QCOMPARE(chats.chats().size(), std::size_t(40));
    }

    void refusesFolder() {
        QVERIFY_THROWS_EXCEPTION(Error, Database::open(str(dir_.path())));
    }

    // The committed v1 fixture (made by lumen_make_db_fixture at schema v1) opens with this
    // build and keeps its content; when the schema moves on, this is the upgrade path.
    void opensVersion1Fixture() {
        Database db = openFixtureCopy(QStringLiteral("lumen-v1.db"));
        QCOMPARE(db.schemaVersion(), currentSchemaVersion());
        QCOMPARE(db.backupPath().has_value(), currentSchemaVersion() > 1);
        QCOMPARE(QString::fromStdString(db.integrityCheck()), QStringLiteral("ok"));

        ChatStore chats(db);
        const auto all = chats.chats();
        QCOMPARE(all.size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(all[0].title), QStringLiteral("Fixture chat"));
        const auto messages = chats.messages(all[0].id);
        QCOMPARE(messages.size(), std::size_t(3));
        QCOMPARE(messages[0].images.size(), std::size_t(1));
        QCOMPARE(messages[1].metrics.tokensPerSecond.value_or(0), 42.25);
        QVERIFY(messages[2].status == MessageStatus::Stopped);
        QVERIFY(messages[1].reasoning.empty() && !messages[1].metrics.reasoningMs);  // v2's columns, empty
        QCOMPARE(chats.search("picture").size(), std::size_t(1));

        TemplateStore templates(db);
        QCOMPARE(templates.list().size(), std::size_t(1));
        QCOMPARE(templates.examples(templates.list()[0].id).size(), std::size_t(2));
        LabelSetStore labels(db);
        QCOMPARE(labels.list().size(), std::size_t(1));
        QCOMPARE(labels.get(labels.list()[0].id)->labels[0].exampleImages.size(), std::size_t(1));
        QVERIFY(EmbeddingCache(db).get(EmbeddingKind::Image, messages[0].images[0], "clip-vit-b32"));
        QCOMPARE(QString::fromStdString(SettingsStore(db).value("sampling.temperature", "")), QStringLiteral("0.7"));
    }

    // The v2 fixture (reasoning beside the answer) opens and keeps it.
    void opensVersion2Fixture() {
        Database db = openFixtureCopy(QStringLiteral("lumen-v2.db"));
        QCOMPARE(db.schemaVersion(), currentSchemaVersion());
        QCOMPARE(db.backupPath().has_value(), currentSchemaVersion() > 2);
        QCOMPARE(QString::fromStdString(db.integrityCheck()), QStringLiteral("ok"));
        ChatStore chats(db);
        const auto messages = chats.messages(chats.chats().at(0).id);
        QCOMPARE(messages.size(), std::size_t(3));
        QCOMPARE(QString::fromStdString(messages[1].reasoning), QStringLiteral("The picture is two pixels wide."));
        QCOMPARE(messages[1].metrics.reasoningMs.value_or(0), 850.0);
        QCOMPARE(QString::fromStdString(messages[1].content), QStringLiteral("A very small image."));
    }

    // The v3 fixture (a chat's own settings in chat_settings) opens and keeps them.
    void opensVersion3Fixture() {
        Database db = openFixtureCopy(QStringLiteral("lumen-v3.db"));
        QCOMPARE(db.schemaVersion(), currentSchemaVersion());
        QCOMPARE(db.backupPath().has_value(), currentSchemaVersion() > 3);
        QCOMPARE(QString::fromStdString(db.integrityCheck()), QStringLiteral("ok"));
        ChatStore chats(db);
        QCOMPARE(QString::fromStdString(chats.setting(chats.chats().at(0).id, "generation.temperature").value_or("")), QStringLiteral("0.2"));
    }

    // A later schema: migrations run one version at a time after a backup copy is made.
    void migratesWithBackup() {
        const QString path = dir_.filePath("migrate.db");
        {
            Database db = Database::open(str(path));
            ChatStore(db).createChat("before the upgrade");
        }
        std::vector<Migration> migrations(schemaMigrations().begin(), schemaMigrations().end());
        const int base = currentSchemaVersion();
        migrations.push_back({base + 1, "test: add a column", "ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"});
        migrations.push_back({base + 2, "test: add a table", "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT);"});
        Database db = Database::open(str(path), {migrations});
        QCOMPARE(db.schemaVersion(), base + 2);
        QVERIFY(db.backupPath());
        const QString backup = QString::fromStdString(db.backupPath()->string());
        QVERIFY2(backup.endsWith(QStringLiteral(".v%1.bak").arg(base)), qPrintable(backup));
        db.connection().exec("INSERT INTO notes(text) VALUES ('works')");
        Statement pinned = db.connection().prepare("SELECT pinned, title FROM chats");
        QVERIFY(pinned.step());
        QCOMPARE(pinned.getInt(0), 0);
        // The backup is the old version, intact.
        Database old = Database::open(backup.toStdString());
        QCOMPARE(old.schemaVersion(), base);
        QCOMPARE(ChatStore(old).chats().size(), std::size_t(1));
    }

    // Version 3 moves each chat's own settings ("chat.<id>.<key>" in settings) into
    // chat_settings, where they go with the chat; those of chats already gone are dropped.
    void migratesChatSettings() {
        const QString path = dir_.filePath("chat-settings.db");
        std::int64_t kept = 0;
        {
            const std::vector<Migration> v2(schemaMigrations().begin(), schemaMigrations().begin() + 2);
            Database db = Database::open(str(path), {v2});
            QCOMPARE(db.schemaVersion(), 2);
            ChatStore chats(db);
            kept = chats.createChat("kept").id;
            const std::int64_t gone = chats.createChat("gone").id;
            chats.deleteChat(gone);
            SettingsStore settings(db);
            settings.set("chat." + std::to_string(kept) + ".generation.temperature", "0.3");
            settings.set("chat." + std::to_string(kept) + ".generation.max_tokens", "12");
            settings.set("chat." + std::to_string(gone) + ".generation.top_k", "5");
            settings.set("generation.temperature", "0.9");
        }
        Database db = Database::open(str(path));
        QCOMPARE(db.schemaVersion(), currentSchemaVersion());
        QVERIFY(db.backupPath());
        ChatStore chats(db);
        QCOMPARE(chats.settings(kept), (std::map<std::string, std::string>{{"generation.max_tokens", "12"}, {"generation.temperature", "0.3"}}));
        QCOMPARE(SettingsStore(db).all(), (std::map<std::string, std::string>{{"generation.temperature", "0.9"}}));
        Statement rows = db.connection().prepare("SELECT count(*) FROM chat_settings");
        QVERIFY(rows.step());
        QCOMPARE(rows.getInt(0), std::int64_t{2});
    }

    void failedMigrationLeavesPreviousVersion() {
        const QString path = dir_.filePath("failing.db");
        { Database::open(str(path)); }
        std::vector<Migration> migrations(schemaMigrations().begin(), schemaMigrations().end());
        const int base = currentSchemaVersion();
        migrations.push_back({base + 1, "good", "CREATE TABLE good(x);"});
        migrations.push_back({base + 2, "broken", "CREATE TABLE half(x); INSERT INTO missing VALUES (1);"});
        try {
            Database::open(str(path), {migrations});
            QFAIL("a broken migration succeeded");
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(QStringLiteral("v%1").arg(base + 2)), e.what());
        }
        // Version base+1 was committed; base+2 rolled back completely.
        Connection c = Connection::open(str(path));
        QCOMPARE(c.pragmaInt("user_version"), static_cast<std::int64_t>(base + 1));
        Statement half = c.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half'");
        QVERIFY(half.step());
        QCOMPARE(half.getInt(0), 0);
    }

    void transactionRollsBackUnlessCommitted() {
        Database db = Database::open(str(dir_.filePath("tx.db")));
        ChatStore chats(db);
        {
            Transaction tx(db.connection());
            chats.createChat("never committed");
        }
        QVERIFY(chats.chats().empty());
        {
            Transaction outer(db.connection());
            chats.createChat("outer");
            {
                Transaction inner(db.connection());
                chats.createChat("inner, rolled back");
            }
            outer.commit();
        }
        const auto all = chats.chats();
        QCOMPARE(all.size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(all[0].title), QStringLiteral("outer"));
    }

private:
    // A writable copy of a committed fixture database, opened (and so upgraded) by this build.
    Database openFixtureCopy(const QString& name) {
        const QString fixture = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/") + name;
        if (!QFile::exists(fixture)) throw Error("missing fixture " + fixture.toStdString());
        const QString path = dir_.filePath(name);
        QFile::remove(path);
        if (!QFile::copy(fixture, path)) throw Error("cannot copy " + fixture.toStdString());
        QFile(path).setPermissions(QFile::ReadOwner | QFile::WriteOwner);
        return Database::open(str(path));
    }

    QTemporaryDir dir_;
};

QTEST_GUILESS_MAIN(TestDatabase)
#include "tst_database.moc"
