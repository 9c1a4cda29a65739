// Unity translation unit: the tokenizer core (byte-level BPE, the token-bytes
// trie) and its binding (see native/unity/core_kv.cpp for why sources are
// grouped). A unit test checks that every source under native/ is compiled
// exactly once. Names with internal linkage must be unique across the files
// of a group.
#include "../text/bpe.cpp"
#include "../text/token_trie.cpp"
#include "../binding/tokenizer_binding.cpp"
