#include "ui/icons.h"

#include <QIconEngine>
#include <QPainter>
#include <QPainterPath>
#include <QPixmap>
#include <cmath>

namespace lumen::ui {
namespace {

const QString kNamePrefix = QStringLiteral("lumen-icon-");

// Each icon is drawn on a 24×24 grid with round 1.8-unit strokes.
void draw(Icon which, QPainter& p) {
    QPainterPath path;
    switch (which) {
        case Icon::NewChat:  // a speech bubble with a plus
            path.addRoundedRect(QRectF(3, 4, 18, 13), 3, 3);
            path.moveTo(8, 17);
            path.lineTo(6, 21);
            path.lineTo(12, 17);
            path.moveTo(12, 7.5);
            path.lineTo(12, 13.5);
            path.moveTo(9, 10.5);
            path.lineTo(15, 10.5);
            break;
        case Icon::OpenModel:  // a folder
            path.moveTo(3, 7);
            path.lineTo(3, 19);
            path.lineTo(21, 19);
            path.lineTo(21, 9);
            path.lineTo(11.5, 9);
            path.lineTo(9.5, 6);
            path.lineTo(3, 6);
            path.closeSubpath();
            break;
        case Icon::Delete:  // a bin
            path.moveTo(4, 7);
            path.lineTo(20, 7);
            path.moveTo(9, 7);
            path.lineTo(9.5, 4);
            path.lineTo(14.5, 4);
            path.lineTo(15, 7);
            path.moveTo(6, 7);
            path.lineTo(7, 20);
            path.lineTo(17, 20);
            path.lineTo(18, 7);
            path.moveTo(10, 11);
            path.lineTo(10, 16);
            path.moveTo(14, 11);
            path.lineTo(14, 16);
            break;
        case Icon::Undo:  // an arrow turning back
            path.moveTo(9, 5);
            path.lineTo(4, 10);
            path.lineTo(9, 15);
            path.moveTo(4, 10);
            path.lineTo(14, 10);
            path.cubicTo(22, 10, 22, 20, 14, 20);
            path.lineTo(10, 20);
            break;
        case Icon::Stop:  // a square in a circle
            path.addEllipse(QPointF(12, 12), 9, 9);
            path.addRoundedRect(QRectF(8.5, 8.5, 7, 7), 1, 1);
            break;
        case Icon::Regenerate: {  // a circular arrow
            const QRectF circle(4.5, 4.5, 15, 15);
            path.arcMoveTo(circle, 60);
            path.arcTo(circle, 60, 300);
            const double a = 60 * M_PI / 180;
            const QPointF tip(12 + 7.5 * std::cos(a), 12 - 7.5 * std::sin(a));
            path.moveTo(tip + QPointF(-4.5, -1));
            path.lineTo(tip);
            path.lineTo(tip + QPointF(-0.5, -4.5));
            break;
        }
        case Icon::Settings: {  // a gear
            for (int k = 0; k < 8; ++k) {
                const double a = k * M_PI / 4;
                path.moveTo(12 + 6.5 * std::cos(a), 12 + 6.5 * std::sin(a));
                path.lineTo(12 + 9.5 * std::cos(a), 12 + 9.5 * std::sin(a));
            }
            path.addEllipse(QPointF(12, 12), 6.5, 6.5);
            path.addEllipse(QPointF(12, 12), 2.5, 2.5);
            break;
        }
        case Icon::Attach:  // a paper clip
            path.moveTo(15, 7);
            path.lineTo(15, 16);
            path.cubicTo(15, 20.5, 8, 20.5, 8, 16);
            path.lineTo(8, 6);
            path.cubicTo(8, 2.5, 13, 2.5, 13, 6);
            path.lineTo(13, 15.5);
            path.cubicTo(13, 17.5, 10, 17.5, 10, 15.5);
            path.lineTo(10, 8);
            break;
        case Icon::Send:  // an arrow up
            path.moveTo(12, 20);
            path.lineTo(12, 4.5);
            path.moveTo(5.5, 11);
            path.lineTo(12, 4.5);
            path.lineTo(18.5, 11);
            break;
        case Icon::Copy:  // two sheets
            path.addRoundedRect(QRectF(8, 8, 12, 12), 2, 2);
            path.moveTo(16, 8);
            path.lineTo(16, 5);
            path.quadTo(16, 4, 15, 4);
            path.lineTo(5, 4);
            path.quadTo(4, 4, 4, 5);
            path.lineTo(4, 15);
            path.quadTo(4, 16, 5, 16);
            path.lineTo(8, 16);
            break;
    }
    p.drawPath(path);
}

// Draws at whatever size and scale is asked, in the colour of the mode (disabled: the
// palette's disabled text colour).
class LineIconEngine : public QIconEngine {
public:
    LineIconEngine(Icon which, const QPalette& palette)
        : which_(which), normal_(palette.color(QPalette::Active, QPalette::WindowText)),
          disabled_(palette.color(QPalette::Disabled, QPalette::WindowText)), selected_(palette.color(QPalette::Active, QPalette::HighlightedText)) {}

    void paint(QPainter* painter, const QRect& rect, QIcon::Mode mode, QIcon::State) override {
        painter->save();
        painter->setRenderHint(QPainter::Antialiasing);
        const QColor colour = mode == QIcon::Disabled ? disabled_ : mode == QIcon::Selected ? selected_ : normal_;
        const double side = std::min(rect.width(), rect.height());
        painter->translate(rect.x() + (rect.width() - side) / 2.0, rect.y() + (rect.height() - side) / 2.0);
        painter->scale(side / 24.0, side / 24.0);
        QPen pen(colour, 1.8, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin);
        painter->setPen(pen);
        painter->setBrush(Qt::NoBrush);
        draw(which_, *painter);
        painter->restore();
    }

    QPixmap pixmap(const QSize& size, QIcon::Mode mode, QIcon::State state) override { return scaledPixmap(size, mode, state, 1.0); }

    QPixmap scaledPixmap(const QSize& size, QIcon::Mode mode, QIcon::State state, qreal scale) override {
        QPixmap pixmap(size * scale);
        pixmap.fill(Qt::transparent);
        {
            QPainter painter(&pixmap);
            paint(&painter, QRect(QPoint(0, 0), size * scale), mode, state);
        }
        pixmap.setDevicePixelRatio(scale);
        return pixmap;
    }

    QIconEngine* clone() const override { return new LineIconEngine(*this); }
    QString key() const override { return QStringLiteral("LumenLineIcon"); }
    QString iconName() override { return kNamePrefix + QString::number(int(which_)); }

private:
    Icon which_;
    QColor normal_, disabled_, selected_;
};

}  // namespace

QIcon makeIcon(Icon which, const QPalette& palette) { return QIcon(new LineIconEngine(which, palette)); }

std::optional<Icon> iconOf(const QIcon& icon) {
    const QString name = icon.name();
    if (!name.startsWith(kNamePrefix)) return std::nullopt;
    bool ok = false;
    const int n = name.mid(kNamePrefix.size()).toInt(&ok);
    if (!ok || n < 0 || n > int(Icon::Copy)) return std::nullopt;
    return Icon(n);
}

}  // namespace lumen::ui
