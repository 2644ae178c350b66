// What a remote OpenAI-compatible server streams back (untrusted bytes from the network): split
// into events in arbitrary pieces, each read as a chunk of either API or refused with a
// RemoteError, never anything else; a whole stream gives the same events however it is cut.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "app/remote_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> whole, pieces;
    try {
        app::SseParser a;
        whole = a.feed(bytes);
        for (auto& e : a.finish()) whole.push_back(std::move(e));
        app::SseParser b;  // the same bytes in pieces of 1, 2, 3, … bytes
        std::size_t at = 0;
        for (std::size_t step = 1; at < size; ++step) {
            for (auto& e : b.feed(bytes.substr(at, step))) pieces.push_back(std::move(e));
            at += std::min(step, size - at);
        }
        for (auto& e : b.finish()) pieces.push_back(std::move(e));
        if (whole != pieces) std::abort();
    } catch (const app::RemoteError&) {
        return 0;  // (a line over the limit)
    }
    for (const std::string& event : whole)
        for (const bool chat : {true, false}) {
            try {
                const auto d = app::parseStreamChunk(event, chat);
                if (d.promptTokens < -1 || d.completionTokens < -1) std::abort();
            } catch (const app::RemoteError&) {
            }
        }
    (void)app::errorMessageOf(QByteArray(reinterpret_cast<const char*>(data), static_cast<qsizetype>(size)));
    return 0;
}
