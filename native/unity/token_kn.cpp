// Unity translation unit: the token-level Kneser-Ney model (tokenizer tools)
// and its binding. Compiling a group of sources as one file parses the shared
// headers once (see native/unity/bindings.cpp). A unit test checks that every
// source under native/ is compiled exactly once.
#include "../text/token_kn.cpp"
#include "../binding/token_kn_binding.cpp"
