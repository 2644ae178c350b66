// The desktop app's entry point: everything else lives in the libraries.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QMessageBox>
#include <QPushButton>

#include "app/app_paths.h"
#include "app/library.h"
#include "app/logging.h"
#include "ui/main_window.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("lumen"));
    QApplication::setApplicationDisplayName(QStringLiteral("Lumen"));
    QApplication::setApplicationVersion(QStringLiteral(LUMEN_VERSION_STRING));
    QApplication::setDesktopFileName(QStringLiteral("io.github.lumen.Lumen"));
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/lumen.svg")));
    lumen::app::installEngineLogSink();

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Lumen, a local desktop assistant that sees"));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addOptions({
        {QStringLiteral("database"), QStringLiteral("Use this database file."), QStringLiteral("FILE")},
        {QStringLiteral("data-dir"), QStringLiteral("Keep the database in this folder."), QStringLiteral("DIR")},
    });
    parser.process(app);

    const QString path = lumen::app::resolveDatabasePath(
        {parser.value(QStringLiteral("database")), parser.value(QStringLiteral("data-dir"))});
    std::unique_ptr<lumen::app::Library> library;
    QString problem = lumen::app::ensureParentFolder(path);
    const auto open = [&](bool readOnly) {
        try {
            library = std::make_unique<lumen::app::Library>(path, lumen::app::Library::Recovery::CloseInterrupted, readOnly);
        } catch (const lumen::storage::DamagedDatabase& e) {
            // Nothing was written to it. Restore the newest backup, read what is left, or quit.
            QMessageBox box(QMessageBox::Warning, QStringLiteral("Lumen"), QStringLiteral("Lumen's database is damaged."));
            box.setInformativeText(QString::fromUtf8(e.what()));
            QPushButton* restore = e.backup() ? box.addButton(QStringLiteral("&Restore the Backup"), QMessageBox::AcceptRole) : nullptr;
            QPushButton* readOnlyButton = box.addButton(QStringLiteral("Open &Read-Only"), QMessageBox::ActionRole);
            box.addButton(QMessageBox::Close);
            box.exec();
            if (restore && box.clickedButton() == restore) {
                try {
                    const auto aside = lumen::storage::Database::restoreBackup(path.toStdString(), *e.backup());
                    qCInfo(lumen::app::lcStorage) << "restored" << QString::fromStdString(e.backup()->string()) << "; the damaged file is kept at"
                                                  << QString::fromStdString(aside.string());
                    library = std::make_unique<lumen::app::Library>(path, lumen::app::Library::Recovery::CloseInterrupted);
                } catch (const lumen::storage::Error& again) {
                    problem = QString::fromUtf8(again.what());
                }
            } else if (box.clickedButton() == readOnlyButton) {
                try {
                    library = std::make_unique<lumen::app::Library>(path, lumen::app::Library::Recovery::None, true);
                } catch (const lumen::storage::Error& again) {
                    problem = QString::fromUtf8(again.what());
                }
            } else {
                return;
            }
        } catch (const lumen::storage::Error& e) {
            problem = QString::fromUtf8(e.what());
        }
    };
    if (problem.isEmpty()) open(false);
    if (!library && problem.isEmpty()) return 1;  // (the user closed the damaged-database question)
    if (!library) {
        QMessageBox::critical(nullptr, QStringLiteral("Lumen"),
                              QStringLiteral("Lumen cannot open its database.\n\n%1\n\nStart Lumen with "
                                             "--database FILE to use another file.")
                                  .arg(problem));
        return 1;
    }

    lumen::ui::MainWindow window(*library);
    window.show();
    return app.exec();
}
