#pragma once

#include <string>

namespace profdit::wan {

// Key names of the DiT state dict. profdit's canonical names are the official Wan2.1 ones; the
// diffusers WanTransformer3DModel names map onto them one to one (convert_wan_to_diffusers.py).
enum class KeyFormat { official, diffusers };

std::string official_to_diffusers(const std::string& key);
std::string diffusers_to_official(const std::string& key);
bool        is_diffusers_key(const std::string& key);
const char* key_format_name(KeyFormat f);

}  // namespace profdit::wan
