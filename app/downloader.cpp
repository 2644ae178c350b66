#include "app/downloader.h"

#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkProxyFactory>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QStorageInfo>
#include <QThread>
#include <QTimer>
#include <QUrlQuery>
#include <algorithm>
#include <map>

#include "storage/sha256.h"

namespace lumen::app {
namespace {

constexpr int kMaxRedirects = 8;
constexpr qint64 kDiskMargin = 64ll << 20;  // left free beyond the file

bool isLoopback(const QUrl& url) {
    const QHostAddress address(url.host());
    return url.host().compare(QLatin1String("localhost"), Qt::CaseInsensitive) == 0 || (!address.isNull() && address.isLoopback());
}

int portOf(const QUrl& url) { return url.port(url.scheme() == QLatin1String("https") ? 443 : 80); }

bool sameOrigin(const QUrl& a, const QUrl& b) {
    return a.scheme() == b.scheme() && a.host().compare(b.host(), Qt::CaseInsensitive) == 0 && portOf(a) == portOf(b);
}

std::string text(const QString& s) { return s.toStdString(); }

constexpr qsizetype kMaxBody = 16 << 20;  // an API answer (one page of a tree) held in memory

struct Result {
    int status = 0;
    QByteArray body;            // when no sink took it (at most kMaxBody; tooLarge past it)
    QString error;              // a network error (a drop, a refused connection), empty when none
    bool stalled = false, cancelled = false, aborted = false, tooLarge = false;
    qint64 contentLength = -1;
    QByteArray contentRange, link;
};

// One GET, redirects followed by hand, so that each hop is checked: https only, or plain http
// on the loopback when the first address was (tests, a local mirror), never from https down to
// http; the token only to `tokenOrigin` (scheme, host and port). `onHeaders(status)` is called
// once the final answer's headers are in: data then goes to `sink` when it says yes (a 2xx it says
// no to ends the transfer); `sink` returning false ends it too (Result::aborted). Without a sink,
// the body goes to Result::body.
Result get(const QUrl& start, const QList<std::pair<QByteArray, QByteArray>>& headers, const QString& token, const QUrl& tokenOrigin,
           const std::function<bool(int, QNetworkReply&)>& onHeaders, const std::function<bool(const QByteArray&)>& sink,
           const std::atomic<bool>* cancel, int stallTimeoutMs) {
    static const bool proxies = [] {  // (HTTPS_PROXY, no_proxy and the desktop's settings, as other tools use them)
        QNetworkProxyFactory::setUseSystemConfiguration(true);
        return true;
    }();
    (void)proxies;
    QNetworkAccessManager manager;
    manager.setRedirectPolicy(QNetworkRequest::ManualRedirectPolicy);
    const bool loopbackHttp = start.scheme() == QLatin1String("http") && isLoopback(start);
    QUrl url = start, previous;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
        const bool https = url.scheme() == QLatin1String("https"), http = url.scheme() == QLatin1String("http");
        if (!(https || (http && loopbackHttp && isLoopback(url))) || (http && previous.scheme() == QLatin1String("https")))
            throw DownloadError("refusing " + text(url.toDisplayString()) + ": only https addresses are followed");
        QNetworkRequest request(url);
        request.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::ManualRedirectPolicy);
        request.setHeader(QNetworkRequest::UserAgentHeader, QStringLiteral("lumen/" LUMEN_VERSION_STRING));
        request.setRawHeader("Accept-Encoding", "identity");  // (byte ranges of the file itself)
        for (const auto& [name, value] : headers) request.setRawHeader(name, value);
        if (!token.isEmpty() && sameOrigin(url, tokenOrigin)) request.setRawHeader("Authorization", "Bearer " + token.toUtf8());
        QNetworkReply* reply = manager.get(request);
        Result r;
        QEventLoop loop;
        QTimer stall, poll;
        stall.setSingleShot(true);
        bool accepting = false, headersSeen = false;
        const auto stop = [&](bool& why) {
            why = true;
            reply->abort();
        };
        const auto keep = [&](const QByteArray& chunk) {
            if (r.body.size() + chunk.size() > kMaxBody) return stop(r.tooLarge);
            r.body += chunk;
        };
        const auto headersIn = [&] {
            if (headersSeen) return;
            headersSeen = true;
            r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
            const bool redirect = r.status >= 300 && r.status < 400, success = r.status >= 200 && r.status < 300;
            accepting = !redirect && sink && onHeaders && onHeaders(r.status, *reply);
            if (sink && success && !accepting) stop(r.aborted);  // (an answer the sink will not take: no need to receive it)
        };
        const auto take = [&](const QByteArray& chunk) {
            if (accepting) {
                if (!sink(chunk)) stop(r.aborted);
            } else if (!sink || r.status < 200 || r.status >= 300) {
                keep(chunk);
            }
        };
        QObject::connect(reply, &QNetworkReply::metaDataChanged, &loop, headersIn);
        QObject::connect(reply, &QNetworkReply::readyRead, &loop, [&] {
            headersIn();
            stall.start(stallTimeoutMs);
            if (!r.aborted && !r.tooLarge) take(reply->readAll());
        });
        QObject::connect(&stall, &QTimer::timeout, &loop, [&] { stop(r.stalled); });
        QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
            if (cancel && cancel->load()) stop(r.cancelled);
        });
        QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
        stall.start(stallTimeoutMs);
        poll.start(100);
        if (!reply->isFinished()) loop.exec();
        headersIn();
        if (!r.stalled && !r.cancelled && !r.aborted && !r.tooLarge && reply->isOpen())
            if (const QByteArray rest = reply->readAll(); !rest.isEmpty()) take(rest);
        r.contentLength = reply->header(QNetworkRequest::ContentLengthHeader).isValid() ? reply->header(QNetworkRequest::ContentLengthHeader).toLongLong() : -1;
        r.contentRange = reply->rawHeader("Content-Range");
        r.link = reply->rawHeader("Link");
        // A refused connection (no status), or one that dropped part-way through a body.
        const bool stopped = r.stalled || r.cancelled || r.aborted || r.tooLarge;
        if (reply->error() != QNetworkReply::NoError && !stopped && (r.status == 0 || (r.status >= 200 && r.status < 300))) r.error = reply->errorString();
        const QUrl location = reply->attribute(QNetworkRequest::RedirectionTargetAttribute).toUrl();
        if (r.status >= 300 && r.status < 400 && location.isValid() && !r.cancelled) {
            previous = url;
            url = url.resolved(location);
            continue;
        }
        return r;
    }
    throw DownloadError("too many redirects from " + text(start.toDisplayString()));
}

QString refusal(int status, const QString& what) {
    if (status == 401 || status == 403)
        return QStringLiteral("%1 is gated or private (HTTP %2): accept its terms on the Hub, then give an access token (Settings, or HF_TOKEN)")
            .arg(what)
            .arg(status);
    if (status == 404) return QStringLiteral("%1 was not found (HTTP 404)").arg(what);
    return QStringLiteral("%1: the server answered HTTP %2").arg(what).arg(status);
}

// Waits `ms` (in steps, so that a cancel is seen); false when cancelled.
bool backoff(int ms, const std::atomic<bool>* cancel) {
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < ms) {
        if (cancel && cancel->load()) return false;
        QThread::msleep(static_cast<unsigned long>(std::min<qint64>(50, ms - t.elapsed() + 1)));
    }
    return !(cancel && cancel->load());
}

QString hashFile(const QString& path, const std::atomic<bool>* cancel) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) throw DownloadError("cannot read " + text(path) + ": " + text(f.errorString()));
    storage::Sha256 hash;
    QByteArray buffer(1 << 20, Qt::Uninitialized);
    for (qint64 got; (got = f.read(buffer.data(), buffer.size())) > 0;) {
        if (cancel && cancel->load()) throw DownloadError("cancelled", true);
        hash.update(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(buffer.constData()), static_cast<std::size_t>(got)));
    }
    return QString::fromStdString(hash.finishHex());
}

}  // namespace

HubConfig hubConfig(const QString& endpointSetting, const QString& tokenSetting) {
    HubConfig c;
    const QString envEndpoint = qEnvironmentVariable("HF_ENDPOINT"), envToken = qEnvironmentVariable("HF_TOKEN");
    c.endpoint = !envEndpoint.isEmpty() ? envEndpoint : !endpointSetting.isEmpty() ? endpointSetting : QStringLiteral("https://huggingface.co");
    while (c.endpoint.endsWith(QLatin1Char('/'))) c.endpoint.chop(1);
    c.token = !envToken.isEmpty() ? envToken : tokenSetting;
    return c;
}

HubClient::HubClient(HubConfig config) : config_(std::move(config)) {}

QUrl HubClient::fileUrl(const QString& repo, const QString& path) const {
    QStringList parts;
    for (const QString& segment : path.split(QLatin1Char('/'))) parts << QString::fromLatin1(QUrl::toPercentEncoding(segment));
    return QUrl(config_.endpoint + QLatin1Char('/') + repo + QStringLiteral("/resolve/main/") + parts.join(QLatin1Char('/')));
}

std::vector<RemoteFile> HubClient::listFiles(const QString& repo, const std::atomic<bool>* cancel) const {
    const QUrl origin(config_.endpoint);
    QUrl url(config_.endpoint + QStringLiteral("/api/models/") + repo + QStringLiteral("/tree/main?recursive=true"));
    std::vector<RemoteFile> files;
    // The Hub pages long listings: the next page's address is in the Link header (rel="next").
    static const QRegularExpression next(QStringLiteral("<([^>]+)>\\s*;\\s*rel=\"?next\"?"));
    for (int page = 0; page < 1000 && url.isValid(); ++page) {
        const Result r = get(url, {}, config_.token, origin, {}, {}, cancel, 30000);
        if (r.cancelled) throw DownloadError("cancelled", true);
        if (!r.error.isEmpty() || r.stalled)
            throw DownloadError("cannot reach " + text(config_.endpoint) + ": " + text(r.stalled ? QStringLiteral("no answer") : r.error));
        if (r.status != 200) throw DownloadError(text(refusal(r.status, QStringLiteral("the repository %1").arg(repo))));
        if (r.tooLarge) throw DownloadError(text(config_.endpoint) + " sent a listing of " + text(repo) + " too large to read");
        auto pageFiles = parseFileList(r.body, repo);
        files.insert(files.end(), std::make_move_iterator(pageFiles.begin()), std::make_move_iterator(pageFiles.end()));
        const auto m = next.match(QString::fromLatin1(r.link));
        url = m.hasMatch() ? url.resolved(QUrl(m.captured(1))) : QUrl();
        if (url.isValid() && !sameOrigin(url, origin)) break;  // (the next page elsewhere: not followed)
    }
    return files;
}

QString downloadModel(const HubClient& hub, const QString& repo, const std::vector<RemoteFile>& files, const QString& file, const QString& folder,
                      const std::function<void(int, int, const DownloadProgress&)>& progress, const std::function<void(int, int, bool)>& partDone,
                      const std::atomic<bool>* cancel) {
    const auto parts = modelParts(files, file);
    if (parts.empty()) throw DownloadError(text(repo) + " has no file " + text(file) + " (or not all the parts of it)");
    const HubConfig& config = hub.config();
    const int count = static_cast<int>(parts.size());
    QString first;
    for (int i = 0; i < count; ++i) {
        if (cancel && cancel->load()) throw DownloadError("cancelled", true);
        const auto& f = parts[static_cast<std::size_t>(i)];
        const QString target = QDir(folder).filePath(f.path);
        if (first.isEmpty()) first = target;
        if (QFileInfo::exists(target) && (f.size < 0 || QFileInfo(target).size() == f.size)) {
            if (partDone) partDone(i, count, true);
            continue;
        }
        downloadFile(hub.fileUrl(repo, f.path), target, f.size, f.sha256, [&](const DownloadProgress& p) {
            if (progress) progress(i, count, p);
        }, cancel, {.token = config.token, .tokenOrigin = QUrl(config.endpoint)});
        if (partDone) partDone(i, count, false);
    }
    return first;
}

QString downloadModel(const HubClient& hub, const QString& repo, const QString& file, const QString& folder,
                      const std::function<void(int, int, const DownloadProgress&)>& progress, const std::function<void(int, int, bool)>& partDone,
                      const std::atomic<bool>* cancel) {
    if (cancel && cancel->load()) throw DownloadError("cancelled", true);
    return downloadModel(hub, repo, hub.listFiles(repo, cancel), file, folder, progress, partDone, cancel);
}

std::vector<HubModel> HubClient::searchModels(const QString& words, int limit, const std::atomic<bool>* cancel) const {
    QUrl url(config_.endpoint + QStringLiteral("/api/models"));
    QUrlQuery query;
    query.addQueryItem(QStringLiteral("search"), words.trimmed());
    query.addQueryItem(QStringLiteral("filter"), QStringLiteral("gguf"));
    query.addQueryItem(QStringLiteral("sort"), QStringLiteral("downloads"));
    query.addQueryItem(QStringLiteral("direction"), QStringLiteral("-1"));
    query.addQueryItem(QStringLiteral("limit"), QString::number(std::clamp(limit, 1, 1000)));
    url.setQuery(query);
    const Result r = get(url, {}, config_.token, QUrl(config_.endpoint), {}, {}, cancel, 30000);
    if (r.cancelled) throw DownloadError("cancelled", true);
    if (!r.error.isEmpty() || r.stalled)
        throw DownloadError("cannot reach " + text(config_.endpoint) + ": " + text(r.stalled ? QStringLiteral("no answer") : r.error));
    if (r.status != 200) throw DownloadError(text(refusal(r.status, QStringLiteral("the Hub's search"))));
    if (r.tooLarge) throw DownloadError(text(config_.endpoint) + " sent a search answer too large to read");
    auto found = parseModelSearch(r.body);
    std::stable_sort(found.begin(), found.end(), [](const HubModel& a, const HubModel& b) { return a.downloads > b.downloads; });
    if (found.size() > static_cast<std::size_t>(std::max(limit, 1))) found.resize(static_cast<std::size_t>(std::max(limit, 1)));
    return found;
}

std::vector<HubModel> parseModelSearch(const QByteArray& json) {
    const QJsonDocument doc = QJsonDocument::fromJson(json);
    if (!doc.isArray()) throw DownloadError("the Hub answered something that is not a list of models");
    std::vector<HubModel> models;
    const auto count = [](const QJsonValue& v) {
        const double d = v.toDouble(0);
        return d >= 0 && d < 9007199254740992.0 ? static_cast<qint64>(d) : qint64{0};
    };
    for (const QJsonValue& v : doc.array()) {
        const QJsonObject o = v.toObject();
        HubModel m;
        m.id = o.value(QStringLiteral("id")).toString(o.value(QStringLiteral("modelId")).toString());
        const auto repo = parseRepoFile(m.id);
        if (!repo || !repo->file.isEmpty()) continue;  // (only "owner/name")
        m.downloads = count(o.value(QStringLiteral("downloads")));
        m.likes = count(o.value(QStringLiteral("likes")));
        // "gated": false, "auto" or "manual"
        const QJsonValue gated = o.value(QStringLiteral("gated"));
        m.gated = gated.isString() ? !gated.toString().isEmpty() && gated.toString() != QLatin1String("false") : gated.toBool(false);
        models.push_back(std::move(m));
    }
    return models;
}

std::vector<RemoteFile> parseFileList(const QByteArray& json, const QString& repo) {
    const QJsonDocument doc = QJsonDocument::fromJson(json);
    if (!doc.isArray()) throw DownloadError("the Hub answered something that is not a list of files for " + text(repo));
    static const QRegularExpression hex64(QStringLiteral("^[0-9a-f]{64}$"));
    std::vector<RemoteFile> files;
    for (const QJsonValue& v : doc.array()) {
        const QJsonObject o = v.toObject();
        if (o.value(QStringLiteral("type")).toString() != QLatin1String("file")) continue;
        RemoteFile f;
        f.path = o.value(QStringLiteral("path")).toString();
        // Sizes are whole, non-negative and below 2^53 (what a JSON number holds exactly); else unknown.
        const auto size = [](const QJsonValue& n) {
            const double d = n.toDouble(-1);
            return d >= 0 && d < 9007199254740992.0 && d == static_cast<double>(static_cast<qint64>(d)) ? static_cast<qint64>(d) : qint64{-1};
        };
        f.size = size(o.value(QStringLiteral("size")));
        const QJsonObject lfs = o.value(QStringLiteral("lfs")).toObject();
        const QString oid = lfs.value(QStringLiteral("oid")).toString().toLower();
        if (hex64.match(oid).hasMatch()) f.sha256 = oid;
        if (lfs.contains(QStringLiteral("size"))) f.size = size(lfs.value(QStringLiteral("size")));
        // A path is a relative name inside the repository: no "..", no absolute paths.
        bool safe = !f.path.isEmpty() && !f.path.startsWith(QLatin1Char('/')) && !f.path.contains(QLatin1Char('\\'));
        for (const QString& segment : f.path.split(QLatin1Char('/'))) safe = safe && !segment.isEmpty() && segment != QLatin1String("..") && segment != QLatin1String(".");
        if (safe) files.push_back(std::move(f));
    }
    return files;
}

std::optional<RepoFile> parseRepoFile(const QString& textIn) {
    static const QRegularExpression pattern(QStringLiteral("^([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(?::(.+))?$"));
    const auto m = pattern.match(textIn.trimmed());
    if (!m.hasMatch()) return std::nullopt;
    RepoFile r{m.captured(1), m.captured(2)};
    if (r.repo.contains(QLatin1String(".."))) return std::nullopt;
    for (const QString& segment : r.file.split(QLatin1Char('/')))
        if (!r.file.isEmpty() && (segment.isEmpty() || segment == QLatin1String("..") || segment == QLatin1String("."))) return std::nullopt;
    return r;
}

std::vector<RemoteFile> modelParts(const std::vector<RemoteFile>& files, const QString& file) {
    static const QRegularExpression split(QStringLiteral("^(.*)-(\\d{5})-of-(\\d{5})\\.gguf$"));
    const auto m = split.match(file);
    std::vector<RemoteFile> parts;
    if (!m.hasMatch()) {
        for (const auto& f : files)
            if (f.path == file) parts.push_back(f);
        return parts;
    }
    const int count = m.captured(3).toInt();
    std::map<int, RemoteFile> found;
    for (const auto& f : files) {
        const auto p = split.match(f.path);
        if (p.hasMatch() && p.captured(1) == m.captured(1) && p.captured(3).toInt() == count) found[p.captured(2).toInt()] = f;
    }
    for (int i = 1; i <= count; ++i) {
        const auto it = found.find(i);
        if (it == found.end()) return {};  // (a part is missing: not a model that can be downloaded whole)
        parts.push_back(it->second);
    }
    return parts;
}

void downloadFile(const QUrl& url, const QString& target, qint64 size, const QString& sha256, const ProgressFn& progress,
                  const std::atomic<bool>* cancel, const DownloadOptions& options) {
    const QFileInfo info(target);
    if (!QDir().mkpath(info.absolutePath())) throw DownloadError("cannot create the folder " + text(info.absolutePath()));
    const QString part = target + QStringLiteral(".part");
    qint64 total = size;
    QElapsedTimer clock;
    clock.start();
    int failures = 0;  // tries in a row that brought no bytes
    for (int attempt = 1;; ++attempt) {
        if (cancel && cancel->load()) throw DownloadError("cancelled", true);
        QFile file(part);
        qint64 have = file.exists() ? file.size() : 0;
        if (total >= 0 && have > total) {  // (not this file's part)
            file.remove();
            have = 0;
        }
        if (total >= 0 && have == total) {
            if (!file.exists()) {  // (an empty file: its part is made here)
                if (!file.open(QIODevice::WriteOnly)) throw DownloadError("cannot write " + text(part) + ": " + text(file.errorString()));
                file.close();
            }
            break;
        }
        if (const QStorageInfo disk(info.absolutePath()); disk.isValid() && total >= 0 && disk.bytesAvailable() < total - have + kDiskMargin)
            throw DownloadError(text(QStringLiteral("%1 needs %2 more on %3, which has %4 free").arg(info.fileName(), formatSize(total - have), disk.rootPath(),
                                                                                                  formatSize(disk.bytesAvailable()))));
        if (!file.open(QIODevice::ReadWrite)) throw DownloadError("cannot write " + text(part) + ": " + text(file.errorString()));
        file.seek(have);
        QList<std::pair<QByteArray, QByteArray>> headers;
        if (have > 0) headers.push_back({"Range", "bytes=" + QByteArray::number(have) + "-"});
        qint64 done = have, lastDone = have;
        qint64 lastReport = -1;
        double rate = 0;
        QString writeError;
        const auto report = [&](bool force) {
            const qint64 now = clock.elapsed();
            if (!progress || (!force && lastReport >= 0 && now - lastReport < 200)) return;
            if (lastReport >= 0 && now > lastReport) {
                const double instant = static_cast<double>(done - lastDone) * 1000.0 / static_cast<double>(now - lastReport);
                rate = rate == 0 ? instant : 0.7 * rate + 0.3 * instant;
            }
            lastReport = now;
            lastDone = done;
            progress({done, total, rate, attempt});
        };
        bool badRange = false;
        QString sizeMismatch;  // the server's file is not the size the Hub gave: not worth retrying
        const auto checkTotal = [&](qint64 serverTotal) {
            if (total >= 0 && serverTotal != total)
                sizeMismatch = QStringLiteral("the server's %1 is %2 bytes, not the %3 the Hub lists").arg(info.fileName()).arg(serverTotal).arg(total);
            else if (total < 0) total = serverTotal;
            return sizeMismatch.isEmpty();
        };
        const auto onHeaders = [&](int status, QNetworkReply& reply) {
            if (status == 206) {
                // The answer must start where the part file ends ("bytes 100-999/1000").
                const QByteArray range = reply.rawHeader("Content-Range");
                const auto m = QRegularExpression(QStringLiteral("^bytes (\\d+)-(\\d+)/(\\d+)$")).match(QString::fromLatin1(range));
                if (!m.hasMatch() || m.captured(1).toLongLong() != have) {
                    badRange = true;
                    return false;
                }
                return checkTotal(m.captured(3).toLongLong());
            }
            if (status == 200) {
                // The whole file (a server without ranges): start the part file over.
                const QVariant length = reply.header(QNetworkRequest::ContentLengthHeader);
                if (length.isValid() && !checkTotal(length.toLongLong())) return false;
                file.resize(0);
                file.seek(0);
                done = have = 0;
                return true;
            }
            return false;
        };
        bool oversize = false;
        const auto sink = [&](const QByteArray& chunk) {
            if (total >= 0 && done + chunk.size() > total) return !(oversize = true);  // (more than the file has: stop now)
            if (file.write(chunk) != chunk.size()) {
                writeError = file.errorString();
                return false;
            }
            done += chunk.size();
            report(false);
            return true;
        };
        const Result r = get(url, headers, options.token, options.tokenOrigin, onHeaders, sink, cancel, options.stallTimeoutMs);
        file.close();
        report(true);
        if (!writeError.isEmpty()) throw DownloadError("cannot write " + text(part) + ": " + text(writeError));
        if (r.cancelled) throw DownloadError("cancelled", true);
        if (!sizeMismatch.isEmpty()) throw DownloadError(text(sizeMismatch) + "; nothing was kept");
        const bool bodyStatus = r.status == 200 || r.status == 206;
        const qint64 now = QFileInfo(part).exists() ? QFileInfo(part).size() : 0;
        if (r.status == 416 || badRange || oversize) {
            // A range the server will not give from the part file, or more bytes than the file has:
            // the part file is not this file's beginning; start over.
            QFile::remove(part);
        } else if (r.status != 0 && !bodyStatus && r.status < 500 && r.status != 429) {
            throw DownloadError(text(refusal(r.status, info.fileName())));
        } else if (bodyStatus && r.error.isEmpty() && !r.stalled && !r.aborted && (total < 0 || now == total)) {
            if (total < 0) total = now;
            break;
        }
        // A drop, a stall, a 5xx or 429: again, a little later, from where the part file ends. The
        // count of tries starts over whenever a try brought bytes.
        failures = now > have ? 1 : failures + 1;
        if (failures > options.retries) {
            const QString why = r.stalled ? QStringLiteral("the server stopped sending")
                                : oversize ? QStringLiteral("the server sent more than the file has")
                                : !r.error.isEmpty() ? r.error : QStringLiteral("HTTP %1").arg(r.status);
            throw DownloadError(text(QStringLiteral("%1 did not finish after %2 tries (%3); what arrived is kept, and the next try goes on from there")
                                         .arg(info.fileName())
                                         .arg(failures)
                                         .arg(why)));
        }
        if (!backoff(options.firstBackoffMs << std::min(failures - 1, 6), cancel)) throw DownloadError("cancelled", true);
    }
    if (!sha256.isEmpty()) {
        const QString got = hashFile(part, cancel);
        if (got.compare(sha256, Qt::CaseInsensitive) != 0) {
            QFile::remove(part);
            throw DownloadError(text(QStringLiteral("%1 arrived damaged: its SHA-256 is %2, not the %3 the Hub gives; the partial file was deleted, "
                                                    "so the next try starts over")
                                         .arg(info.fileName(), got.left(12), sha256.left(12))));
        }
    }
    if (QFile::exists(target) && !QFile::remove(target)) throw DownloadError("cannot replace " + text(target));
    if (!QFile::rename(part, target)) throw DownloadError("cannot move " + text(part) + " to " + text(target));
}

QString formatDuration(double seconds) {
    const auto s = static_cast<qint64>(seconds);
    return s >= 3600 ? QStringLiteral("%1:%2:%3").arg(s / 3600).arg(s / 60 % 60, 2, 10, QLatin1Char('0')).arg(s % 60, 2, 10, QLatin1Char('0'))
                     : QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

QString formatSize(qint64 bytes) {
    const double b = static_cast<double>(bytes);
    if (b >= 1e9) return QStringLiteral("%1 GB").arg(b / 1e9, 0, 'f', 2);
    if (b >= 1e6) return QStringLiteral("%1 MB").arg(b / 1e6, 0, 'f', 1);
    if (b >= 1e3) return QStringLiteral("%1 kB").arg(b / 1e3, 0, 'f', 1);
    return QStringLiteral("%1 bytes").arg(bytes);
}

}  // namespace lumen::app
