#pragma once
// lumen-cli: every job headless. `runCli` is the whole program minus main(), so tests run it
// in-process. Arguments are untrusted: every mistake gets a message and exit status 2.

#include <QStringList>
#include <QTextStream>

namespace lumen::app::cli {

// args[0] is the program name. Returns the process exit status: 0 ok, 1 the job failed,
// 2 the command line was wrong.
// `in` is read by interactive commands (chat); standard input when null.
int runCli(const QStringList& args, QTextStream& out, QTextStream& err, QTextStream* in = nullptr);

}  // namespace lumen::app::cli
