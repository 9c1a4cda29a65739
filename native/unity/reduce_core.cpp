// Unity translation unit: the shared primitives of the visual-token reduction
// operators (native/reduce/similarity.h). Each operator group adds its own
// unity file (reduce_<group>.cpp). See native/unity/core_kv.cpp.
#include "../reduce/similarity.cpp"
