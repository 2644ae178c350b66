// lumen-cli's commands on the machine and the stored chats: info, chats, export, import, search, restore.
#include "app/cli/commands.h"

#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>
#include <filesystem>
#include <memory>
#include <optional>

#include "app/app_paths.h"
#include "app/library.h"
#include "app/llm_host.h"
#include "app/read_file.h"
#include "inference/core/backend.h"
#include "inference/core/compute_devices.h"
#include "inference/core/cpu_features.h"
#include "storage/database.h"

namespace lumen::app::cli {
namespace {

QString databasePath(const QCommandLineParser& p) {
    return resolveDatabasePath({p.value(QStringLiteral("database")), p.value(QStringLiteral("data-dir"))});
}

// Opens the library for a command; nullopt (with the message printed) when it cannot.
std::unique_ptr<Library> openLibrary(Context& ctx, bool create) {
    const QString path = databasePath(ctx.parser);
    if (!create && !QFile::exists(path)) {
        ctx.err << "lumen-cli: no database at " << path << " (nothing has been stored yet)\n";
        return nullptr;
    }
    if (const QString problem = ensureParentFolder(path); !problem.isEmpty()) {
        ctx.err << "lumen-cli: " << problem << "\n";
        return nullptr;
    }
    try {
        return std::make_unique<Library>(path);
    } catch (const storage::DamagedDatabase& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        if (e.backup()) ctx.err << "lumen-cli: `lumen-cli restore` puts the backup in its place (the damaged file is kept beside it)\n";
        return nullptr;
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        return nullptr;
    }
}

std::optional<std::int64_t> parseId(Context& ctx, const QString& text, const char* what) {
    bool ok = false;
    const qint64 id = text.toLongLong(&ok);
    if (!ok || id <= 0) {
        ctx.err << "lumen-cli: '" << text << "' is not a " << what << " id (a positive number; see `lumen-cli chats`)\n";
        return std::nullopt;
    }
    return id;
}

QString formatBytes(std::uint64_t bytes) {
    return QStringLiteral("%1 GiB").arg(static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0), 0, 'f', 1);
}

}  // namespace

// Puts the newest backup in place of a damaged database (the app's "Restore the Backup"). A
// database that passes its check is not replaced without --force: the backup may be a day old.
int cmdRestore(Context& ctx) {
    const QString path = databasePath(ctx.parser);
    const std::filesystem::path file = path.toStdString();
    if (!QFile::exists(path)) {
        ctx.err << "lumen-cli: no database at " << path << "\n";
        return kFailed;
    }
    const auto backup = storage::Database::newestBackup(file);
    if (!backup) {
        ctx.err << "lumen-cli: there is no backup of " << path << " to restore\n";
        return kFailed;
    }
    bool damaged = false;
    try {
        (void)storage::Database::open(file);  // (the check every open runs)
    } catch (const storage::Error&) {
        damaged = true;
    }
    if (!damaged && !ctx.parser.isSet(QStringLiteral("force"))) {
        ctx.err << "lumen-cli: " << path << " passes its integrity check; restoring " << QString::fromStdString(backup->string())
                << " would lose what was stored since it was made. Add --force to restore it anyway.\n";
        return kFailed;
    }
    try {
        const auto aside = storage::Database::restoreBackup(file, *backup);
        ctx.out << "restored " << path << " from " << QString::fromStdString(backup->string()) << "; the replaced file is kept as "
                << QString::fromStdString(aside.string()) << "\n";
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        return kFailed;
    }
    return kOk;
}

int cmdInfo(Context& ctx) {
    const auto& cpu = inference::cpuFeatures();
    ctx.out << "Lumen " << LUMEN_VERSION_STRING << "\n";
    ctx.out << "CPU: " << QString::fromStdString(cpu.brand.empty() ? cpu.vendor : cpu.brand) << "\n";
    ctx.out << "  cores: " << cpu.physicalCores << " physical, " << cpu.logicalCores << " logical\n";
    ctx.out << "  SIMD: " << QString::fromStdString(cpu.summary()) << "\n";
    ctx.out << "  kernels: " << QString::fromUtf8(inference::cpuKernelSet()) << "\n";
    const auto devices = inference::queryComputeDevices();
    ctx.out << "CUDA backend: " << (devices.cudaBuilt ? "built" : "not built") << "\n";
    for (const auto& gpu : devices.gpus)
        ctx.out << "  GPU " << gpu.index << ": " << QString::fromStdString(gpu.name) << ", compute "
                << gpu.computeMajor << "." << gpu.computeMinor << ", " << formatBytes(gpu.totalMemory)
                << " (" << formatBytes(gpu.freeMemory) << " free), " << gpu.multiprocessors << " SMs, "
                << QString::number(gpu.memoryBandwidth / 1e9, 'f', 0) << " GB/s peak\n";
    // Whether models will use it, as the app's settings say it.
    const auto status = gpuStatus();
    ctx.out << "  " << QString::fromStdString(status.text) << (status.usable ? " (--gpu-layers)" : "") << "\n";
    ctx.out << "Database: " << databasePath(ctx.parser) << "\n";
    return kOk;
}

int cmdChats(Context& ctx) {
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    const auto chats = library->chats().chats();
    if (chats.empty()) ctx.out << "(no chats)\n";
    for (const auto& chat : chats) {
        const QString when = QDateTime::fromMSecsSinceEpoch(chat.updatedAt).toString(QStringLiteral("yyyy-MM-dd hh:mm"));
        ctx.out << chat.id << "\t" << when << "\t" << library->chats().messages(chat.id).size()
                << " messages\t" << QString::fromStdString(chat.title) << "\n";
    }
    return kOk;
}

int cmdExport(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: export takes one chat id: lumen-cli export CHAT_ID [--format md|json] [--output FILE]\n";
        return kUsage;
    }
    const auto id = parseId(ctx, ctx.positional[0], "chat");
    if (!id) return kUsage;
    const QString format = ctx.parser.value(QStringLiteral("format"));
    if (format != QLatin1String("md") && format != QLatin1String("json")) {
        ctx.err << "lumen-cli: --format must be md or json, not '" << format << "'\n";
        return kUsage;
    }
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    std::string text;
    try {
        text = format == QLatin1String("md")
                   ? library->exportChat(*id, ChatFormat::Markdown)
                   : library->exportChat(*id, ChatFormat::Json);
    } catch (const storage::Error& e) {
        return fail(ctx, e);
    }
    const QString output = ctx.parser.value(QStringLiteral("output"));
    if (output.isEmpty() || output == QLatin1String("-")) {
        ctx.out << QString::fromStdString(text);
        return kOk;
    }
    QSaveFile file(output);
    if (!file.open(QIODevice::WriteOnly) || file.write(text.data(), static_cast<qint64>(text.size())) < 0 ||
        !file.commit()) {
        ctx.err << "lumen-cli: cannot write " << output << ": " << file.errorString() << "\n";
        return kFailed;
    }
    ctx.out << "wrote " << output << "\n";
    return kOk;
}

int cmdImport(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: import takes one file: lumen-cli import CHAT.json\n";
        return kUsage;
    }
    QString readError;
    const auto read = readUserFile(ctx.positional[0], kMaxExportFileBytes, readError);
    if (!read) {
        ctx.err << "lumen-cli: cannot read " << ctx.positional[0] << ": " << readError << "\n";
        return kFailed;
    }
    const QByteArray& bytes = *read;
    auto library = openLibrary(ctx, true);
    if (!library) return kFailed;
    try {
        const auto id = library->importChat(std::string_view(bytes.constData(), static_cast<std::size_t>(bytes.size())));
        ctx.out << "imported chat " << id << "\n";
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << ctx.positional[0] << ": " << QString::fromUtf8(e.what()) << "\n";
        return kFailed;
    }
    return kOk;
}

int cmdSearch(Context& ctx) {
    if (ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: search needs words to look for: lumen-cli search WORDS...\n";
        return kUsage;
    }
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    const auto hits = library->chats().search(ctx.positional.join(QLatin1Char(' ')).toStdString(), 50, {"*", "*", "…"});
    if (hits.empty()) ctx.out << "(no matches)\n";
    for (const auto& hit : hits) {
        ctx.out << hit.chatId << "\t" << QString::fromStdString(hit.chatTitle) << "\t";
        if (hit.messageId) ctx.out << "message " << *hit.messageId << ": ";
        ctx.out << QString::fromStdString(hit.snippet).simplified() << "\n";
    }
    return kOk;
}

}  // namespace lumen::app::cli
