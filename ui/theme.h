#pragma once
// Light and dark: the application's look follows the system (the platform's own style and
// palette, as they were at startup) unless the user picks Lumen's light or dark palette (Fusion)
// in Settings ▸ Theme. The choice is stored as "ui.theme".

#include <QPalette>

namespace lumen::ui {

enum class Theme { System = 0, Light = 1, Dark = 2 };

inline constexpr const char* kThemeKey = "ui.theme";

// Applies `theme` to the whole application (every window, open or yet to come). Call with a
// QApplication in place.
void applyTheme(Theme theme);
Theme currentTheme();

// Lumen's palettes; isDark says whether a palette's window is darker than its text.
QPalette lightPalette();
QPalette darkPalette();
bool isDark(const QPalette& palette);

}  // namespace lumen::ui
