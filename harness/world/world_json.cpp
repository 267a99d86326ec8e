#include "world/world_json.h"

#include "common/error.h"

namespace profdit::world {

nlohmann::json to_json(const WorldConfig& w) {
    return {{"frames", w.frames},         {"height", w.height}, {"width", w.width},   {"sprite_min", w.sprite_min},
            {"sprite_max", w.sprite_max}, {"speed", w.speed},   {"sprites", w.sprites}, {"border", w.border},
            {"heading", w.heading},       {"wrap", w.wrap}};
}

WorldConfig world_from_json(const nlohmann::json& j, const std::string& file) {
    WorldConfig w;
    try {
        w.frames     = j.at("frames");
        w.height     = j.at("height");
        w.width      = j.at("width");
        w.sprite_min = j.at("sprite_min");
        w.sprite_max = j.at("sprite_max");
        w.speed      = j.at("speed");
        w.sprites    = j.at("sprites");
        w.border     = j.value("border", 0);        // models trained before the border option have none
        w.heading    = j.value("heading", false);   // nor a heading
        w.wrap       = j.value("wrap", false);      // nor a torus
    } catch (const nlohmann::json::exception& e) {
        input_error(file + ": key 'world' is incomplete (" + e.what() + ")");
    }
    return w;
}

}  // namespace profdit::world
