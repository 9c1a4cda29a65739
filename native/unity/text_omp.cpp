// Unity translation unit: batched OMP for tokenizer transplantation and its
// binding. Compiling a group of sources as one file parses the shared headers
// once (see native/unity/core_kv.cpp). The AVX2 kernels use function
// attributes, not #pragma GCC target, so no ISA option reaches other code.
// A unit test checks that every source under native/ is compiled exactly once.
#include "../text/omp_dots.cpp"
#include "../text/omp.cpp"
#include "../binding/omp_binding.cpp"
