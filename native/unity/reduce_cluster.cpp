// Unity translation unit: the clustering group of the visual-token reduction
// operators (VQToken k-means, Recoverable Compression with its LOF,
// CoreMatching, token-correlation compression) and their binding. See native/unity/reduce_core.cpp.
#include "../reduce/kmeans.cpp"
#include "../reduce/lof.cpp"
#include "../reduce/recoverable.cpp"
#include "../reduce/corematch.cpp"
#include "../reduce/tokencorr.cpp"
#include "../binding/reduce_cluster_binding.cpp"
