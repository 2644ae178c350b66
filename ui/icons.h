#pragma once
// Lumen's own icon set: line icons drawn in the palette's text colour (so they follow the light
// or dark theme and look the same on every desktop, with or without an icon theme), at the
// sizes menus, buttons and toolbars ask for, sharp at any scale factor.

#include <QIcon>
#include <QPalette>
#include <optional>

namespace lumen::ui {

enum class Icon { NewChat, OpenModel, Delete, Undo, Stop, Regenerate, Settings, Attach, Send, Copy };

QIcon makeIcon(Icon which, const QPalette& palette);
// Which of the set `icon` is (none for other icons), to draw it again in other colours.
std::optional<Icon> iconOf(const QIcon& icon);

}  // namespace lumen::ui
