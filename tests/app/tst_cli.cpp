// lumen-cli, run in-process: every command, and clear errors for bad arguments.

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QtTest>
#include <sys/stat.h>

#include "app/cli/cli.h"
#include "app/library.h"
#include "inference/core/backend.h"
#include "inference/core/compute_devices.h"
#include "inference/llm/model_writer.h"
#include "storage/database.h"
#include "inference/formats/gguf.h"
#include "cli_runner.h"
#include "test_util.h"

using namespace lumen;

namespace {

const QString kVision = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../vision/fixtures/");

using Result = test::CliResult;

Result run(QStringList args, QString input = {}) { return test::runCli(std::move(args), std::move(input)); }

}  // namespace

class TestCli : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        db_ = dir_.filePath("cli.db");
        app::Library lib(db_);
        chat_ = lib.chats().createChat("Penguin facts").id;
        lib.chats().addMessage(chat_, {storage::Role::User, "Do penguins have knees?"});
        lib.chats().addMessage(chat_, {storage::Role::Assistant, "Yes, hidden under their feathers."});
    }

    void help() {
        auto r = run({"--help"});
        QCOMPARE(r.status, 0);
        QVERIFY(r.out.contains("export"));
        QVERIFY(r.out.contains("--database"));
        r = run({});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("Usage"));
        r = run({"--version"});
        QCOMPARE(r.status, 0);
        QVERIFY(r.out.startsWith("lumen-cli "));
    }

    void info() {
        const auto r = run({"info", "--database", db_});
        QCOMPARE(r.status, 0);
        QVERIFY(r.out.contains("CPU:"));
        QVERIFY(r.out.contains("SIMD:"));
        QVERIFY(r.out.contains(QStringLiteral("kernels: %1").arg(QString::fromUtf8(inference::cpuKernelSet()))));
        QVERIFY(r.out.contains("CUDA backend:"));
        QVERIFY(r.out.contains(db_));
    }

    void chatsAndSearch() {
        auto r = run({"chats", "--database", db_});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("Penguin facts") && r.out.contains("2 messages"), qPrintable(r.out));
        r = run({"search", "--database", db_, "knees"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("*knees*"), qPrintable(r.out));
        r = run({"search", "--database", db_, "walrus"});
        QVERIFY(r.out.contains("no matches"));
    }

    // A damaged database (a row the schema does not allow, a dropped search index) ends chats and
    // search with one clear line, not an abort; the first fails the check on open (naming the
    // problem and the backup), and nothing is written to it.
    void damagedDatabase() {
        const QString path = dir_.filePath("damaged.db");
        QVERIFY(QFile::copy(db_, path));
        QFile(path).setPermissions(QFile::ReadOwner | QFile::WriteOwner);
        {
            auto db = storage::Database::open(path.toStdString());
            db.connection().exec("PRAGMA ignore_check_constraints = 1; UPDATE messages SET role = 'robot'");
        }
        const QByteArray before = lumen::test::readFile(path);
        auto r = run({"chats", "--database", path});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("is damaged") && r.err.contains("CHECK constraint failed in messages") && r.err.contains("left unchanged") &&
                     r.err.contains("last-good.bak"),
                 qPrintable(r.err));
        r = run({"import", dir_.filePath("nothing.json"), "--database", path});
        QCOMPARE(r.status, 1);
        QCOMPARE(lumen::test::readFile(path), before);
        // `restore` puts the backup in place (the damaged file kept aside); the chats read again.
        r = run({"chats", "--database", path});
        QVERIFY2(r.err.contains("`lumen-cli restore`"), qPrintable(r.err));
        r = run({"restore", "--database", path});
        QVERIFY2(r.status == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("restored") && r.out.contains(".damaged-"), qPrintable(r.out));
        r = run({"chats", "--database", path});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("Penguin facts"), qPrintable(r.out));
        // A database that passes its check is not replaced by a day-old backup unless asked.
        r = run({"restore", "--database", path});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("passes its integrity check") && r.err.contains("--force"), qPrintable(r.err));
        QCOMPARE(run({"restore", "--force", "--database", path}).status, 0);
        QVERIFY(QFile::remove(path));
        QVERIFY(QFile::copy(db_, path));
        {
            auto db = storage::Database::open(path.toStdString());
            db.connection().exec("DROP TABLE messages_fts");
        }
        r = run({"search", "--database", path, "knees"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("the database cannot be read") && r.err.contains("messages_fts"), qPrintable(r.err));
    }

    void exportImportRoundTrip() {
        const QString json = dir_.filePath("chat.json");
        auto r = run({"export", QString::number(chat_), "--format", "json", "-o", json, "--database", db_});
        QCOMPARE(r.status, 0);
        const QString other = dir_.filePath("other.db");
        r = run({"import", json, "--database", other});
        QCOMPARE(r.status, 0);
        QVERIFY(r.out.startsWith("imported chat "));
        r = run({"export", r.out.section(' ', 2).trimmed(), "--format", "json", "--database", other});
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out.toUtf8(), lumen::test::readFile(json));

        r = run({"export", QString::number(chat_), "--database", db_});  // Markdown by default
        QCOMPARE(r.status, 0);
        QVERIFY(r.out.startsWith("# Penguin facts"));
    }

    void badArguments_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("message");
        QTest::newRow("unknown command") << QStringList{"frobnicate"} << 2 << "unknown command";
        QTest::newRow("unknown option") << QStringList{"chats", "--nope"} << 2 << "nope";
        QTest::newRow("export no id") << QStringList{"export"} << 2 << "one chat id";
        QTest::newRow("export bad id") << QStringList{"export", "abc"} << 2 << "not a chat id";
        QTest::newRow("export negative id") << QStringList{"export", "-5"} << 2 << "";
        QTest::newRow("bad format") << QStringList{"export", "1", "--format", "pdf"} << 2 << "md or json";
        QTest::newRow("missing chat") << QStringList{"export", "999"} << 1 << "does not exist";
        QTest::newRow("import missing file") << QStringList{"import", "/nonexistent/x.json"} << 1 << "cannot read";
        QTest::newRow("search nothing") << QStringList{"search"} << 2 << "needs words";
    }
    void badArguments() {
        QFETCH(QStringList, args);
        QFETCH(int, status);
        QFETCH(QString, message);
        args << "--database" << db_;
        const auto r = run(args);
        QCOMPARE(r.status, status);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
    }

    void importRejectsGarbage() {
        const QString bad = dir_.filePath("bad.json");
        QVERIFY(lumen::test::writeFile(bad, "{\"format\": 3}"));
        const auto r = run({"import", bad, "--database", db_});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("not a valid Lumen chat export"), qPrintable(r.err));
    }

    void refusesNonDatabase() {
        const QString notDb = dir_.filePath("notes.txt");
        QVERIFY(lumen::test::writeFile(notDb, QByteArray(8192, 'x')));
        const auto r = run({"chats", "--database", notDb});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("not a database"), qPrintable(r.err));
        QCOMPARE(lumen::test::readFile(notDb), QByteArray(8192, 'x'));
    }

    void inspectRealModel() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping inspect on stories260K.gguf");
        const QString model = shared + "/tinystories/stories260K.gguf";
        auto r = run({"inspect", model});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("format: GGUF v3"), qPrintable(r.out));
        QVERIFY(r.out.contains("layers 5, embedding 64, feed-forward 172"));
        QVERIFY(r.out.contains("attention heads 8, KV heads 4"));
        QVERIFY(r.out.contains("vocabulary 512 tokens (llama tokenizer)"));
        QVERIFY(r.out.contains("parameters: 292,800 in 48 tensors"));
        QVERIFY(r.out.contains("blk.4.ffn_down.weight"));
        QVERIFY(r.out.contains("[string × 512] \"<unk>\", \"<s>\""));  // long arrays abbreviated

        const QString out = dir_.filePath("norm.f32");
        r = run({"inspect", model, "--tensor", "output_norm.weight", "--dump", out});
        QCOMPARE(r.status, 0);
        QCOMPARE(QFileInfo(out).size(), qint64(64 * 4));
        r = run({"inspect", model, "--tensor", "no.such.tensor", "--dump", out});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("tensor 'no.such.tensor' is missing"), qPrintable(r.err));
    }

    void tokenize() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping tokenize");
        const QString model = shared + "/tokenizers/ggml-vocab-llama-spm.gguf";
        auto r = run({"tokenize", "--model", model, "--ids", "I believe the meaning of life is"});
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out, QStringLiteral("1 306 4658 278 6593 310 2834 338\n"));
        r = run({"tokenize", "--model", model, "--no-bos", "Hi\n"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("6324\t' Hi'") && r.out.contains("13\t'\\n'") && r.out.contains("2 tokens"), qPrintable(r.out));
        r = run({"tokenize", "--model", model, "--ids", "--no-bos", "--parse-special", "<s>x"});
        QVERIFY2(r.out.startsWith("1 "), qPrintable(r.out));
        r = run({"tokenize", "text without model"});
        QCOMPARE(r.status, 2);
    }

    void templateCommand() {
        const QString context = dir_.filePath("context.json");
        QVERIFY(lumen::test::writeFile(context, R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})"));
        auto r = run({"template", "--builtin", "chatml", "--context", context});
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out, QStringLiteral("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));  // exactly, nothing added

        const QString file = dir_.filePath("t.jinja");
        QVERIFY(lumen::test::writeFile(file, "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"));
        r = run({"template", "--file", file, "--context", context});
        QCOMPARE(r.out, QStringLiteral("[user] Hi"));

        QVERIFY(lumen::test::writeFile(file, "line 1\n{{ messages | nosuchfilter }}"));
        r = run({"template", "--file", file, "--context", context});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("template:2:") && r.err.contains("unknown filter"), qPrintable(r.err));

        r = run({"template", "--builtin", "nope", "--context", context});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("chatml"));
        r = run({"template", "--builtin", "chatml"});
        QCOMPARE(r.status, 2);
        QVERIFY(lumen::test::writeFile(context, "[1, 2]"));
        r = run({"template", "--builtin", "chatml", "--context", context});
        QCOMPARE(r.status, 1);
        QVERIFY(r.err.contains("JSON object"));

        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) return;
        QVERIFY(lumen::test::writeFile(context, R"({"messages": []})"));
        r = run({"template", "--model", shared + "/tinystories/stories260K.gguf", "--context", context});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("has no chat template"), qPrintable(r.err));
    }

    void templateFromModel() {
        using namespace lumen::inference;
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("llama"));
        w.set("tokenizer.ggml.model", GgufWriteValue::string("llama"));
        w.set("tokenizer.ggml.tokens", GgufWriteValue::stringArray({"<unk>", "<|begin|>", "<|end|>", "a"}));
        w.set("tokenizer.ggml.bos_token_id", GgufWriteValue::u32(1));
        w.set("tokenizer.ggml.eos_token_id", GgufWriteValue::u32(2));
        w.set("tokenizer.chat_template", GgufWriteValue::string("{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"));
        const QString model = dir_.filePath("tmpl.gguf");
        w.write(model.toStdString());
        const QString context = dir_.filePath("ctx2.json");
        QVERIFY(lumen::test::writeFile(context, R"({"messages": [{"role": "user", "content": "x"}]})"));
        auto r = run({"template", "--model", model, "--context", context});
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out, QStringLiteral("<|begin|>x<|end|>"));
        QVERIFY(lumen::test::writeFile(context, R"({"messages": [{"role": "user", "content": "x"}], "bos_token": "B"})"));
        r = run({"template", "--model", model, "--context", context});
        QCOMPARE(r.out, QStringLiteral("Bx<|end|>"));  // the context wins over the model
    }

    void generate() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping generate");
        const QString model = shared + "/tinystories/stories260K.gguf";
        const QString logits = dir_.filePath("logits.f32");
        auto r = run({"generate", "--model", model, "--prompt", "Zoo", "--temp", "0", "-n", "57", "--ctx-size", "256", "--logits-out", logits});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.startsWith("Zoo was a little girl named Lily.") && r.out.endsWith("but she didn't want to play with\n"), qPrintable(r.out));
        QVERIFY2(r.err.contains("prompt 4 tokens") && r.err.contains("57 tokens at") && r.err.contains("stopped: token limit"), qPrintable(r.err));
        // One row of 512 logits per decoded position: 4 prompt positions + 56 fed replies.
        QCOMPARE(QFileInfo(logits).size(), qint64((4 + 56) * 512 * 4));

        r = run({"generate", "--model", model, "--prompt-tokens", "1,9999"});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("not a token id"));
        r = run({"generate", "--model", model, "--prompt", "x", "--temp", "hot"});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("--temp must be a number"));
        r = run({"generate", "--model", model, "--prompt", "x", "--prompt-tokens", "1"});
        QCOMPARE(r.status, 2);
        r = run({"generate", "--model", model, "--prompt", QString(300, QLatin1Char('a')) + " b c", "--ctx-size", "8"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("the context holds 8"), qPrintable(r.err));
        r = run({"generate", "--model", shared + "/tokenizers/ggml-vocab-gpt-2.gguf", "--prompt", "x"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("architecture 'gpt2' is not supported"), qPrintable(r.err));
    }

    // --gpu-layers: bad values are usage errors; 0 stays on the CPU; a number of layers needs a
    // usable GPU (on a machine without one the error says why, on one with one it runs there).
    void gpuLayers() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping gpuLayers");
        const QString model = shared + "/tinystories/stories260K.gguf";
        auto r = run({"generate", "--model", model, "--prompt", "Zoo", "--gpu-layers", "most"});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("--gpu-layers takes auto, all or a number"), qPrintable(r.err));
        r = run({"generate", "--model", model, "--prompt", "Zoo", "--temp", "0", "-n", "5", "--gpu-layers", "0"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.err.contains("running on CPU"), qPrintable(r.err));
        const bool gpu = !lumen::inference::queryComputeDevices().gpus.empty();
        r = run({"generate", "--model", model, "--prompt", "Zoo", "--temp", "0", "-n", "5", "--gpu-layers", "2"});
        if (gpu) {
            QCOMPARE(r.status, 0);
            QVERIFY2(r.err.contains("2 of 5 layers"), qPrintable(r.err));
        } else {
            QCOMPARE(r.status, 1);
            QVERIFY2(r.err.contains("cannot use the GPU"), qPrintable(r.err));
        }
        r = run({"bench", "--model", model, "-p", "8", "-n", "8", "-t", "1", "-r", "2", "--gpu-layers", "0"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("TTFT ms") && r.out.contains("CPU (") && r.out.contains("standard deviation of 2 runs") && r.out.contains(" +- "),
                 qPrintable(r.out));
        QVERIFY2(r.err.contains("bench: 1 thread, run 1 2 of 2 done"), qPrintable(r.err));
        r = run({"bench", "--model", model, "-r", "0"});
        QCOMPARE(r.status, 2);
    }

    void chat() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: skipping chat");
        const QString model = shared + "/tinystories/stories260K.gguf";
        auto r = run({"chat", "--model", model});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("has no chat template") && r.err.contains("chatml"), qPrintable(r.err));
        // Two turns with the completion template: the second reuses the first turn's cache.
        r = run({"chat", "--model", model, "--builtin", "completion", "--temp", "0", "-n", "12", "--ctx-size", "512"},
                QStringLiteral("Once upon a time\n\nthe end\n/exit\nnever read\n"));
        QCOMPARE(r.status, 0);
        const QStringList turns = r.err.split(QLatin1Char('\n')).filter(QStringLiteral(" reused"));
        QCOMPARE(turns.size(), 2);
        QVERIFY2(turns[0].contains(", 0 reused"), qPrintable(turns[0]));
        QVERIFY2(!turns[1].contains(", 0 reused"), qPrintable(turns[1]));
    }

    // A reasoning model's thinking goes to standard error (--reasoning show) or nowhere (hide),
    // never into the answer: this template's generation prompt opens the reasoning, so all that a
    // random model writes is reasoning.
    void reasoning() {
        using namespace lumen::inference;
        RandomModelSpec spec;
        spec.chatTemplate = "{% for m in messages %}{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<think>\n{% endif %}"
                            "{# replies end their reasoning with </think> #}";
        const QString model = dir_.filePath("thinker.gguf");
        writeRandomLanguageModel(spec, model.toStdString());
        auto r = run({"chat", "--model", model, "--temp", "0", "-n", "6", "--reasoning", "hide"}, QStringLiteral("hello\n/exit\n"));
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out, QStringLiteral("\n"));  // the answer: empty
        QVERIFY2(r.err.contains(" tokens/s"), qPrintable(r.err));
        const QString hidden = r.err;
        r = run({"chat", "--model", model, "--temp", "0", "-n", "6"}, QStringLiteral("hello\n/exit\n"));
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out, QStringLiteral("\n"));
        QVERIFY2(r.err.size() > hidden.size() + 3, qPrintable(r.err));  // the reasoning, on standard error
        r = run({"chat", "--model", model, "--reasoning", "loud"}, QStringLiteral("/exit\n"));
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("--reasoning takes show or hide"), qPrintable(r.err));
    }

    // A Gemma 2 file's summary names its window and soft-caps.
    void inspectFamilyOptions() {
        const auto r = run({"inspect", QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../inference/fixtures/families/gemma2-f32.gguf")});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("architecture: gemma2") && r.out.contains("sliding window 5 tokens on local layers") &&
                     r.out.contains("soft-capping: attention 0.5 logits 1.5"),
                 qPrintable(r.out));
        // What the engine makes of it: which layers are local and global (Gemma 3: five of six).
        const QString families = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../inference/fixtures/families/");
        auto g = run({"inspect", families + "gemma3-f32.gguf", "--no-metadata", "--no-tensors"});
        QCOMPARE(g.status, 0);
        QVERIFY2(g.out.contains("this version of Lumen runs it (as gemma3)") && g.out.contains("sliding-window layers (5, 5 positions") &&
                     g.out.contains("): 0-4") && g.out.contains("global layers (1): 5"),
                 qPrintable(g.out));
        g = run({"inspect", families + "smollm3-f32.gguf", "--no-metadata", "--no-tensors"});
        QVERIFY2(g.out.contains("layers without RoPE (1): 3"), qPrintable(g.out));
        g = run({"inspect", families + "broken/phi3-no-qkv.gguf", "--no-metadata", "--no-tensors"});
        QCOMPARE(g.status, 0);  // (the file itself reads; the engine says why it cannot run it)
        QVERIFY2(g.out.contains("cannot run it") && g.out.contains("tensor 'blk.0.attn_q.weight' is missing"), qPrintable(g.out));
    }

    // A context JSON nested 100,000 deep is refused before it is read (it used to overflow the stack).
    void deepJsonContext() {
        const QString context = dir_.filePath("deep.json");
        QVERIFY(lumen::test::writeFile(context, "{\"messages\": " + QByteArray(100000, '[') + QByteArray(100000, ']') + "}"));
        const auto r = run({"template", "--builtin", "chatml", "--context", context});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("nests deeper than 256 levels"), qPrintable(r.err));
    }

    // Files that are not regular files are refused at once: a FIFO named like a model or a
    // template (opening it would wait for a writer), /dev/zero as an image (endless).
    // Options that are not finite numbers, or whole numbers written otherwise, are usage errors.
    void numbersMustBeFinite() {
        auto r = run({"generate", "--model", "x.gguf", "--prompt", "x", "--temp", "nan"});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("--temp must be a number"), qPrintable(r.err));
        r = run({"generate", "--model", "x.gguf", "--prompt", "x", "--top-p", "inf"});
        QCOMPARE(r.status, 2);
        r = run({"generate", "--model", "x.gguf", "--prompt", "x", "-n", "1e3"});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("-n must be a whole number"), qPrintable(r.err));
        r = run({"classify", "--model", kVision + "models/clip-tiny", "--device", "cpu", "--labels", "a,b", "--alpha", "nan", kVision + "preprocess/gradient_37x53.png"});
        QCOMPARE(r.status, 2);
    }

    void onlyRegularFiles() {
        const QString fifo = dir_.filePath("pipe.gguf");
        QCOMPARE(::mkfifo(fifo.toLocal8Bit().constData(), 0600), 0);
        auto r = run({"inspect", fifo});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("is not a regular file"), qPrintable(r.err));
        r = run({"template", "--file", fifo, "--context", fifo});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("is not a regular file"), qPrintable(r.err));
        r = run({"classify", "--model", kVision + "models/clip-tiny", "--device", "cpu", "--labels", "a,b", "/dev/zero"});
        QVERIFY2(r.err.contains("/dev/zero: is not a regular file"), qPrintable(r.err));
        r = run({"import", "/dev/zero"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("is not a regular file"), qPrintable(r.err));
    }

    // Names and strings from a file reach the terminal escaped: no control sequences.
    void inspectEscapesControlCharacters() {
        using namespace lumen::inference;
        GgufWriter w;
        w.set("general.architecture", GgufWriteValue::string("llama\x1b]0;pwned\x07"));
        w.set("general.name", GgufWriteValue::string("evil\x1b[2J\xC2\x9B" "31m"));
        w.set("key\x1b[1m", GgufWriteValue::u32(1));
        const QString path = dir_.filePath("escape.gguf");
        w.write(path.toStdString());
        const auto r = run({"inspect", path});
        QCOMPARE(r.status, 0);
        QVERIFY2(!r.out.contains(QChar(0x1b)) && !r.out.contains(QChar(0x9b)) && !r.out.contains(QChar(0x07)), qPrintable(r.out));
        QVERIFY2(r.out.contains("name: evil\\x1b[2J\\x9b31m") && r.out.contains("key\\x1b[1m (u32)"), qPrintable(r.out));
    }

    void inspectErrors() {
        auto r = run({"inspect"});
        QCOMPARE(r.status, 2);
        r = run({"inspect", "x.gguf", "--tensor", "a"});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("go together"));
        r = run({"inspect", "/nonexistent/model.gguf"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("cannot open"), qPrintable(r.err));
        const QString bad = dir_.filePath("bad.gguf");
        QVERIFY(lumen::test::writeFile(bad, "GGUF\x03\0\0\0"));
        r = run({"inspect", bad});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("bad.gguf") && r.err.contains("ends early"), qPrintable(r.err));
    }

    void embed() {
        const QString clip = kVision + "models/clip-tiny", image = kVision + "preprocess/gradient_37x53.png";
        auto r = run({"embed", "--model", clip, "--device", "cpu", "--image", image, "--text", "Green", "--json"});
        QCOMPARE(r.status, 0);
        const QJsonArray results = QJsonDocument::fromJson(r.out.toUtf8()).array();
        QCOMPARE(results.size(), 2);
        const QJsonObject expected = QJsonDocument::fromJson(test::readFile(kVision + "models/expected.json")).object()["clip-tiny"].toObject();
        const QJsonArray wantImage = expected["images"].toObject()["gradient_37x53.png"].toObject()["embedding"].toArray();
        const QJsonArray wantText = expected["texts"].toObject()["Green"].toObject()["embedding"].toArray();
        const QJsonArray gotImage = results[0].toObject()["embedding"].toArray(), gotText = results[1].toObject()["embedding"].toArray();
        QCOMPARE(gotImage.size(), 16);
        for (int i = 0; i < 16; ++i) {
            QVERIFY(std::abs(gotImage[i].toDouble() - wantImage[i].toDouble()) < 1e-3);
            QVERIFY(std::abs(gotText[i].toDouble() - wantText[i].toDouble()) < 1e-3);
        }
        r = run({"embed", "--model", clip, "--device", "cpu", "--text", "a cat", "--normalize"});
        QCOMPARE(r.status, 0);
        double norm = 0.0;
        const QStringList values = r.out.section(':', 1).split(' ', Qt::SkipEmptyParts);
        QCOMPARE(values.size(), 16);
        for (const QString& v : values) norm += v.toDouble() * v.toDouble();
        QVERIFY(std::abs(norm - 1.0) < 1e-4);
        r = run({"embed", "--model", kVision + "models/dinov2-tiny", "--device", "cpu", "--image", image});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("(64 values)"), qPrintable(r.out));
    }

    void classifyAndEval() {
        const QString clip = kVision + "models/clip-tiny", images = kVision + "preprocess/";
        // Zero-shot: the reference's best label for each image.
        auto r = run({"classify", "--model", clip, "--device", "cpu", "--labels", "red, green,blue,striped cat", "--template", "a photo of a {}.",
                      "--template", "a drawing of the {}", "--top-k", "2", "--json", images + "gradient_37x53.png"});
        QCOMPARE(r.status, 0);
        const QJsonArray top = QJsonDocument::fromJson(r.out.toUtf8()).array()[0].toObject()["top"].toArray();
        QCOMPARE(top.size(), 2);
        QCOMPARE(top[0].toObject()["label"].toString(), QString("green"));
        // Few-shot from folders of examples: prototypes (DINOv2), and Tip-Adapter (CLIP).
        QTemporaryDir examples;
        QVERIFY(QDir(examples.path()).mkpath("smooth") && QDir(examples.path()).mkpath("blocky"));
        QVERIFY(QFile::copy(images + "gradient_37x53.png", examples.filePath("smooth/a.png")));
        QVERIFY(QFile::copy(images + "blocks_300x200.png", examples.filePath("blocky/b.png")));
        QVERIFY(test::writeFile(examples.filePath("blocky/notes.txt"), "not an image"));
        r = run({"classify", "--model", kVision + "models/dinov2-tiny", "--device", "cpu", "--examples", examples.path(), images + "blocks_300x200.png"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.section('\n', 1, 1).trimmed().endsWith("blocky"), qPrintable(r.out));
        QVERIFY2(r.err.contains("skipping example") && r.err.contains("notes.txt"), qPrintable(r.err));
        r = run({"classify", "--model", clip, "--device", "cpu", "--labels", "smooth,blocky", "--examples", examples.path(), "--alpha", "1000", "--beta", "100",
                 images + "gradient_37x53.png"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.section('\n', 1, 1).trimmed().endsWith("smooth"), qPrintable(r.out));
        // eval: the examples as their own test set are all right.
        r = run({"eval", "--model", kVision + "models/dinov2-tiny", "--device", "cpu", "--examples", examples.path(), examples.path()});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.startsWith("accuracy 1.0000 (2 of 2), macro F1 1.0000"), qPrintable(r.out));
        QVERIFY(r.out.contains("confusion"));
    }

    void llava() {
        const QString mmproj = kVision + "llava/mmproj-tiny.gguf", image = kVision + "preprocess/gradient_37x53.png";
        // The projected rows, as other tools would be compared against.
        auto r = run({"embed", "--model", mmproj, "--device", "cpu", "--image", image, "--json"});
        QCOMPARE(r.status, 0);
        const QJsonObject got = QJsonDocument::fromJson(r.out.toUtf8()).array()[0].toObject();
        QCOMPARE(got["rows"].toInt(), 4);
        const QJsonArray rows = got["embedding"].toArray();
        const QJsonArray want = QJsonDocument::fromJson(test::readFile(kVision + "llava/expected.json")).object()["projected"].toArray();
        QCOMPARE(rows.size(), want.size());
        for (int i = 0; i < rows.size(); ++i) QVERIFY(std::abs(rows[i].toDouble() - want[i].toDouble()) < 1e-3);
        r = run({"inspect", mmproj, "--no-tensors", "--no-metadata"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("for LLMs 64 wide") && r.out.contains("4 embeddings per image"), qPrintable(r.out));
        r = run({"generate", "--model", mmproj, "--image", image, "--prompt", "x"});
        QCOMPARE(r.status, 2);
        QVERIFY(r.err.contains("--image and --mmproj go together"));

        const QString shared = test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: describe runs the real TinyStories model with the tiny mmproj");
        const QString llm = shared + "/tinystories/stories260K.gguf";
        // The same image twice: encoded once, and the second prompt reuses the first's cache.
        const QString logits = dir_.filePath("describe.f32");
        r = run({"describe", "--model", llm, "--mmproj", mmproj, "-n", "5", "--temp", "0", "--gpu-layers", "0", "--logits-out", logits, image, image});
        QCOMPARE(r.status, 0);
        QCOMPARE(r.out.count(image + ":"), 2);
        QVERIFY2(r.err.contains("image encode") && r.err.contains("image cached"), qPrintable(r.err));
        QVERIFY2(r.err.contains("template llava"), qPrintable(r.err));
        const QRegularExpression reused(QStringLiteral("prompt (\\d+) tokens \\((\\d+) reused\\)"));
        auto it = reused.globalMatch(r.err);
        QVERIFY(it.hasNext());
        const auto first = it.next();
        QVERIFY(it.hasNext());
        const auto second = it.next();
        QCOMPARE(first.captured(2).toInt(), 0);
        QCOMPARE(second.captured(2).toInt(), first.captured(1).toInt() - 1);
        // Logits: every prompt position (text and image rows) and every step fed back, both replies.
        const qint64 vocab = 512, positions = first.captured(1).toInt() + 4 + 1 + 4;
        QCOMPARE(QFileInfo(logits).size(), positions * vocab * 4);
        // generate with the image spliced at <image> in the text, and the no-<image>-token case.
        r = run({"generate", "--model", llm, "--mmproj", mmproj, "--image", image, "--prompt", "Look: <image> Once", "-n", "3", "--temp", "0", "--gpu-layers", "0"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.err.contains("image encode"), qPrintable(r.err));
        r = run({"generate", "--model", llm, "--mmproj", mmproj, "--image", image, "--prompt-tokens", "1,2,3", "--gpu-layers", "0"});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("no <image> token"), qPrintable(r.err));
        r = run({"generate", "--model", llm, "--mmproj", mmproj, "--image", image, "--image", image, "--prompt", "one <image> only", "--gpu-layers", "0"});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.err.contains("1 image markers for 2 images"), qPrintable(r.err));
        r = run({"describe", "--model", llm, "--mmproj", kVision + "llava/llm-tiny.gguf", image, "--gpu-layers", "0"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("not an mmproj file"), qPrintable(r.err));
    }

    void visionErrors_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("message");
        const QString clip = kVision + "models/clip-tiny", dino = kVision + "models/dinov2-tiny", image = kVision + "preprocess/tiny_17x9.png";
        QTest::newRow("embed nothing") << QStringList{"embed", "--model", clip} << 2 << "--image FILE or --text TEXT";
        QTest::newRow("no model") << QStringList{"embed", "--image", image} << 2 << "--model DIR is needed";
        QTest::newRow("not a model") << QStringList{"embed", "--model", "/nonexistent", "--image", image} << 1 << "config.json";
        QTest::newRow("text on dinov2") << QStringList{"embed", "--model", dino, "--text", "x"} << 2 << "needs a CLIP model";
        QTest::newRow("bad device") << QStringList{"embed", "--model", clip, "--device", "tpu", "--image", image} << 2 << "auto, cpu or gpu";
        QTest::newRow("missing image") << QStringList{"embed", "--model", clip, "--image", "/nonexistent.png"} << 1 << "/nonexistent.png";
        QTest::newRow("not an image") << QStringList{"classify", "--model", clip, "--labels", "a,b", kVision + "models/expected.json"} << 1
                                      << "not an image";
        QTest::newRow("no labels") << QStringList{"classify", "--model", clip, image} << 2 << "give --labels";
        QTest::newRow("twice") << QStringList{"classify", "--model", clip, "--labels", "a,b,a", image} << 2 << "twice";
        QTest::newRow("labels on dinov2") << QStringList{"classify", "--model", dino, "--labels", "a,b", image} << 2 << "classifies from --examples only";
        QTest::newRow("no images") << QStringList{"classify", "--model", clip, "--labels", "a"} << 2 << "takes image files";
        QTest::newRow("bad top-k") << QStringList{"classify", "--model", clip, "--labels", "a", "--top-k", "0", image} << 2 << "--top-k";
        QTest::newRow("no examples dir") << QStringList{"classify", "--model", dino, "--examples", "/nonexistent", image} << 1 << "no such folder";
        QTest::newRow("eval no dir") << QStringList{"eval", "--model", clip, "/nonexistent"} << 2 << "has no sub-folders";
    }
    void visionErrors() {
        QFETCH(QStringList, args);
        QFETCH(int, status);
        QFETCH(QString, message);
        args << "--device" << "cpu";
        if (args.count("--device") > 1) args.removeLast(), args.removeLast();
        const auto r = run(args);
        QCOMPARE(r.status, status);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
    }

    void missingDatabaseIsNotCreatedByReaders() {
        const QString missing = dir_.filePath("never.db");
        const auto r = run({"chats", "--database", missing});
        QCOMPARE(r.status, 1);
        QVERIFY(r.err.contains("no database"));
        QVERIFY(!QFile::exists(missing));
    }

private:
    QTemporaryDir dir_;
    QString db_;
    std::int64_t chat_ = 0;
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
