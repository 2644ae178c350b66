#include "ui/theme.h"

#include <QApplication>
#include <QStyle>
#include <QStyleFactory>
#include <QWidget>

namespace lumen::ui {
namespace {

struct Startup {
    QString style;
    QPalette palette;
};

// The platform's style and palette before Lumen changed anything: what System goes back to.
const Startup& startup() {
    static const Startup s{QApplication::style()->name(), QApplication::palette()};
    return s;
}

Theme gCurrent = Theme::System;

QPalette makePalette(const QColor& window, const QColor& base, const QColor& alternate, const QColor& text, const QColor& button,
                     const QColor& highlight, const QColor& link, const QColor& placeholder) {
    QPalette p;
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, alternate);
    p.setColor(QPalette::ToolTipBase, base);
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, placeholder);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, button);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, Qt::white);
    p.setColor(QPalette::Highlight, highlight);
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, link);
    p.setColor(QPalette::LinkVisited, link);
    // Disabled text and buttons: the placeholder's grey.
    for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText}) p.setColor(QPalette::Disabled, role, placeholder);
    p.setColor(QPalette::Disabled, QPalette::Highlight, placeholder);
    return p;
}

}  // namespace

QPalette lightPalette() {
    return makePalette(QColor(0xf5, 0xf5, 0xf7), Qt::white, QColor(0xee, 0xef, 0xf2), QColor(0x1d, 0x1d, 0x1f), QColor(0xfa, 0xfa, 0xfc),
                       QColor(0x2f, 0x6f, 0xeb), QColor(0x1f, 0x5f, 0xd6), QColor(0x8a, 0x8a, 0x90));
}

QPalette darkPalette() {
    return makePalette(QColor(0x1f, 0x20, 0x23), QColor(0x17, 0x18, 0x1b), QColor(0x26, 0x28, 0x2c), QColor(0xe8, 0xe8, 0xea),
                       QColor(0x2b, 0x2d, 0x31), QColor(0x3d, 0x7c, 0xf4), QColor(0x7a, 0xa8, 0xff), QColor(0x8d, 0x8f, 0x96));
}

bool isDark(const QPalette& palette) { return palette.color(QPalette::Window).lightness() < palette.color(QPalette::WindowText).lightness(); }

void applyTheme(Theme theme) {
    const Startup& original = startup();  // (taken before the first change)
    gCurrent = theme;
    if (theme == Theme::System) {
        if (QApplication::style()->name() != original.style) QApplication::setStyle(QStyleFactory::create(original.style));
        QApplication::setPalette(original.palette);
    } else {
        if (QApplication::style()->name().compare(QLatin1String("fusion"), Qt::CaseInsensitive) != 0) QApplication::setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
        QApplication::setPalette(theme == Theme::Dark ? darkPalette() : lightPalette());
    }
    // Widgets with their own style sheets take the new palette(...) colours too.
    for (QWidget* w : QApplication::allWidgets()) {
        if (!w->styleSheet().isEmpty()) w->setStyleSheet(w->styleSheet());
    }
}

Theme currentTheme() { return gCurrent; }

}  // namespace lumen::ui
