#include <QCoreApplication>
#include <QTextStream>
#include <cstdio>

#include "app/cli/cli.h"
#include "app/logging.h"

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("lumen"));
    QCoreApplication::setApplicationVersion(QStringLiteral(LUMEN_VERSION_STRING));
    lumen::app::installEngineLogSink();
    QTextStream out(stdout);
    QTextStream err(stderr);
    return lumen::app::cli::runCli(QCoreApplication::arguments(), out, err);
}
