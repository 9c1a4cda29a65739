// Unity translation unit: the ToMe group of the visual-token reduction
// operators (ToMe, Token Transforming, LLaVolta pooling) and their binding.
#include "../reduce/tome.cpp"
#include "../reduce/transform.cpp"
#include "../reduce/pool.cpp"
#include "../binding/reduce_tome_binding.cpp"
