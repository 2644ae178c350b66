// Images, templates with few-shot examples, label sets, the embedding cache and settings.

#include <QtTest>

#include "storage/chat_store.h"
#include "storage/embedding_cache.h"
#include "storage/image_store.h"
#include "storage/label_set_store.h"
#include "storage/settings_store.h"
#include "storage/sha256.h"
#include "storage/template_store.h"
#include "test_util.h"

using namespace lumen::storage;
using lumen::test::str;

namespace {
std::vector<std::uint8_t> bytesOf(std::string_view s) { return {s.begin(), s.end()}; }
}  // namespace

class TestStores : public QObject {
    Q_OBJECT
private slots:
    void init() {
        QVERIFY(dir_.isValid());
        db_ = std::make_unique<Database>(Database::open(str(dir_.filePath(QTest::currentTestFunction() + QStringLiteral(".db")))));
    }
    void cleanup() { db_.reset(); }

    void imagesAreContentAddressed() {
        ImageStore images(*db_);
        const auto bytes = bytesOf("pretend PNG bytes");
        const auto thumb = bytesOf("thumb");
        const std::string sha = images.put({bytes, "image/png", 640, 480, thumb});
        QCOMPARE(QString::fromStdString(sha), QString::fromStdString(sha256Hex(bytes)));
        QCOMPARE(images.put({bytes, "image/png", 640, 480, thumb}), sha);  // stored once
        Statement count = db_->connection().prepare("SELECT count(*) FROM images");
        QVERIFY(count.step());
        QCOMPARE(count.getInt(0), 1);
        const auto info = images.info(sha);
        QVERIFY(info);
        QCOMPARE(info->width, 640);
        QCOMPARE(info->height, 480);
        QCOMPARE(info->byteSize, static_cast<std::int64_t>(bytes.size()));
        QCOMPARE(QString::fromStdString(info->mimeType), QStringLiteral("image/png"));
        QVERIFY(*images.bytes(sha) == bytes);
        QVERIFY(*images.thumbnail(sha) == thumb);
        QVERIFY(!images.info(std::string(64, '0')));

        const std::string noThumb = images.put({bytesOf("other"), "image/jpeg", 1, 1, {}});
        QVERIFY(!images.thumbnail(noThumb));
        // An empty file is still an image record (its hash is the empty-input SHA-256).
        const std::string empty = images.put({{}, "image/png", 0, 0, {}});
        QCOMPARE(QString::fromStdString(empty),
                 QStringLiteral("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        QVERIFY(images.bytes(empty)->empty());
    }

    void attachmentsKeepOrderAndRequireStoredImage() {
        ImageStore images(*db_);
        ChatStore chats(*db_);
        const auto a = images.put({bytesOf("a"), "image/png", 1, 1, {}});
        const auto b = images.put({bytesOf("b"), "image/png", 1, 1, {}});
        const auto chat = chats.createChat("images");
        const auto msg = chats.addMessage(chat.id, {Role::User, "two images"});
        images.attach(msg, b);
        images.attach(msg, a);
        QCOMPARE(images.attachments(msg), (std::vector<std::string>{b, a}));
        QCOMPARE(chats.message(msg)->images, (std::vector<std::string>{b, a}));
        QVERIFY_THROWS_EXCEPTION(Error, images.attach(msg, std::string(64, 'f')));
        NewMessage bad{Role::User, "missing image"};
        bad.images = {std::string(64, 'e')};
        QVERIFY_THROWS_EXCEPTION(Error, chats.addMessage(chat.id, bad));
        QCOMPARE(chats.messages(chat.id).size(), std::size_t(1));  // rolled back whole
        QCOMPARE(images.pruneUnreferenced(), 0);
    }

    void templatesCrud() {
        TemplateStore templates(*db_);
        const auto id = templates.create({0, "Translate", "chat", "You translate.", "Translate {{text}} to {{lang}}", 0, 0});
        auto t = *templates.get(id);
        QCOMPARE(QString::fromStdString(t.body), QStringLiteral("Translate {{text}} to {{lang}}"));
        t.systemPrompt = "You translate carefully.";
        templates.update(t);
        QCOMPARE(QString::fromStdString(templates.get(id)->systemPrompt), QStringLiteral("You translate carefully."));
        templates.create({0, "alpha", "describe", "", "", 0, 0});
        QCOMPARE(QString::fromStdString(templates.list()[0].name), QStringLiteral("alpha"));  // by name, case-insensitive
        try {
            templates.create({0, "Translate", "chat", "", "", 0, 0});
            QFAIL("duplicate name accepted");
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("already exists"), e.what());
        }
        templates.rename(id, "Translate (FR)");
        QCOMPARE(QString::fromStdString(templates.get(id)->name), QStringLiteral("Translate (FR)"));
    }

    void fewShotExamplesReorderDuplicateAndCascade() {
        TemplateStore templates(*db_);
        ImageStore images(*db_);
        const auto sha = images.put({bytesOf("cat.png"), "image/png", 2, 2, {}});
        const auto id = templates.create({0, "Classify", "chat", "", "{{input}}", 0, 0});
        const auto e1 = templates.addExample(id, "in 1", "out 1");
        const auto e2 = templates.addExample(id, "in 2", "out 2", sha);
        const auto e3 = templates.addExample(id, "in 3", "out 3");
        auto order = [&](std::int64_t tid) {
            std::vector<std::int64_t> ids;
            for (const auto& ex : templates.examples(tid)) ids.push_back(ex.id);
            return ids;
        };
        QCOMPARE(order(id), (std::vector<std::int64_t>{e1, e2, e3}));
        templates.moveExample(e3, 0);
        QCOMPARE(order(id), (std::vector<std::int64_t>{e3, e1, e2}));
        templates.moveExample(e3, 99);  // clamped to the end
        QCOMPARE(order(id), (std::vector<std::int64_t>{e1, e2, e3}));
        const auto examples = templates.examples(id);
        QCOMPARE(QString::fromStdString(examples[1].imageSha256.value_or("")), QString::fromStdString(sha));
        for (int i = 0; i < 3; ++i) QCOMPARE(examples[static_cast<std::size_t>(i)].position, i);

        auto edited = examples[0];
        edited.output = "better out 1";
        templates.updateExample(edited);
        QCOMPARE(QString::fromStdString(templates.examples(id)[0].output), QStringLiteral("better out 1"));

        const auto copy = templates.duplicate(id, "Classify (copy)");
        QCOMPARE(templates.examples(copy).size(), std::size_t(3));
        templates.removeExample(e1);
        QCOMPARE(order(id), (std::vector<std::int64_t>{e2, e3}));
        QCOMPARE(templates.examples(id)[0].position, 0);
        QCOMPARE(images.pruneUnreferenced(), 0);  // the examples still use the image
        templates.remove(id);
        templates.remove(copy);
        Statement left = db_->connection().prepare("SELECT count(*) FROM template_examples");
        QVERIFY(left.step());
        QCOMPARE(left.getInt(0), 0);
        QVERIFY_THROWS_EXCEPTION(Error, templates.addExample(id, "orphan", "x"));
    }

    void labelSets() {
        LabelSetStore sets(*db_);
        ImageStore images(*db_);
        const auto cat1 = images.put({bytesOf("cat1"), "image/jpeg", 3, 3, {}});
        const auto cat2 = images.put({bytesOf("cat2"), "image/jpeg", 3, 3, {}});
        const auto id = sets.create("Animals", ClassifyMode::ZeroShot, {"a photo of a {}.", "a drawing of a {}."},
                                    {"cat", "dog", "bird"});
        LabelSet set = *sets.get(id);
        QCOMPARE(set.labels.size(), std::size_t(3));
        QCOMPARE(QString::fromStdString(set.labels[1].name), QStringLiteral("dog"));
        QCOMPARE(set.promptTemplates.size(), std::size_t(2));

        sets.addExample(set.labels[0].id, cat1);
        sets.addExample(set.labels[0].id, cat2);
        sets.addExample(set.labels[0].id, cat1);  // already there
        sets.setMode(id, ClassifyMode::Blended);
        sets.setPromptTemplates(id, {"{}"});
        sets.renameLabel(set.labels[2].id, "parrot");
        QVERIFY_THROWS_EXCEPTION(Error, sets.addLabel(id, "cat"));
        QVERIFY_THROWS_EXCEPTION(Error, sets.renameLabel(set.labels[2].id, "dog"));
        QVERIFY_THROWS_EXCEPTION(Error, sets.addExample(set.labels[1].id, std::string(64, 'a')));
        sets.removeLabel(set.labels[1].id);

        set = *sets.get(id);
        QVERIFY(set.mode == ClassifyMode::Blended);
        QCOMPARE(set.promptTemplates, (std::vector<std::string>{"{}"}));
        QCOMPARE(set.labels.size(), std::size_t(2));
        QCOMPARE(set.labels[0].exampleImages, (std::vector<std::string>{cat1, cat2}));
        QCOMPARE(QString::fromStdString(set.labels[1].name), QStringLiteral("parrot"));
        sets.removeExample(set.labels[0].id, cat1);
        QCOMPARE(sets.get(id)->labels[0].exampleImages, (std::vector<std::string>{cat2}));

        QVERIFY_THROWS_EXCEPTION(Error, sets.create("Animals", ClassifyMode::FewShot, {}, {}));
        const auto list = sets.list();
        QCOMPARE(list.size(), std::size_t(1));
        QCOMPARE(list[0].labelCount, 2);
        sets.remove(id);
        QVERIFY(!sets.get(id));
        QCOMPARE(images.pruneUnreferenced(), 2);
    }

    void embeddingCache() {
        EmbeddingCache cache(*db_);
        const std::vector<float> v = {0.25f, -1.5f, 3.0f, 1e-8f};
        QVERIFY(!cache.get(EmbeddingKind::Text, "a photo of a cat.", "clip-b32"));
        cache.put(EmbeddingKind::Text, "a photo of a cat.", "clip-b32", v);
        QCOMPARE(*cache.get(EmbeddingKind::Text, "a photo of a cat.", "clip-b32"), v);
        QVERIFY(!cache.get(EmbeddingKind::Image, "a photo of a cat.", "clip-b32"));  // kinds are separate
        QVERIFY(!cache.get(EmbeddingKind::Text, "a photo of a cat.", "dinov2-s"));   // models too
        const std::vector<float> w = {9.0f, 8.0f};
        cache.put(EmbeddingKind::Text, "a photo of a cat.", "clip-b32", w);  // replaced
        QCOMPARE(*cache.get(EmbeddingKind::Text, "a photo of a cat.", "clip-b32"), w);
        cache.put(EmbeddingKind::Image, std::string(64, 'a'), "dinov2-s", v);
        QCOMPARE(cache.count(), 2);
        QVERIFY_THROWS_EXCEPTION(Error, cache.put(EmbeddingKind::Image, "x", "m", std::vector<float>{}));

        // A damaged row (size disagrees with dim) reads as absent and is dropped.
        db_->connection().exec("UPDATE embeddings SET dim = 3 WHERE model_id = 'dinov2-s'");
        QVERIFY(!cache.get(EmbeddingKind::Image, std::string(64, 'a'), "dinov2-s"));
        QCOMPARE(cache.count(), 1);
        cache.clear("clip-b32");
        QCOMPARE(cache.count(), 0);
    }

    void settings() {
        SettingsStore settings(*db_);
        QVERIFY(!settings.get("theme"));
        QCOMPARE(QString::fromStdString(settings.value("theme", "system")), QStringLiteral("system"));
        settings.set("theme", "dark");
        settings.set("theme", "light");
        settings.set("threads", "8");
        QCOMPARE(QString::fromStdString(*settings.get("theme")), QStringLiteral("light"));
        QCOMPARE(settings.all().size(), std::size_t(2));
        settings.remove("theme");
        QVERIFY(!settings.get("theme"));
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<Database> db_;
};

QTEST_GUILESS_MAIN(TestStores)
#include "tst_stores.moc"
