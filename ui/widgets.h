#pragma once
// Small helpers the dialogs share.

#include <QPushButton>
#include <QString>

namespace lumen::ui {

// A push button with an object name (tests and styles find it by that name).
inline QPushButton* namedButton(const QString& text, const char* objectName) {
    auto* b = new QPushButton(text);
    b->setObjectName(QString::fromLatin1(objectName));
    return b;
}

}  // namespace lumen::ui
