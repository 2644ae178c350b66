#include "app/cli/commands.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <memory>

#include "app/read_file.h"
#include "inference/core/backend.h"
#include "inference/formats/format_error.h"
#include "vision/classifier.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"
#include "vision/image_decode.h"
#include "vision/mmproj.h"

namespace lumen::app::cli {
namespace {

using vision::Embedding;

// The prototype scale for features without a learned one (DINOv2): a softmax temperature of 0.05.
constexpr float kPrototypeScale = 20.0f;

struct Encoder {
    std::unique_ptr<inference::Backend> backend;
    std::unique_ptr<vision::ImageEncoder> model;
    vision::ClipModel* clip() const { return dynamic_cast<vision::ClipModel*>(model.get()); }
};

// --device auto (GPU when usable), cpu or gpu; --threads for the CPU.
std::unique_ptr<inference::Backend> visionBackend(Context& ctx, int threads) {
    const QString device = ctx.parser.value(QStringLiteral("device")).trimmed().toLower();
    if (device == QLatin1String("cpu")) return inference::makeCpuBackend({.threads = threads});
    if (device.isEmpty() || device == QLatin1String("auto") || device == QLatin1String("gpu")) {
        try {
            return inference::makeCudaBackend();
        } catch (const std::exception& e) {
            if (device == QLatin1String("gpu")) {
                ctx.err << "lumen-cli: --device gpu: " << QString::fromUtf8(e.what()) << "\n";
                return nullptr;
            }
            return inference::makeCpuBackend({.threads = threads});
        }
    }
    ctx.err << "lumen-cli: --device takes auto, cpu or gpu, not '" << device << "'\n";
    return nullptr;
}

// Opens --model. nullopt with the message printed (usage mistakes return through `status`).
std::optional<Encoder> openEncoder(Context& ctx, int& status) {
    const QString folder = ctx.parser.value(QStringLiteral("model"));
    status = kUsage;
    if (folder.isEmpty()) {
        ctx.err << "lumen-cli: --model DIR is needed: a CLIP or DINOv2 folder (config.json, model.safetensors, ...)\n";
        return std::nullopt;
    }
    const auto threads = numberOption<int>(ctx, "threads", 0, 0, 256);
    if (!threads) return std::nullopt;
    Encoder e;
    e.backend = visionBackend(ctx, *threads);
    if (!e.backend) return std::nullopt;
    status = kFailed;
    try {
        e.model = vision::openImageEncoder(folder.toStdString(), *e.backend);
    } catch (const std::exception& ex) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(ex.what()) << "\n";
        return std::nullopt;
    }
    return e;
}

// An image file decoded; nullopt with "lumen-cli: <what><path>: <reason>" printed when it cannot be.
std::optional<vision::RgbImage> loadImage(Context& ctx, const QString& path, const char* what = "") {
    QString error;
    if (const auto read = readUserFile(path, kMaxImageFileBytes, error)) {
        const QByteArray& bytes = *read;
        try {
            return vision::decodeImage({reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size())},
                                       {.neededSide = vision::kLargestModelSide});
        } catch (const vision::ImageError& e) {
            error = QString::fromUtf8(e.what());
        }
    }
    ctx.err << "lumen-cli: " << what << path << ": " << error << "\n";
    return std::nullopt;
}

QStringList splitLabels(const QString& text) {
    QStringList labels;
    for (const QString& l : text.split(QLatin1Char(','))) {
        const QString t = l.trimmed();
        if (!t.isEmpty()) labels << t;
    }
    return labels;
}

// The image files of a folder, sorted (files that are not images are skipped at decode time).
QStringList imagesIn(const QString& folder) {
    QStringList files;
    for (const QFileInfo& fi : QDir(folder).entryInfoList(QDir::Files | QDir::Readable, QDir::Name)) files << fi.filePath();
    return files;
}

// Labelled examples: one sub-folder per label. Labels of `wanted` (when given) keep their
// order; sub-folders that are not among them are an error.
std::optional<vision::Examples> loadExamples(Context& ctx, Encoder& enc, const QString& folder, const QStringList& wanted) {
    const QDir dir(folder);
    if (!dir.exists()) {
        ctx.err << "lumen-cli: --examples " << folder << ": no such folder\n";
        return std::nullopt;
    }
    const QStringList subfolders = dir.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
    vision::Examples ex;
    QStringList labels = wanted.isEmpty() ? subfolders : wanted;
    for (const QString& s : subfolders)
        if (!labels.contains(s)) {
            ctx.err << "lumen-cli: --examples: the sub-folder '" << s << "' is not one of the labels (" << labels.join(", ") << ")\n";
            return std::nullopt;
        }
    if (labels.isEmpty()) {
        ctx.err << "lumen-cli: --examples " << folder << " has no sub-folders: put each label's images in a folder named after it\n";
        return std::nullopt;
    }
    for (const QString& l : labels) ex.labels.push_back(l.toStdString());
    for (int k = 0; k < labels.size(); ++k) {
        int used = 0;
        for (const QString& file : imagesIn(dir.filePath(labels[k]))) {
            const auto img = loadImage(ctx, file, "skipping example ");
            if (!img) continue;
            ex.features.push_back(enc.model->embedImage(*img));
            ex.classOf.push_back(k);
            ++used;
        }
        if (used > 0) ctx.err << "examples: " << labels[k] << " (" << used << (used == 1 ? " image)\n" : " images)\n");
        ctx.err.flush();
    }
    if (ex.features.empty()) {
        ctx.err << "lumen-cli: --examples " << folder << " holds no readable images\n";
        return std::nullopt;
    }
    return ex;
}

// The classifier the options ask for: zero-shot (--labels), prototypes (--examples), or both
// blended (Tip-Adapter). nullopt with the message printed.
std::optional<vision::Classifier> buildClassifier(Context& ctx, Encoder& enc, QStringList labels, int& status) {
    status = kUsage;
    const QString examplesDir = ctx.parser.value(QStringLiteral("examples"));
    const auto alpha = numberOption<float>(ctx, "alpha", 1.0f, 0.0f, 1000.0f);
    const auto beta = numberOption<float>(ctx, "beta", 5.5f, 0.0f, 1000.0f);
    if (!alpha || !beta) return std::nullopt;
    if (labels.isEmpty() && examplesDir.isEmpty()) {
        ctx.err << "lumen-cli: give --labels \"a,b,...\" (zero-shot with CLIP), --examples DIR (few-shot), or both\n";
        return std::nullopt;
    }
    if (labels.removeDuplicates() > 0) {
        ctx.err << "lumen-cli: --labels lists a label twice\n";
        return std::nullopt;
    }
    vision::ClipModel* clip = enc.clip();
    if (!labels.isEmpty() && (!clip || !clip->hasText())) {
        ctx.err << "lumen-cli: --labels needs a CLIP model with its text encoder; " << QString::fromStdString(enc.model->description())
                << " classifies from --examples only\n";
        return std::nullopt;
    }
    status = kFailed;
    try {
        std::optional<vision::Classifier> zeroShot;
        if (!labels.isEmpty()) {
            std::vector<std::string> names, templates;
            for (const QString& l : labels) names.push_back(l.toStdString());
            for (const QString& t : ctx.parser.values(QStringLiteral("template"))) templates.push_back(t.toStdString());
            zeroShot = vision::Classifier::zeroShot(*clip, names, templates);
        }
        if (examplesDir.isEmpty()) return zeroShot;
        auto examples = loadExamples(ctx, enc, examplesDir, labels);
        if (!examples) return std::nullopt;
        if (zeroShot) return vision::Classifier::tipAdapter(std::move(*zeroShot), *examples, *alpha, *beta);
        return vision::Classifier::prototypes(*examples, clip ? clip->logitScale() : kPrototypeScale);
    } catch (const std::exception& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        return std::nullopt;
    }
}

QJsonArray toJson(const Embedding& e) {
    QJsonArray a;
    for (float v : e) a.append(static_cast<double>(v));
    return a;
}

}  // namespace

int cmdEmbed(Context& ctx) {
    const QStringList images = ctx.parser.values(QStringLiteral("image"));
    const QStringList texts = ctx.parser.values(QStringLiteral("text"));
    if (images.isEmpty() && texts.isEmpty()) {
        ctx.err << "lumen-cli: embed needs --image FILE or --text TEXT (each repeatable): lumen-cli embed --model DIR --image cat.jpg --text \"a cat\"\n";
        return kUsage;
    }
    // The image encoder: a CLIP/DINOv2 folder, or an mmproj file (the rows a LLaVA LLM receives,
    // for comparing against other tools).
    std::optional<Encoder> enc;
    std::unique_ptr<vision::Mmproj> mmproj;
    if (QFileInfo(ctx.parser.value(QStringLiteral("model"))).isFile()) {
        const auto threads = numberOption<int>(ctx, "threads", 0, 0, 256);
        if (!threads) return kUsage;
        enc.emplace();
        enc->backend = visionBackend(ctx, *threads);
        if (!enc->backend) return kUsage;
        try {
            mmproj = vision::Mmproj::load(ctx.parser.value(QStringLiteral("model")).toStdString(), *enc->backend);
        } catch (const std::exception& e) {
            return fail(ctx, e);
        }
    } else {
        int status = kOk;
        enc = openEncoder(ctx, status);
        if (!enc) return status;
    }
    if (!texts.isEmpty() && (!enc->clip() || !enc->clip()->hasText())) {
        ctx.err << "lumen-cli: --text needs a CLIP model with its text encoder; "
                << (mmproj ? QStringLiteral("an mmproj file embeds images only") : QString::fromStdString(enc->model->description()) + " has none") << "\n";
        return kUsage;
    }
    const bool json = ctx.parser.isSet(QStringLiteral("json")), normalize = ctx.parser.isSet(QStringLiteral("normalize"));
    QJsonArray results;
    int failures = 0;
    const auto report = [&](const char* kind, const QString& input, Embedding e) {
        const std::int64_t width = mmproj ? mmproj->outputWidth() : static_cast<std::int64_t>(e.size());
        const std::int64_t rows = static_cast<std::int64_t>(e.size()) / width;
        if (normalize && !mmproj) vision::normalize(e);
        if (json) {
            QJsonObject o{{"kind", kind}, {"input", input}, {"embedding", toJson(e)}};
            if (mmproj) o["rows"] = static_cast<double>(rows), o["width"] = static_cast<double>(width);
            results.append(o);
            return;
        }
        ctx.out << kind << " " << input << " (" << (mmproj ? QStringLiteral("%1 rows of %2").arg(rows).arg(width) : QStringLiteral("%1 values").arg(e.size())) << "):";
        for (float v : e) ctx.out << " " << QString::number(v, 'g', 7);
        ctx.out << "\n";
    };
    for (const QString& path : images) {
        const auto img = loadImage(ctx, path);
        if (!img) {
            ++failures;
            continue;
        }
        report("image", path, mmproj ? mmproj->encode(*img) : enc->model->embedImage(*img));
    }
    for (const QString& text : texts) {
        try {
            report("text", text, enc->clip()->embedText(text.toStdString()));
        } catch (const std::exception& e) {
            ctx.err << "lumen-cli: \"" << text << "\": " << QString::fromUtf8(e.what()) << "\n";
            ++failures;
        }
    }
    if (json) ctx.out << QJsonDocument(results).toJson(QJsonDocument::Indented);
    return failures ? kFailed : kOk;
}

int cmdClassify(Context& ctx) {
    if (ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: classify takes image files: lumen-cli classify --model DIR --labels \"cat,dog\" IMAGE...\n";
        return kUsage;
    }
    const auto topK = numberOption<int>(ctx, "top-k", 5, 1, 100000);
    if (!topK) return kUsage;
    int status = kOk;
    auto enc = openEncoder(ctx, status);
    if (!enc) return status;
    auto classifier = buildClassifier(ctx, *enc, splitLabels(ctx.parser.value(QStringLiteral("labels"))), status);
    if (!classifier) return status;
    const bool json = ctx.parser.isSet(QStringLiteral("json"));
    QJsonArray results;
    int failures = 0;
    for (const QString& path : ctx.positional) {
        const auto img = loadImage(ctx, path);
        if (!img) {
            ++failures;
            continue;
        }
        QElapsedTimer timer;
        timer.start();
        const auto scores = classifier->classify(enc->model->embedImage(*img), *topK);
        const double ms = static_cast<double>(timer.nsecsElapsed()) / 1e6;
        if (json) {
            QJsonArray top;
            for (const auto& s : scores)
                top.append(QJsonObject{{"label", QString::fromStdString(s.label)}, {"probability", static_cast<double>(s.probability)}});
            results.append(QJsonObject{{"image", path}, {"top", top}, {"ms", ms}});
            continue;
        }
        ctx.out << path << "  (" << QString::number(ms, 'f', 1) << " ms)\n";
        for (const auto& s : scores) ctx.out << "  " << QString::number(s.probability, 'f', 4) << "  " << QString::fromStdString(s.label) << "\n";
    }
    if (json) ctx.out << QJsonDocument(results).toJson(QJsonDocument::Indented);
    return failures ? kFailed : kOk;
}

int cmdEval(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: eval takes one test folder with a sub-folder of images per label: lumen-cli eval --model DIR (--labels ... | --examples DIR) TEST_DIR\n";
        return kUsage;
    }
    const QDir testDir(ctx.positional[0]);
    const QStringList classes = testDir.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
    if (!testDir.exists() || classes.isEmpty()) {
        ctx.err << "lumen-cli: " << ctx.positional[0] << " has no sub-folders: put each label's test images in a folder named after it\n";
        return kUsage;
    }
    int status = kOk;
    auto enc = openEncoder(ctx, status);
    if (!enc) return status;
    QStringList labels = splitLabels(ctx.parser.value(QStringLiteral("labels")));
    // Zero-shot without --labels: the test folder's sub-folders name the classes.
    if (labels.isEmpty() && ctx.parser.value(QStringLiteral("examples")).isEmpty()) labels = classes;
    auto classifier = buildClassifier(ctx, *enc, labels, status);
    if (!classifier) return status;
    std::vector<std::string> names = classifier->labels();
    std::vector<int> truth, predicted;
    for (const QString& cls : classes) {
        const auto it = std::find(names.begin(), names.end(), cls.toStdString());
        if (it == names.end()) {
            ctx.err << "lumen-cli: the test folder '" << cls << "' is not one of the classifier's labels\n";
            return kFailed;
        }
        for (const QString& file : imagesIn(testDir.filePath(cls))) {
            const auto img = loadImage(ctx, file, "skipping ");
            if (!img) continue;
            const auto top = classifier->classify(enc->model->embedImage(*img), 1);
            truth.push_back(static_cast<int>(it - names.begin()));
            predicted.push_back(static_cast<int>(std::find(names.begin(), names.end(), top[0].label) - names.begin()));
            ctx.err << "\r" << truth.size() << " images";
            ctx.err.flush();
        }
    }
    ctx.err << "\n";
    if (truth.empty()) {
        ctx.err << "lumen-cli: no readable test images in " << ctx.positional[0] << "\n";
        return kFailed;
    }
    const vision::Evaluation e = vision::evaluate(names, truth, predicted);
    ctx.out << "accuracy " << QString::number(e.accuracy, 'f', 4) << " (" << qRound(e.accuracy * e.total) << " of " << e.total << "), macro F1 "
            << QString::number(e.macroF1, 'f', 4) << "\n\n";
    int width = 5;
    for (const auto& n : names) width = std::max(width, static_cast<int>(n.size()));
    ctx.out << QStringLiteral("%1  precision  recall  F1\n").arg(QStringLiteral("label"), -width);
    for (std::size_t k = 0; k < names.size(); ++k)
        ctx.out << QStringLiteral("%1  %2  %3  %4\n")
                       .arg(QString::fromStdString(names[k]), -width)
                       .arg(e.precision[k], 9, 'f', 4)
                       .arg(e.recall[k], 6, 'f', 4)
                       .arg(e.f1[k], 6, 'f', 4);
    ctx.out << "\nconfusion (rows: true label, columns: predicted, in the order above)\n";
    for (std::size_t k = 0; k < names.size(); ++k) {
        ctx.out << QStringLiteral("%1 ").arg(QString::fromStdString(names[k]), -width);
        for (int c : e.confusion[k]) ctx.out << QStringLiteral(" %1").arg(c, 5);
        ctx.out << "\n";
    }
    return kOk;
}

}  // namespace lumen::app::cli
