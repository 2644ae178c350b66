#include "storage/settings_store.h"

namespace lumen::storage {

std::optional<std::string> SettingsStore::get(std::string_view key) {
    Statement s = c_.prepare("SELECT value FROM settings WHERE key = ?");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.getText(0);
}

std::string SettingsStore::value(std::string_view key, std::string_view fallback) {
    return get(key).value_or(std::string(fallback));
}

void SettingsStore::set(std::string_view key, std::string_view value) {
    c_.prepare("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bindAll(key, value)
        .run();
}

void SettingsStore::remove(std::string_view key) {
    c_.prepare("DELETE FROM settings WHERE key = ?").bind(1, key).run();
}

std::map<std::string, std::string> SettingsStore::all() {
    Statement s = c_.prepare("SELECT key, value FROM settings ORDER BY key");
    std::map<std::string, std::string> result;
    while (s.step()) result.emplace(s.getText(0), s.getText(1));
    return result;
}

}  // namespace lumen::storage
