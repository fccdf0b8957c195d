// Deliberately broken plugins for the loader tests. FAKE_KIND selects the defect:
//   1: built for another ABI version   2: no device ("probe" says why)   3: create() fails
//   4: missing the create symbol
#include <string>

#include "ops/backend.h"

extern "C" {

__attribute__((visibility("default"))) uint32_t halo_plugin_abi_version() {
    return FAKE_KIND == 1 ? halo::ops::kAbiVersion + 41 : halo::ops::kAbiVersion;
}

__attribute__((visibility("default"))) void halo_plugin_probe(halo::ops::PluginProbe* out) {
    out->plugin_name = "fake";
    if (FAKE_KIND == 2) out->unusable_reason = "no fake device is attached to this machine";
}

#if FAKE_KIND != 4
__attribute__((visibility("default"))) halo::ops::Backend* halo_plugin_create(const halo::ops::BackendOptions*,
                                                                              std::string* error) {
    *error = "the fake device refused to start";
    return nullptr;
}
#endif
}
