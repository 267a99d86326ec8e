#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "world/world.h"

namespace profdit::world {

// The world a model was trained on, as its config.json records it ("world": {...}). Written by the trainer,
// read by every command that samples or scores the model; keys added later (border, heading) default to the
// world as it was before them.
nlohmann::json to_json(const WorldConfig& w);
WorldConfig    world_from_json(const nlohmann::json& j, const std::string& file);  // InputError naming file and key

// A world that can be rendered: a torus has no border and sprites of at most half the canvas; on a bounded
// canvas a sprite's whole track fits inside the border. InputError naming `file` and the key otherwise.
void check_world(const WorldConfig& w, const std::string& file);
}  // namespace profdit::world
