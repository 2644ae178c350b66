#include "inference/cuda/cublas_api.h"

#include <dlfcn.h>

namespace lumen::inference::cuda {
namespace {

struct Loaded {
    CublasApi api;
    std::string error;
    bool ok = false;
};

template <class F>
bool resolve(void* lib, const char* name, F& out, std::string& error) {
    out = reinterpret_cast<F>(dlsym(lib, name));
    if (!out) error = std::string("cuBLAS has no function ") + name;
    return out != nullptr;
}

Loaded load() {
    Loaded r;
    void* lib = nullptr;
    // The major version this build was compiled against first, then the one before it.
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"})
        if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
        r.error = "cuBLAS (libcublas.so.13) was not found; install the CUDA runtime libraries";
        return r;
    }
    r.ok = resolve(lib, "cublasCreate_v2", r.api.create, r.error) && resolve(lib, "cublasDestroy_v2", r.api.destroy, r.error) &&
           resolve(lib, "cublasSetStream_v2", r.api.setStream, r.error) && resolve(lib, "cublasGemmEx", r.api.gemmEx, r.error) &&
           resolve(lib, "cublasGemmStridedBatchedEx", r.api.gemmStridedBatchedEx, r.error);
    return r;  // the library stays loaded for the life of the process
}

}  // namespace

const CublasApi* CublasApi::get(std::string& whyNot) {
    static const Loaded loaded = load();
    if (!loaded.ok) whyNot = loaded.error;
    return loaded.ok ? &loaded.api : nullptr;
}

}  // namespace lumen::inference::cuda
