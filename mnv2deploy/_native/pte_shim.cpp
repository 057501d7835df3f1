// The smallest C surface over ExecuTorch's C++ Module, for ctypes in the aarch64 Python under qemu: the aarch64
// executorch wheel's Python bindings link libtorch, its runtime libraries do not. Built by `mnv2deploy setup arm64`
// against those libraries (mnv2deploy/emulation.py); backends and kernels register themselves when loaded.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

using executorch::aten::ScalarType;
using executorch::extension::Module;
using executorch::runtime::Error;

static void say(char* err, int errlen, const char* what, Error e) {
  std::snprintf(err, errlen, "%s (ExecuTorch error 0x%x)", what, static_cast<unsigned>(e));
}

extern "C" {

void* mnv2_pte_load(const char* path, int threads, char* err, int errlen) {
  if (threads > 0) {
    executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(threads);
  }
  auto module = std::make_unique<Module>(std::string(path), Module::LoadMode::File);
  Error e = module->load_method("forward");
  if (e != Error::Ok) {
    say(err, errlen, "cannot load the program's forward method", e);
    return nullptr;
  }
  return module.release();
}

// The forward method's first input as the program declares it: sizes, ndim and scalar type. 0 on success.
int mnv2_pte_input(void* handle, int64_t* sizes, int* ndim, int* dtype) {
  auto meta = static_cast<Module*>(handle)->method_meta("forward");
  if (!meta.ok() || meta->num_inputs() < 1) return 1;
  auto info = meta->input_tensor_meta(0);
  if (!info.ok() || info->sizes().size() > 8) return 1;
  *ndim = static_cast<int>(info->sizes().size());
  for (int i = 0; i < *ndim; ++i) sizes[i] = info->sizes()[i];
  *dtype = static_cast<int>(info->scalar_type());
  return 0;
}

// One execute: input of `ndim` sizes and scalar type `dtype` (ExecuTorch's codes: 6 float, 1 int8, 0 uint8) ->
// the first output copied into `out` (at most `capacity` bytes), its sizes and type returned. 0 on success.
int mnv2_pte_run(void* handle, void* data, const int64_t* sizes, int ndim, int dtype, void* out,
                 int64_t capacity, int64_t* out_sizes, int* out_ndim, int* out_dtype, char* err, int errlen) {
  auto* module = static_cast<Module*>(handle);
  std::vector<executorch::aten::SizesType> shape(sizes, sizes + ndim);
  auto input = executorch::extension::make_tensor_ptr(shape, data, static_cast<ScalarType>(dtype));
  auto result = module->forward(input);
  if (!result.ok()) {
    say(err, errlen, "execute failed", result.error());
    return 1;
  }
  if (result->empty() || !(*result)[0].isTensor()) {
    std::snprintf(err, errlen, "the program's first output is not a tensor");
    return 1;
  }
  const auto& y = (*result)[0].toTensor();
  if (static_cast<int64_t>(y.nbytes()) > capacity || y.dim() > 8) {
    std::snprintf(err, errlen, "output of %zu bytes does not fit the %lld-byte buffer", y.nbytes(),
                  static_cast<long long>(capacity));
    return 1;
  }
  std::memcpy(out, y.const_data_ptr(), y.nbytes());
  *out_ndim = static_cast<int>(y.dim());
  for (int i = 0; i < y.dim(); ++i) out_sizes[i] = y.size(i);
  *out_dtype = static_cast<int>(y.scalar_type());
  return 0;
}

void mnv2_pte_free(void* handle) { delete static_cast<Module*>(handle); }

}  // extern "C"
