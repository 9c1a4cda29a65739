// Unity translation unit: supertoken (SuperBPE-style) training and rank-ordered
// BPE encoding (lib/tokenizer/supertokens.ts), with their binding. See
// native/unity/bindings.cpp for why sources are grouped. Names with internal
// linkage must be unique across the files of a group.
#include "../text/bpe_encode.cpp"
#include "../text/pair_count.cpp"
#include "../binding/tokenizer_super_binding.cpp"
