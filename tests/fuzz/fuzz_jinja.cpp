// The template engine: any template source gives output within the limits or TemplateError.
// The input is "template source \0 context JSON" (the context part is optional).
#include <cstdint>
#include <string>

#include "inference/llm/jinja/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::inference::jinja;
    const std::string input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = input.find('\0');
    const std::string source = input.substr(0, split);
    nlohmann::ordered_json context = nlohmann::ordered_json::parse(
        R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": "yo"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
    if (split != std::string::npos) {
        auto parsed = nlohmann::ordered_json::parse(input.substr(split + 1), nullptr, false);
        if (parsed.is_object()) context = parsed;
    }
    RenderOptions options;
    options.limits.maxOutputBytes = 1 << 16;
    options.limits.maxSteps = 20000;
    options.limits.maxCallDepth = 20;
    options.strftimeNow = [](const std::string&) { return std::string("26 Jul 2024"); };
    try {
        const std::string out = Template::parse(source).render(context, options);
        if (out.size() > options.limits.maxOutputBytes) __builtin_trap();
    } catch (const TemplateError&) {
    }
    return 0;
}
