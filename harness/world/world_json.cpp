#include "world/world_json.h"

#include <algorithm>

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
    check_world(w, file);
    return w;
}

void check_world(const WorldConfig& w, const std::string& file) {
    const int side = std::min(w.width, w.height);
    if (w.wrap && w.border > 0)
        input_error(file + ": world.wrap: true with world.border: " + std::to_string(w.border) +
                    ": a torus has no edge to frame; give one or the other");
    if (w.wrap && 2 * w.sprite_max > side)
        input_error(file + ": world.wrap: true with world.sprite_max: " + std::to_string(w.sprite_max) +
                    ": on a torus a sprite must be at most half the canvas (" + std::to_string(side / 2) + " px), or it meets itself");
    const int need = w.sprite_max + w.speed * (w.frames - 1), room = side - 2 * w.border;
    if (!w.wrap && need > room)
        input_error(file + ": world.border: " + std::to_string(w.border) + " leaves " + std::to_string(room) + " px, but a " +
                    std::to_string(w.sprite_max) + " px sprite moving " + std::to_string(w.speed) + " px over " +
                    std::to_string(w.frames) + " frames needs " + std::to_string(need));
}

}  // namespace profdit::world
