// Unity translation unit: the pruning operators of issue 19 (group `select`:
// DivPrune, VTC-CLS / FastV ranking, GlobalCom2; docs/vision-select.md) and
// their binding. See native/unity/core_kv.cpp.
#include "../reduce/divprune.cpp"
#include "../reduce/cls_rank.cpp"
#include "../reduce/globalcom2.cpp"
#include "../binding/reduce_select_binding.cpp"
