#pragma once
// The Hugging Face Hub as far as Lumen sees it, on 127.0.0.1 for the tests: the tree API, the
// search API, resolve redirects to a CDN host, byte ranges; it misbehaves on request (drops,
// stalls, 5xx, wrong bytes, a gated repository).

#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QSet>
#include <QTcpServer>
#include <QTcpSocket>
#include <QUrl>
#include <QUrlQuery>
#include <QtTest>
#include <map>

#include "storage/sha256.h"

namespace lumen::test {

inline QString sha256Of(const QByteArray& bytes) {
    return QString::fromStdString(storage::sha256Hex({reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size())}));
}

// The Hub, as far as downloads see it. Files live at /cdn/<repo>/<path> on "localhost" (another
// host name for the same server, as the Hub's CDN is another host).
class FakeHub : public QObject {
public:
    struct Request {
        QString path;
        QByteArray range, authorization, host;
    };
    int dropAfter = -1;     // the next file answer closes the connection after this many body bytes
    int drops = 1;          // how many answers drop so
    int pageSize = 0;       // > 0: the tree API answers in pages of this many entries, with a Link to the next
    int stallAfter = -1;    // the next file answer sends this many body bytes, then nothing
    int failures = 0;       // answers left to fail with 503
    bool corrupt = false;   // serve the files with one byte changed
    bool ignoreRange = false;
    QList<Request> requests;

    FakeHub() {
        QVERIFY(server_.listen(QHostAddress::LocalHost));
        connect(&server_, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket* socket = server_.nextPendingConnection()) {
                connect(socket, &QTcpSocket::readyRead, this, [this, socket] { serve(socket); });
                connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            }
        });
    }
    QString endpoint() const { return QStringLiteral("http://127.0.0.1:%1").arg(server_.serverPort()); }
    void addFile(const QString& repo, const QString& path, const QByteArray& bytes, bool lfs = true) { repos_[repo][path] = {bytes, lfs}; }
    void gate(const QString& repo) { gated_.insert(repo); }

private:
    struct File {
        QByteArray bytes;
        bool lfs = true;
    };
    void serve(QTcpSocket* socket) {
        QByteArray& buffer = pending_[socket];
        buffer += socket->readAll();
        const qsizetype end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const QList<QByteArray> lines = buffer.left(end).split('\n');
        pending_.remove(socket);
        const QList<QByteArray> first = lines.value(0).trimmed().split(' ');
        Request r;
        r.path = QString::fromUtf8(QByteArray::fromPercentEncoding(first.value(1)));
        for (const QByteArray& line : lines.mid(1)) {
            const qsizetype colon = line.indexOf(':');
            const QByteArray name = line.left(colon).trimmed().toLower(), value = line.mid(colon + 1).trimmed();
            if (name == "range") r.range = value;
            if (name == "authorization") r.authorization = value;
            if (name == "host") r.host = value;
        }
        requests << r;
        const auto authorized = [&](const QString& repo) { return !gated_.contains(repo) || r.authorization == "Bearer secret"; };
        static const QRegularExpression api(QStringLiteral("^/api/models/([^/]+/[^/]+)/tree/main"));
        if (QUrl(r.path).path() == QLatin1String("/api/models")) {  // the search: repositories whose name has the words
            const QUrlQuery query{QUrl(r.path)};
            if (query.queryItemValue(QStringLiteral("filter")) != QLatin1String("gguf")) return answer(socket, 400, "{\"error\":\"filter\"}");
            const QStringList words = query.queryItemValue(QStringLiteral("search")).toLower().split(QLatin1Char(' '), Qt::SkipEmptyParts);
            QJsonArray found;
            int downloads = 10;
            for (const auto& [repo, files] : repos_) {
                bool all = true;
                for (const QString& w : words) all = all && repo.toLower().contains(w);
                if (all) found.append(QJsonObject{{"_id", "x"}, {"id", repo}, {"downloads", downloads *= 7}, {"likes", 3}, {"gated", gated_.contains(repo) ? QJsonValue("manual") : QJsonValue(false)}});
            }
            return answer(socket, 200, QJsonDocument(found).toJson(QJsonDocument::Compact));
        }
        static const QRegularExpression resolve(QStringLiteral("^/([^/]+/[^/]+)/resolve/main/(.+)$"));
        static const QRegularExpression cdn(QStringLiteral("^/cdn/([^/]+/[^/]+)/(.+)$"));
        if (const auto m = api.match(QUrl(r.path).path()); m.hasMatch()) {
            if (!repos_.contains(m.captured(1))) return answer(socket, 404, "{\"error\":\"Repository not found\"}");
            if (!authorized(m.captured(1))) return answer(socket, 401, "{\"error\":\"Access to this model is restricted\"}");
            QJsonArray list;
            list.append(QJsonObject{{"type", "directory"}, {"path", "docs"}, {"size", 0}});
            for (const auto& [path, file] : repos_[m.captured(1)]) {
                QJsonObject o{{"type", "file"}, {"path", path}, {"size", file.lfs ? 134 : file.bytes.size()}, {"oid", "0123abcd"}};
                if (file.lfs) o["lfs"] = QJsonObject{{"oid", sha256Of(file.bytes)}, {"size", file.bytes.size()}, {"pointerSize", 134}};
                list.append(o);
            }
            if (pageSize > 0) {
                const int cursor = QUrlQuery(QUrl(r.path)).queryItemValue(QStringLiteral("cursor")).toInt();
                QJsonArray page;
                for (int i = cursor; i < list.size() && i < cursor + pageSize; ++i) page.append(list[i]);
                QByteArray link;
                if (cursor + pageSize < list.size())
                    link = "Link: <" + endpoint().toUtf8() + "/api/models/" + m.captured(1).toUtf8() + "/tree/main?recursive=true&cursor=" +
                           QByteArray::number(cursor + pageSize) + ">; rel=\"next\"\r\n";
                return answer(socket, 200, QJsonDocument(page).toJson(QJsonDocument::Compact), link);
            }
            return answer(socket, 200, QJsonDocument(list).toJson(QJsonDocument::Compact));
        }
        if (const auto m = resolve.match(r.path); m.hasMatch()) {
            if (!authorized(m.captured(1))) return answer(socket, 401, "denied");
            // To the "CDN": another host name, as the Hub's files come from another host.
            return answer(socket, 302, {}, "Location: http://localhost:" + QByteArray::number(server_.serverPort()) + "/cdn/" +
                                                 QUrl::toPercentEncoding(m.captured(1), "/") + "/" + QUrl::toPercentEncoding(m.captured(2), "/") + "\r\n");
        }
        if (const auto m = cdn.match(r.path); m.hasMatch() && repos_.contains(m.captured(1)) && repos_[m.captured(1)].count(m.captured(2))) {
            if (failures > 0) {
                --failures;
                return answer(socket, 503, "busy");
            }
            QByteArray bytes = repos_[m.captured(1)][m.captured(2)].bytes;
            if (corrupt) bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
            qint64 from = 0;
            if (const auto rm = QRegularExpression(QStringLiteral("^bytes=(\\d+)-$")).match(QString::fromLatin1(r.range)); rm.hasMatch() && !ignoreRange)
                from = rm.captured(1).toLongLong();
            if (from > bytes.size()) return answer(socket, 416, {});
            const QByteArray body = bytes.mid(from);
            QByteArray head = "HTTP/1.1 " + QByteArray(from > 0 ? "206 Partial Content" : "200 OK") + "\r\nContent-Length: " + QByteArray::number(body.size()) +
                              "\r\nConnection: close\r\n";
            if (from > 0) head += "Content-Range: bytes " + QByteArray::number(from) + "-" + QByteArray::number(bytes.size() - 1) + "/" + QByteArray::number(bytes.size()) + "\r\n";
            socket->write(head + "\r\n");
            if (dropAfter >= 0) {
                socket->write(body.left(dropAfter));
                if (--drops <= 0) dropAfter = -1;
                socket->disconnectFromHost();
                return;
            }
            if (stallAfter >= 0) {
                socket->write(body.left(stallAfter));
                stallAfter = -1;
                stalled_ << socket;  // (held open, silent)
                return;
            }
            socket->write(body);
            socket->disconnectFromHost();
            return;
        }
        answer(socket, 404, "not found");
    }
    void answer(QTcpSocket* socket, int status, const QByteArray& body, const QByteArray& extra = {}) {
        socket->write("HTTP/1.1 " + QByteArray::number(status) + " X\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\nConnection: close\r\n" + extra +
                      "\r\n" + body);
        socket->disconnectFromHost();
    }
    QTcpServer server_;
    std::map<QString, std::map<QString, File>> repos_;
    QSet<QString> gated_;
    QHash<QTcpSocket*, QByteArray> pending_;
    QList<QTcpSocket*> stalled_;
};


}  // namespace lumen::test
