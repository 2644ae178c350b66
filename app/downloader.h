#pragma once
// Getting model files from the Hugging Face Hub (or a mirror): a repository's files with their
// sizes and SHA-256s from the Hub's API, and downloads that survive what downloads meet. Bytes go
// to `<target>.part`; a part file left by a dropped connection, a crash or a restart is resumed
// with an HTTP Range request; dropped connections, stalls and 5xx answers are retried with
// backoff; the SHA-256 is checked before the part file is moved into place (a mismatch deletes
// it), so nothing half-written is ever where a model is looked for. Free disk space is checked
// before starting. TLS verification stays on; redirects are followed to https only (plain http
// only on the loopback, for tests), and the access token is sent only to the Hub's own host.
//
// The calls block, running a local event loop: call them from a job (the runner's downloads
// lane) or from lumen-cli, never from the window's thread.

#include <QString>
#include <QUrl>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <vector>

namespace lumen::app {

// The Hub's address and the access token: the HF_ENDPOINT and HF_TOKEN environment variables
// (as huggingface_hub reads them) over the settings, over https://huggingface.co and none.
struct HubConfig {
    QString endpoint;
    QString token;
};
HubConfig hubConfig(const QString& endpointSetting = {}, const QString& tokenSetting = {});

// A download or Hub request that failed, with what the user should know. `cancelled` when it
// was stopped on request (the part file stays for a later resume).
class DownloadError : public std::runtime_error {
public:
    DownloadError(const std::string& what, bool cancelled = false) : std::runtime_error(what), cancelled_(cancelled) {}
    bool cancelled() const { return cancelled_; }

private:
    bool cancelled_;
};

struct RemoteFile {
    QString path;    // in the repository: "Qwen3-4B-Q4_K_M.gguf", "sub/dir/x.gguf"
    qint64 size = -1;
    QString sha256;  // the LFS object id (lowercase hex); empty for files not in LFS
};

// The Hub's tree API answer (a JSON list of {type, path, size, lfs: {oid, size}}): its files.
// Throws DownloadError for anything that is not such a list; entries it cannot use are skipped.
std::vector<RemoteFile> parseFileList(const QByteArray& json, const QString& repo);

// A repository the Hub's search found.
struct HubModel {
    QString id;  // "owner/name"
    qint64 downloads = 0, likes = 0;
    bool gated = false;
};
// The Hub's model search answer (a JSON list of {id, downloads, likes, gated, ...}): the
// repositories with a well-formed "owner/name". Throws DownloadError for anything not a list.
std::vector<HubModel> parseModelSearch(const QByteArray& json);

class HubClient {
public:
    explicit HubClient(HubConfig config);
    // GGUF repositories whose name has `words`, the most downloaded first (at most `limit`).
    // Throws DownloadError.
    std::vector<HubModel> searchModels(const QString& words, int limit = 30, const std::atomic<bool>* cancel = nullptr) const;
    // The repository's files ("owner/name", revision main). Throws DownloadError (a repository
    // that does not exist, or a gated one without a token that may read it, says so).
    std::vector<RemoteFile> listFiles(const QString& repo, const std::atomic<bool>* cancel = nullptr) const;
    QUrl fileUrl(const QString& repo, const QString& path) const;
    const HubConfig& config() const { return config_; }

private:
    HubConfig config_;
};

// A repository and file as lumen-cli pull takes them: "owner/name" or "owner/name:file.gguf".
// nullopt for anything else (no owner, spaces, "..").
struct RepoFile {
    QString repo, file;
};
std::optional<RepoFile> parseRepoFile(const QString& text);

// Multi-part GGUFs ("x-00001-of-00003.gguf"): the other parts of the model `file` names, in
// order, among `files`; just `file` for a single-file model.
std::vector<RemoteFile> modelParts(const std::vector<RemoteFile>& files, const QString& file);

struct DownloadProgress {
    qint64 done = 0;           // bytes in the part file
    qint64 total = -1;         // the file's size (-1: not known)
    double bytesPerSecond = 0; // over the last seconds
    int attempt = 1;           // 2 and up: retrying after a drop
};
using ProgressFn = std::function<void(const DownloadProgress&)>;

struct DownloadOptions {
    int retries = 5;               // tries in a row that bring no byte, after a drop, a stall or a 5xx
    int firstBackoffMs = 500;      // doubled at each retry
    int stallTimeoutMs = 30000;    // no byte for this long: dropped
    QString token;                 // sent as a bearer token to `tokenOrigin` only (scheme, host and port)
    QUrl tokenOrigin;
};

// Downloads `url` to `target` (see above). `size` and `sha256` (the Hub's) may be unknown (-1,
// empty): then the server's length is used and nothing is checked. Throws DownloadError.
void downloadFile(const QUrl& url, const QString& target, qint64 size, const QString& sha256, const ProgressFn& progress,
                  const std::atomic<bool>* cancel, const DownloadOptions& options = {});

// A model from a repository into `folder`: each part of it (modelParts of the repository's
// `files`) that is not already there whole, resumed where an earlier try stopped.
// `progress(part, parts, p)` as a part arrives (`part` from 0); `partDone(part, parts, already)`
// once a part is whole and checked (`already`: it was there). Returns the first part's path
// (what to open). Throws DownloadError (a file the repository does not have too).
QString downloadModel(const HubClient& hub, const QString& repo, const std::vector<RemoteFile>& files, const QString& file, const QString& folder,
                      const std::function<void(int part, int parts, const DownloadProgress&)>& progress,
                      const std::function<void(int part, int parts, bool already)>& partDone, const std::atomic<bool>* cancel);
// The same, listing the repository's files first.
QString downloadModel(const HubClient& hub, const QString& repo, const QString& file, const QString& folder,
                      const std::function<void(int part, int parts, const DownloadProgress&)>& progress,
                      const std::function<void(int part, int parts, bool already)>& partDone, const std::atomic<bool>* cancel);

// "1.2 GB", "340 MB": sizes as the download lines show them.
QString formatSize(qint64 bytes);
// "4:05", "1:02:09": a time left as the download lines show it.
QString formatDuration(double seconds);

}  // namespace lumen::app
