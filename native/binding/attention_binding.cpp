#include "bindings.h"
namespace tp::binding {
void RegisterAttention(Napi::Env env, Napi::Object exports) {}  // TODO
}
