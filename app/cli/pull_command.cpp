// lumen-cli pull: a model from the Hugging Face Hub (or HF_ENDPOINT's mirror) into the models
// folder, resumed where an earlier try stopped, checked against the Hub's SHA-256.
#include "app/cli/commands.h"

#include <QCommandLineParser>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <atomic>
#include <csignal>
#include <unistd.h>

#include "app/app_paths.h"
#include "app/downloader.h"

namespace lumen::app::cli {
namespace {

std::atomic<bool> gPullInterrupted{false};
extern "C" void onPullInterrupt(int) { gPullInterrupted.store(true); }

}  // namespace

// pull --search WORDS: GGUF repositories on the Hub whose name has the words, most downloaded first.
int searchHub(Context& ctx, const HubClient& hub) {
    const QString words = ctx.parser.value(QStringLiteral("search")).trimmed();
    if (words.isEmpty() || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: pull --search takes the words to look for: lumen-cli pull --search \"qwen3 4b\"\n";
        return kUsage;
    }
    try {
        const auto found = hub.searchModels(words, 30, &gPullInterrupted);
        if (found.empty()) {
            ctx.err << "lumen-cli: no GGUF repository on " << hub.config().endpoint << " matches '" << words << "'\n";
            return kFailed;
        }
        for (const auto& m : found)
            ctx.out << m.id << "  " << m.downloads << " downloads, " << m.likes << " likes" << (m.gated ? QStringLiteral("  (gated: needs an access token)") : QString())
                    << "\n";
        ctx.err << "lumen-cli: list a repository's files with: lumen-cli pull " << found.front().id << "\n";
        return kOk;
    } catch (const DownloadError& e) {
        return fail(ctx, e);
    }
}

int cmdPull(Context& ctx) {
    if (ctx.parser.isSet(QStringLiteral("search"))) return searchHub(ctx, HubClient(hubConfig()));
    const auto spec = ctx.positional.size() == 1 ? parseRepoFile(ctx.positional[0]) : std::nullopt;
    if (!spec) {
        ctx.err << "lumen-cli: pull takes one repository and file: lumen-cli pull OWNER/NAME[:FILE.gguf] [--dir DIR]\n";
        return kUsage;
    }
    const HubClient hub(hubConfig());
    gPullInterrupted.store(false);
    const auto previous = std::signal(SIGINT, onPullInterrupt);
    struct Restore {
        void (*handler)(int);
        ~Restore() { std::signal(SIGINT, handler); }
    } restore{previous};
    try {
        const auto files = hub.listFiles(spec->repo, &gPullInterrupted);
        if (spec->file.isEmpty()) {
            // Which file: the repository's GGUFs (a multi-part model once), for the user to choose.
            ctx.err << "lumen-cli: " << spec->repo << " has these GGUF files; choose one: lumen-cli pull " << spec->repo << ":FILE\n";
            int shown = 0;
            for (const auto& f : files) {
                if (!f.path.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive)) continue;
                const auto parts = modelParts(files, f.path);
                if (parts.size() > 1 && parts.front().path != f.path) continue;
                qint64 size = 0;
                for (const auto& p : parts) size += std::max<qint64>(0, p.size);
                ctx.out << "  " << f.path << "  " << formatSize(size) << (parts.size() > 1 ? QStringLiteral("  (%1 parts)").arg(parts.size()) : QString()) << "\n";
                ++shown;
            }
            if (shown == 0) ctx.err << "lumen-cli: (none: " << spec->repo << " holds no .gguf file)\n";
            return kUsage;
        }
        QString dir = ctx.parser.value(QStringLiteral("dir"));
        if (dir.isEmpty())
            dir = QDir(resolveModelsFolder({ctx.parser.value(QStringLiteral("database")), ctx.parser.value(QStringLiteral("data-dir"))})).filePath(spec->repo);
        const bool terminal = isatty(STDERR_FILENO);
        const auto parts = modelParts(files, spec->file);
        if (parts.empty()) {
            ctx.err << "lumen-cli: " << spec->repo << " has no file " << spec->file
                    << " (or not all the parts of it); lumen-cli pull " << spec->repo << " lists its GGUF files\n";
            return kFailed;
        }
        const auto labelOf = [&](int part, int count) {
            const QString name = QFileInfo(parts[static_cast<std::size_t>(part)].path).fileName();
            return count > 1 ? QStringLiteral("%1 (part %2 of %3)").arg(name).arg(part + 1).arg(count) : name;
        };
        int lastTenth = -1;
        const auto progress = [&](int part, int count, const DownloadProgress& p) {
            const QString label = labelOf(part, count);
            const double fraction = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 0.0;
            const QString left = p.bytesPerSecond > 0 && p.total > 0 ? formatDuration(static_cast<double>(p.total - p.done) / p.bytesPerSecond) : QStringLiteral("--:--");
            const QString line = QStringLiteral("%1  %2 of %3  %4/s  %5 left%6")
                                     .arg(label, formatSize(p.done), p.total >= 0 ? formatSize(p.total) : QStringLiteral("?"),
                                          formatSize(static_cast<qint64>(p.bytesPerSecond)), left,
                                          p.attempt > 1 ? QStringLiteral("  (try %1)").arg(p.attempt) : QString());
            if (terminal) {
                const int width = 30, filled = static_cast<int>(fraction * width);
                ctx.err << "\r[" << QString(filled, QLatin1Char('#')) << QString(width - filled, QLatin1Char('.')) << "] "
                        << QStringLiteral("%1%").arg(fraction * 100.0, 5, 'f', 1) << "  " << line << "\x1b[K";
                ctx.err.flush();
            } else if (const int tenth = static_cast<int>(fraction * 10.0); tenth != lastTenth) {  // plain lines, one per tenth
                lastTenth = tenth;
                ctx.err << QStringLiteral("%1%").arg(tenth * 10) << "  " << line << "\n";
                ctx.err.flush();
            }
        };
        const auto partDone = [&](int part, int count, bool already) {
            lastTenth = -1;
            if (already) {
                ctx.err << labelOf(part, count) << ": already here\n";
                return;
            }
            if (terminal) ctx.err << "\n";
            ctx.err << labelOf(part, count) << ": done" << (parts[static_cast<std::size_t>(part)].sha256.isEmpty() ? "" : ", SHA-256 checked") << "\n";
        };
        const QString firstTarget = downloadModel(hub, spec->repo, files, spec->file, dir, progress, partDone, &gPullInterrupted);
        ctx.out << firstTarget << "\n";  // (what to open: the first part of a multi-part model)
        return kOk;
    } catch (const DownloadError& e) {
        if (e.cancelled()) {
            ctx.err << "\nlumen-cli: stopped; what arrived is kept, and the same command goes on from there\n";
            return kFailed;
        }
        return fail(ctx, e);
    }
}

}  // namespace lumen::app::cli
