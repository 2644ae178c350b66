// A request to the OpenAI-compatible server (untrusted JSON from any client): read into an
// ApiRequest or refused with an ApiError in OpenAI's shape, never anything else; what is read
// stays within the limits the engine relies on.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "app/openai_server.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen;
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (const bool chat : {true, false}) {
        try {
            const auto r = app::parseApiRequest(body, chat, "model.gguf");
            if (r.chat != chat) std::abort();
            if (chat && (!r.messages.is_array() || r.messages.empty())) std::abort();
            if (!chat && r.prompt.empty() && (!r.promptIds || r.promptIds->empty())) std::abort();
            if (r.params.maxTokens < 1 || r.images.size() > 16 || r.params.stopStrings.size() > 16) std::abort();
            if (!(r.params.sampling.temperature >= 0 && r.params.sampling.temperature <= 2)) std::abort();
            for (const auto& m : r.messages)
                if (!m["content"].is_string() || !m["role"].is_string()) std::abort();
        } catch (const app::ApiError& e) {
            if (e.status < 400 || e.status > 599) std::abort();
            (void)e.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
    }
    try {
        const auto e = app::parseEmbeddingRequest(body, "clip");
        if (e.inputs.empty() || e.inputs.size() > 256) std::abort();
        for (const auto& in : e.inputs)
            if (in.data.empty()) std::abort();
    } catch (const app::ApiError& e) {
        if (e.status < 400 || e.status > 599) std::abort();
    }
    return 0;
}
