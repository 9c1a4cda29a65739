// Unity translation unit: dynamic tokenization (batch-level BPE) and its
// binding, kept apart from the other groups so that the tokenizer tools merge
// without touching the shared unity files (see native/unity/core_kv.cpp).
// A unit test checks that every source under native/ is compiled exactly
// once. Names with internal linkage must be unique across the files of a group.
#include "../text/dynamic_bpe.cpp"
#include "../binding/dynamic_bpe_binding.cpp"
