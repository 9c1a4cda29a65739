// Unity translation unit: the coders and context models.
// Compiling a group of sources as one file parses the shared headers once:
// it cuts the CPU build from about 95 to 60 CPU-seconds, which is what makes
// `npm ci` fast on a 2-core machine. Files that compile kernels for an ISA
// (#pragma GCC target) stay separate translation units so that no target
// option can reach generic code. A unit test checks that every source under
// native/ is compiled exactly once. Names with internal linkage must be unique
// across the files of a group.
#include "../coding/kn_model.cpp"
#include "../coding/kn_model_file.cpp"
#include "../coding/kn_model_train.cpp"
#include "../coding/quantize.cpp"
#include "../coding/window_coder.cpp"
#include "../coding/equal_info.cpp"
#include "../coding/equal_info_slots.cpp"
#include "../coding/static_coding.cpp"
#include "../coding/coding_batch.cpp"
#include "../coding/cm_logistic.cpp"
#include "../coding/cm_bit_history.cpp"
#include "../coding/cm_predictor.cpp"
#include "../coding/cm_codec.cpp"
