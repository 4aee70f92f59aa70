// Forward declarations of Ferry's main types, so headers stay light.
#pragma once

namespace ferry {

struct definition;
struct task_def;
struct run_state;
struct event;
struct value;
class kind_catalog;
class store;
class engine;

} // namespace ferry
