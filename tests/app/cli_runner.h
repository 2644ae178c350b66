#pragma once
// lumen-cli run in-process for the tests: its exit status and what it printed.

#include <QString>
#include <QStringList>
#include <QTextStream>

#include "app/cli/cli.h"

namespace lumen::test {

struct CliResult {
    int status;
    QString out;
    QString err;
};

// `args` without the program name; `input` is what standard input gives.
inline CliResult runCli(QStringList args, QString input = {}) {
    QString out, err;
    QTextStream o(&out), e(&err), in(&input);
    args.prepend(QStringLiteral("lumen-cli"));
    const int status = app::cli::runCli(args, o, e, &in);
    o.flush();
    e.flush();
    return {status, out, err};
}

}  // namespace lumen::test
