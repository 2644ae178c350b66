// Downloads from the Hub (issue 25), against a real HTTP server on 127.0.0.1 that answers as the
// Hub does (the tree API, resolve redirects to a CDN host, byte ranges) and misbehaves on request:
// drops the connection after N bytes, stalls, answers 5xx, serves wrong bytes, guards a gated
// repository. Covered: a whole download, resume after a drop, after a kill (a part file left),
// after a stall, retries, a checksum mismatch, no disk space, a gated repository with and
// without a token (and the token kept from the CDN host), cancel, multi-part names, lumen-cli pull.

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTextStream>
#include <QUrlQuery>
#include <QtTest>
#include <map>
#include <random>

#include "app/cli/cli.h"
#include "app/download_queue.h"
#include "app/downloader.h"
#include "cli_runner.h"
#include "fake_hub.h"
#include "storage/sha256.h"

using namespace lumen;

namespace {

QByteArray randomBytes(int n, unsigned seed) {
    std::mt19937 rng(seed);
    QByteArray b(n, Qt::Uninitialized);
    for (char& c : b) c = static_cast<char>(rng() & 0xff);
    return b;
}

}  // namespace

class TestDownloader : public QObject {
    Q_OBJECT
private slots:
    void init() {
        hub_ = std::make_unique<test::FakeHub>();
        model_ = randomBytes(1 << 20, 7);
        hub_->addFile("owner/model", "model-Q4_K_M.gguf", model_);
        hub_->addFile("owner/model", "README.md", "# a model card", false);
        hub_->addFile("owner/model", "big-00001-of-00002.gguf", randomBytes(70000, 8));
        hub_->addFile("owner/model", "big-00002-of-00002.gguf", randomBytes(50000, 9));
        QVERIFY(dir_.isValid());
        target_ = dir_.filePath(QStringLiteral("%1/model.gguf").arg(QTest::currentTestFunction()));
    }
    void cleanup() { hub_.reset(); }

    void listsFilesWithSizesAndHashes() {
        const app::HubClient hub({hub_->endpoint(), {}});
        const auto files = hub.listFiles("owner/model");
        QCOMPARE(files.size(), std::size_t{4});  // (the folder entry left out)
        const auto model = std::find_if(files.begin(), files.end(), [](const auto& f) { return f.path == "model-Q4_K_M.gguf"; });
        QVERIFY(model != files.end());
        QCOMPARE(model->size, qint64{1 << 20});  // the LFS size, not the pointer's
        QCOMPARE(model->sha256, test::sha256Of(model_));
        const auto card = std::find_if(files.begin(), files.end(), [](const auto& f) { return f.path == "README.md"; });
        QVERIFY(card->sha256.isEmpty());
        try {
            hub.listFiles("owner/none");
            QFAIL("a missing repository was listed");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("not found"), e.what());
        }
    }

    // Long listings come in pages, the next one named in a Link header.
    void followsListingPages() {
        hub_->pageSize = 2;
        const auto files = app::HubClient({hub_->endpoint(), {}}).listFiles("owner/model");
        QCOMPARE(files.size(), std::size_t{4});
        QCOMPARE(hub_->requests.size(), 3);  // (5 entries with the folder: pages of 2, 2 and 1)
    }

    // The server's file is another size than the Hub lists: refused at once, nothing kept; an
    // empty file arrives as an empty file.
    void sizesAreChecked() {
        try {
            app::downloadFile(url(), target_, model_.size() - 10, {}, {}, nullptr);
            QFAIL("a file of another size was taken");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("not the 1048566 the Hub lists"), e.what());
        }
        QVERIFY(!QFile::exists(target_));
        QCOMPARE(hub_->requests.size(), 2);  // (the redirect and the file: no retries)
        hub_->addFile("owner/model", "empty.txt", QByteArray());
        const QString empty = dir_.filePath("empty/empty.txt");
        app::downloadFile(app::HubClient({hub_->endpoint(), {}}).fileUrl("owner/model", "empty.txt"), empty, 0, {}, {}, nullptr);
        QVERIFY(QFile::exists(empty) && QFileInfo(empty).size() == 0 && !QFile::exists(empty + ".part"));
    }

    // Each try that brings bytes starts the count of tries over: many drops, one retry allowed.
    void dropsThatMakeProgressKeepGoing() {
        hub_->dropAfter = 150000;
        hub_->drops = 6;
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr, {.retries = 1, .firstBackoffMs = 5});
        QCOMPARE(readAll(target_), model_);
    }

    void wholeDownload() {
        const app::HubClient hub({hub_->endpoint(), {}});
        QList<app::DownloadProgress> seen;
        app::downloadFile(hub.fileUrl("owner/model", "model-Q4_K_M.gguf"), target_, model_.size(), test::sha256Of(model_),
                          [&](const app::DownloadProgress& p) { seen << p; }, nullptr);
        QCOMPARE(readAll(target_), model_);
        QVERIFY(!QFile::exists(target_ + ".part"));
        QVERIFY(!seen.isEmpty());
        QCOMPARE(seen.last().done, qint64(model_.size()));
        QCOMPARE(seen.last().total, qint64(model_.size()));
    }

    void resumesAfterADrop() {
        hub_->dropAfter = 300000;
        int lastAttempt = 0;
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), [&](const app::DownloadProgress& p) { lastAttempt = p.attempt; }, nullptr,
                          {.firstBackoffMs = 10});
        QCOMPARE(readAll(target_), model_);
        QCOMPARE(lastAttempt, 2);
        QVERIFY2(hub_->requests.last().range == "bytes=300000-", hub_->requests.last().range.constData());
    }

    // A kill leaves the part file: the next run asks for the rest only.
    void resumesAPartFileLeftBehind() {
        QDir().mkpath(QFileInfo(target_).absolutePath());
        writeAll(target_ + ".part", model_.left(123457));
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr);
        QCOMPARE(readAll(target_), model_);
        QCOMPARE(hub_->requests.last().range, QByteArray("bytes=123457-"));
        // A part file that is not this file's prefix (longer than the file): started over.
        writeAll(target_ + ".part", model_ + "xx");
        QFile::remove(target_);
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr);
        QCOMPARE(readAll(target_), model_);
        // A server that ignores ranges: the part file is started over from its whole answer.
        hub_->ignoreRange = true;
        writeAll(target_ + ".part", model_.left(1000));
        QFile::remove(target_);
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr);
        QCOMPARE(readAll(target_), model_);
    }

    void resumesAfterAStall() {
        hub_->stallAfter = 200000;
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr, {.firstBackoffMs = 10, .stallTimeoutMs = 1500});
        QCOMPARE(readAll(target_), model_);
        QCOMPARE(hub_->requests.last().range, QByteArray("bytes=200000-"));
    }

    void retriesServerErrorsThenGivesUp() {
        hub_->failures = 2;
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr, {.firstBackoffMs = 10});
        QCOMPARE(readAll(target_), model_);
        QFile::remove(target_);
        hub_->failures = 10;
        try {
            app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr, {.retries = 2, .firstBackoffMs = 10});
            QFAIL("a server that keeps failing gave a file");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("did not finish after 3 tries") && QString::fromUtf8(e.what()).contains("503"), e.what());
        }
        QVERIFY(!QFile::exists(target_));
    }

    void checksumMismatchDeletesThePart() {
        hub_->corrupt = true;
        try {
            app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr);
            QFAIL("damaged bytes were accepted");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("arrived damaged") && QString::fromUtf8(e.what()).contains(test::sha256Of(model_).left(12)), e.what());
        }
        QVERIFY(!QFile::exists(target_));
        QVERIFY(!QFile::exists(target_ + ".part"));
    }

    void noRoomIsSaidBeforeStarting() {
        try {
            app::downloadFile(url(), target_, qint64{1} << 55, {}, {}, nullptr);
            QFAIL("a file larger than the disk was started");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("more on") && QString::fromUtf8(e.what()).contains("free"), e.what());
        }
        QCOMPARE(hub_->requests.size(), 0);
    }

    // A gated repository: refused without the token, served with it; the token goes to the Hub's
    // host only, not to the CDN host the file is redirected to.
    void gatedRepository() {
        hub_->gate("owner/model");
        try {
            app::HubClient({hub_->endpoint(), {}}).listFiles("owner/model");
            QFAIL("a gated repository was listed without a token");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("gated") && QString::fromUtf8(e.what()).contains("HF_TOKEN"), e.what());
        }
        const app::HubClient hub({hub_->endpoint(), "secret"});
        QCOMPARE(hub.listFiles("owner/model").size(), std::size_t{4});
        app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_), {}, nullptr, {.token = "secret", .tokenOrigin = QUrl(hub_->endpoint())});
        QCOMPARE(readAll(target_), model_);
        const auto& last = hub_->requests.last();
        QVERIFY(last.path.startsWith("/cdn/") && last.host.startsWith("localhost") && last.authorization.isEmpty());
        QCOMPARE(hub_->requests[hub_->requests.size() - 2].authorization, QByteArray("Bearer secret"));
    }

    void cancelKeepsWhatArrived() {
        std::atomic<bool> cancel{false};
        try {
            app::downloadFile(url(), target_, model_.size(), test::sha256Of(model_),
                              [&](const app::DownloadProgress& p) {
                                  if (p.done > 0) cancel = true;
                              },
                              &cancel);
            QFAIL("a cancelled download finished");
        } catch (const app::DownloadError& e) {
            QVERIFY(e.cancelled());
        }
        QVERIFY(!QFile::exists(target_));
        QVERIFY(QFile::exists(target_ + ".part"));
    }

    void onlyHttpsOrLoopback() {
        try {
            app::downloadFile(QUrl("http://example.com/model.gguf"), target_, 10, {}, {}, nullptr);
            QFAIL("plain http to another machine was used");
        } catch (const app::DownloadError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("only https"), e.what());
        }
    }

    void namesAndParts() {
        QVERIFY(!app::parseRepoFile("model.gguf"));
        QVERIFY(!app::parseRepoFile("owner/model:../../etc/passwd"));
        QVERIFY(!app::parseRepoFile("owner/model extra"));
        const auto r = app::parseRepoFile("Qwen/Qwen3-4B-GGUF:Qwen3-4B-Q4_K_M.gguf");
        QVERIFY(r);
        QCOMPARE(r->repo, QStringLiteral("Qwen/Qwen3-4B-GGUF"));
        QCOMPARE(r->file, QStringLiteral("Qwen3-4B-Q4_K_M.gguf"));
        const auto files = app::HubClient({hub_->endpoint(), {}}).listFiles("owner/model");
        const auto parts = app::modelParts(files, "big-00002-of-00002.gguf");
        QCOMPARE(parts.size(), std::size_t{2});
        QCOMPARE(parts[0].path, QStringLiteral("big-00001-of-00002.gguf"));
        QCOMPARE(app::modelParts(files, "model-Q4_K_M.gguf").size(), std::size_t{1});
        QVERIFY(app::modelParts(files, "big-00001-of-00003.gguf").empty());  // (parts missing)
    }

    // lumen-cli pull: lists a repository's GGUFs, downloads a multi-part model into the models
    // folder (plain progress lines when not on a terminal), and says "already here" the next time.
    void searchesTheHub() {
        hub_->addFile("owner/other-GGUF", "x.gguf", "x");
        hub_->addFile("someone/model-gated", "y.gguf", "y");
        hub_->gate("someone/model-gated");
        const app::HubClient client({hub_->endpoint(), {}});
        auto found = client.searchModels("MODEL");
        QCOMPARE(found.size(), std::size_t(2));
        QVERIFY(found[0].downloads >= found[1].downloads);  // (the most downloaded first)
        QStringList ids;
        for (const auto& m : found) ids << m.id;
        QVERIFY(ids.contains("owner/model") && ids.contains("someone/model-gated"));
        for (const auto& m : found) QCOMPARE(m.gated, m.id == QLatin1String("someone/model-gated"));
        QCOMPARE(client.searchModels("model", 1).size(), std::size_t(1));
        QVERIFY(client.searchModels("nothing like it").empty());
        QCOMPARE(hub_->requests.last().path.contains("filter=gguf"), true);
        // lumen-cli pull --search
        qputenv("HF_ENDPOINT", hub_->endpoint().toUtf8());
        auto r = run({"pull", "--search", "model"});
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("owner/model  ") && r.out.contains("downloads") && r.out.contains("(gated: needs an access token)"), qPrintable(r.out));
        r = run({"pull", "--search", "zzz"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("no GGUF repository"), qPrintable(r.err));
        qunsetenv("HF_ENDPOINT");
        // What the search answers is read defensively.
        QCOMPARE(app::parseModelSearch(R"([{"id": "a/b", "downloads": -5}, {"id": "../x"}, {"modelId": "c/d", "gated": "auto"}, 7])").size(), std::size_t(2));
        bool refused = false;
        try {
            app::parseModelSearch("{}");
        } catch (const app::DownloadError&) {
            refused = true;
        }
        QVERIFY(refused);
    }

    // The app's queue: one download at a time in order, pause (the part file stays) and resume
    // (from it), cancel (it goes), and the model's path when it is whole and checked.
    void queueDownloadsPausesResumesAndCancels() {
        app::JobRunner jobs;
        const QString folder = dir_.filePath("queue");
        app::DownloadQueue queue(jobs, folder, [this] { return app::HubConfig{hub_->endpoint(), {}}; });
        QSignalSpy finished(&queue, &app::DownloadQueue::finished);
        hub_->stallAfter = 1000;  // the first file's answer stops after 1000 bytes
        const int a = queue.add("owner/model", "model-Q4_K_M.gguf");
        const int b = queue.add("owner/model", "big-00001-of-00002.gguf");
        QCOMPARE(queue.add("owner/model", "big-00001-of-00002.gguf"), b);  // (asked twice: one item)
        QCOMPARE(queue.items().size(), std::size_t(2));
        QVERIFY(queue.item(b)->state == app::DownloadQueue::State::Queued);
        QTRY_VERIFY(queue.item(a)->state == app::DownloadQueue::State::Downloading);
        const QString part = folder + "/owner/model/model-Q4_K_M.gguf.part";
        QTRY_VERIFY(hub_->requests.size() >= 3 && hub_->requests.last().path.startsWith("/cdn/"));  // (the file's answer is under way)
        QTest::qWait(300);
        // A queued one paused and resumed at once: its first job (stopped) says nothing more.
        queue.pause(b);
        QVERIFY(queue.item(b)->state == app::DownloadQueue::State::Paused);
        queue.resume(b);
        QVERIFY(queue.item(b)->state == app::DownloadQueue::State::Queued);
        queue.pause(a);
        // The next one runs while the first waits, its two parts as one model.
        QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10000);
        QCOMPARE(finished[0][0].toInt(), b);
        QCOMPARE(finished[0][1].toString(), folder + "/owner/model/big-00001-of-00002.gguf");
        QVERIFY(QFile::exists(folder + "/owner/model/big-00002-of-00002.gguf"));
        QVERIFY(queue.item(b)->parts == 2);
        QVERIFY(queue.item(a)->state == app::DownloadQueue::State::Paused);
        QCOMPARE(QFileInfo(part).size(), qint64(1000));
        queue.resume(a);
        QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 2, 10000);
        QCOMPARE(readAll(folder + "/owner/model/model-Q4_K_M.gguf"), model_);
        QCOMPARE(hub_->requests.last().range, QByteArray("bytes=1000-"));  // (resumed, not started over)
        // A cancel: what arrived goes, and so does the item.
        QVERIFY(QFile::remove(folder + "/owner/model/model-Q4_K_M.gguf"));
        hub_->stallAfter = 500;
        QSignalSpy removed(&queue, &app::DownloadQueue::removed);
        const int c = queue.add("owner/model", "model-Q4_K_M.gguf");
        QCOMPARE(c, a);  // (the done item again)
        QTRY_VERIFY(queue.item(a) && queue.item(a)->state == app::DownloadQueue::State::Done);
        const int d = queue.add("owner/other", "x.gguf");  // a repository that is not there
        QSignalSpy failed(&queue, &app::DownloadQueue::failed);
        QTRY_COMPARE(failed.size(), 1);
        QVERIFY2(queue.item(d)->error.contains("not found"), qPrintable(queue.item(d)->error));
        queue.cancel(d);
        QCOMPARE(removed.size(), 1);
        QVERIFY(!queue.item(d));
    }

    void pullCommand() {
        qputenv("HF_ENDPOINT", hub_->endpoint().toUtf8());
        const QString data = dir_.filePath("data");
        auto r = run({"pull", "owner/model", "--data-dir", data});
        QCOMPARE(r.status, 2);
        QVERIFY2(r.out.contains("model-Q4_K_M.gguf  1.0 MB") && r.out.contains("big-00001-of-00002.gguf  120.0 kB  (2 parts)") && !r.out.contains("README"),
                 qPrintable(r.out));
        r = run({"pull", "owner/model:big-00001-of-00002.gguf", "--data-dir", data});
        QCOMPARE(r.status, 0);
        const QString first = QDir(data).filePath("models/owner/model/big-00001-of-00002.gguf");
        QCOMPARE(r.out.trimmed(), first);
        QVERIFY(QFile::exists(QDir(data).filePath("models/owner/model/big-00002-of-00002.gguf")));
        QVERIFY2(r.err.contains("(part 2 of 2)") && r.err.contains("100%") && r.err.contains("SHA-256 checked"), qPrintable(r.err));
        r = run({"pull", "owner/model:big-00001-of-00002.gguf", "--data-dir", data});
        QVERIFY2(r.status == 0 && r.err.contains("already here"), qPrintable(r.err));
        r = run({"pull", "owner/model:missing.gguf", "--data-dir", data});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("has no file missing.gguf"), qPrintable(r.err));
        r = run({"pull", "not a repo"});
        QCOMPARE(r.status, 2);
        qunsetenv("HF_ENDPOINT");
    }

private:
    static test::CliResult run(const QStringList& args) { return test::runCli(args); }
    QUrl url() const { return app::HubClient({hub_->endpoint(), {}}).fileUrl("owner/model", "model-Q4_K_M.gguf"); }
    static QByteArray readAll(const QString& path) {
        QFile f(path);
        return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
    }
    static void writeAll(const QString& path, const QByteArray& bytes) {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(bytes);
    }

    std::unique_ptr<test::FakeHub> hub_;
    QByteArray model_;
    QTemporaryDir dir_;
    QString target_;
};

QTEST_GUILESS_MAIN(TestDownloader)
#include "tst_downloader.moc"
