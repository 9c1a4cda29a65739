// Unity translation unit: the vision kernels' host side (issue 19): the host
// model of the CUDA kernels, the CPU-only stub of the device entry point and
// their binding (visionKernels). The kernels themselves are
// native/cuda/cuda_reduce.cu (CMakeLists.txt, CUDA builds only).
#include "../reduce/reduce_device_model.cpp"
#include "../cuda/cuda_reduce.cpp"
#include "../binding/reduce_device_model_binding.cpp"
