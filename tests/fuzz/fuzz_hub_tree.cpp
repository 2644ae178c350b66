// The Hub's tree API answer (untrusted JSON from the network): a list of files or a
// DownloadError, every path kept a relative name inside the repository, sizes known or -1.
#include <QByteArray>
#include <cstdint>
#include <cstdlib>

#include "app/downloader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen;
    try {
        const auto files = app::parseFileList(QByteArray(reinterpret_cast<const char*>(data), static_cast<qsizetype>(size)), QStringLiteral("owner/name"));
        for (const auto& f : files) {
            if (f.path.isEmpty() || f.path.startsWith(QLatin1Char('/')) || f.path.split(QLatin1Char('/')).contains(QStringLiteral(".."))) std::abort();
            if (f.size < -1) std::abort();
            if (!f.sha256.isEmpty() && f.sha256.size() != 64) std::abort();
            (void)app::modelParts(files, f.path);
        }
    } catch (const app::DownloadError&) {
    }
    try {  // the same bytes as a search answer
        for (const auto& m : app::parseModelSearch(QByteArray(reinterpret_cast<const char*>(data), static_cast<qsizetype>(size)))) {
            if (!app::parseRepoFile(m.id) || m.id.contains(QLatin1Char(':')) || m.downloads < 0 || m.likes < 0) std::abort();
        }
    } catch (const app::DownloadError&) {
    }
    return 0;
}
