#pragma once
// Small helpers the dialogs share.

#include <QMessageBox>
#include <QPushButton>
#include <QString>

#include "app/library.h"  // (storage::Error)

namespace lumen::ui {

// A push button with an object name (tests and styles find it by that name).
inline QPushButton* namedButton(const QString& text, const char* objectName) {
    auto* b = new QPushButton(text);
    b->setObjectName(QString::fromLatin1(objectName));
    return b;
}

// Runs f; a storage error becomes a warning box titled `title`. Whether f finished.
template <class F>
bool warnOnStorageError(QWidget* parent, const QString& title, F&& f) {
    try {
        f();
        return true;
    } catch (const storage::Error& e) {
        QMessageBox::warning(parent, title, QString::fromUtf8(e.what()));
        return false;
    }
}

}  // namespace lumen::ui
