// A Hugging Face model folder's config.json (untrusted JSON) over real tiny weights: opening gives
// an encoder or a FormatError, and an opened encoder embeds a small image. The folder is a copy of
// the CLIP and DINOv2-with-registers fixtures side by side (each config picks its tensors).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "inference/formats/format_error.h"
#include "vision/vision_model.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen;
    static const auto backend = inference::makeCpuBackend({.threads = 1});
    static const fs::path dirs[2] = {fs::temp_directory_path() / "lumen-fuzz-clip", fs::temp_directory_path() / "lumen-fuzz-dinov2"};
    static const bool ready = [] {
        const fs::path fixtures = fs::path(LUMEN_FIXTURES) / "models";
        const char* names[2] = {"clip-tiny", "dinov2-reg-tiny"};
        for (int i = 0; i < 2; ++i) {
            fs::create_directories(dirs[i]);
            for (const auto& e : fs::directory_iterator(fixtures / names[i]))
                if (e.path().filename() != "config.json") fs::copy_file(e.path(), dirs[i] / e.path().filename(), fs::copy_options::overwrite_existing);
        }
        return true;
    }();
    (void)ready;
    // The same config tried against both weight sets.
    for (const fs::path& dir : dirs) {
        std::ofstream(dir / "config.json", std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
        try {
            auto encoder = vision::openImageEncoder(dir, *backend);
            const vision::RgbImage image{9, 7, std::vector<std::uint8_t>(9 * 7 * 3, 100)};
            const auto e = encoder->embedImage(image);
            if (static_cast<std::int64_t>(e.size()) != encoder->embeddingSize()) std::abort();
        } catch (const inference::FormatError&) {
        } catch (const vision::ImageError&) {
        }
    }
    return 0;
}
