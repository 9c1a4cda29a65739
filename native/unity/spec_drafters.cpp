// Unity translation unit: the speculative-decoding drafters (Token Recycling).
// Compiling a group of sources as one file parses the shared headers once
// (see native/unity/core_kv.cpp). A unit test checks that every source under
// native/ is compiled exactly once. Names with internal linkage must be unique
// across the files of a group.
#include "../spec/token_recycling.cpp"
#include "../spec/topk_rows.cpp"
