// Batches read from text format and JSON, checked field by field; windows; drains.
#include <catch2/catch.hpp>

#include <limits>

#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"
#include "templates/batch.hpp"

using namespace ferry;

namespace {

std::string error_of(std::string_view source) {
  auto b = load_batch(source);
  REQUIRE_FALSE(b);
  CHECK(code_of(b.error()) == errc::invalid_argument);
  return message_of(b.error());
}

} // namespace

TEST_CASE("a batch reads from text format and JSON, and survives its journal encoding") {
  auto b = load_batch(R"(
    name: "night-drain" template: "live-precopy"
    args { key: "max_downtime_ms" value: "200" }
    items { vm: "web-1" priority: 5 }
    items { vm: "web-2" wave: 1 after: "db-1" args { key: "target" value: "a3" } }
    items { vm: "db-1" wave: 1 template: "reboot" }
    limits { global: 4 host_out: 2 host_in: 2 zone: 3 partition: 1 link_share: 0.5 }
    daily { start: "22:00" end: "04:30" }
    fallback_template: "reboot"
  )");
  INFO((b ? "" : describe(b.error())));
  REQUIRE(b);
  CHECK(b->name == "night-drain");
  REQUIRE(b->items.size() == 3);
  CHECK(b->items[1].after == std::vector<std::string>{"db-1"});
  CHECK(b->items[1].args.at("target") == "a3");
  CHECK(b->limits.link_share == 0.5);
  REQUIRE(b->daily.size() == 1);
  CHECK(b->daily[0].start_min == 22 * 60);
  CHECK(b->daily[0].end_min == 4 * 60 + 30);
  batch_record rec{*b, 1234, false, true};
  auto back = decode_batch_record(encode_batch_record(rec));
  REQUIRE(back);
  CHECK(back->created == 1234);
  CHECK(back->cancelled);
  CHECK(print_batch(back->spec, false) == print_batch(*b, false));
  auto json = load_batch(print_batch(*b, true));
  REQUIRE(json);
  CHECK(print_batch(*json, false) == print_batch(*b, false));
}

TEST_CASE("a bad batch is refused naming the field") {
  CHECK_THAT(error_of(R"(name: "x y" template: "t" items { vm: "a" })"),
             Catch::Contains("batch: name: must be 1 to 40 characters"));
  CHECK_THAT(error_of(R"(name: "b" items { vm: "a" })"),
             Catch::Contains("items[0].template: missing"));
  CHECK_THAT(error_of(R"(name: "b" template: "t")"), Catch::Contains("items: empty"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" after: "z" })"),
             Catch::Contains("items[0].after[0]: \"z\" is not a VM of the batch"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" after: "c" }
                         items { vm: "c" wave: 1 })"),
             Catch::Contains("items[0].after[0]: \"c\" is in a later wave (1 > 0)"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" after: "c" }
                         items { vm: "c" after: "a" })"),
             Catch::Contains("a cycle"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" } daily { start: "25:00" end: "01:00" })"),
             Catch::Contains("daily[0].start: expected HH:MM (UTC), got \"25:00\""));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" } windows { start_ms: 5 end_ms: 5 })"),
             Catch::Contains("windows[0]: end_ms must be after start_ms"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" } limits { link_share: 2 })"),
             Catch::Contains("limits.link_share: must be in (0, 1]"));
  // nan compared false both ways and was taken; a window past INT64_MAX wrapped to before the
  // epoch (start 2^64-1 was -1: a window that had closed, so every item was skipped).
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" } limits { link_share: nan })"),
             Catch::Contains("limits.link_share: must be in (0, 1], or 0 for no limit; got nan"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" }
                         windows { start_ms: 18446744073709551615 end_ms: 2000 })"),
             Catch::Contains("batch: windows[0].start_ms: must be at most 9223372036854775807 "
                             "(ms since the epoch), got 18446744073709551615"));
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" }
                         windows { start_ms: 1 end_ms: 9223372036854775808 })"),
             Catch::Contains("windows[0].end_ms: must be at most 9223372036854775807"));
  auto latest = load_batch(R"(name: "b" template: "t" items { vm: "a" }
                             windows { start_ms: 1 end_ms: 9223372036854775807 })");
  REQUIRE(latest);
  CHECK(latest->windows.at(0).end == std::numeric_limits<time_ms>::max());
  CHECK_THAT(error_of(R"(name: "b" template: "t" items { vm: "a" args { key: "vm" value: "b" } })"),
             Catch::Contains("items[0].args: \"vm\" is the item's own"));
  CHECK_THAT(error_of(R"(name: "b" bogus: 1)"), Catch::Contains("batch (text format): line 1"));
}

TEST_CASE("a key given twice in a batch file is refused, not silently the last one") {
  // Text format: a map's key twice (the parser would keep the second).
  CHECK(error_of("name: \"b\" template: \"t\"\n"
                 "items { vm: \"a\"\n"
                 "  args { key: \"target\" value: \"a3\" }\n"
                 "  args { key: \"target\" value: \"a2\" } }\n")
        == "batch (text format): line 4 column 3: \"args\": key \"target\" given more than once");
  CHECK(error_of(R"(name: "b" template: "t" args { key: "x" value: "1" } args { key: "x" value: "1" }
                    items { vm: "a" })")
        == "batch (text format): line 1 column 54: \"args\": key \"x\" given more than once");
  // JSON: any key twice in one object, a field under its two names too.
  CHECK(error_of(R"({"name": "b", "template": "t", "items": [{"vm": "a"}, {"vm": "b", "vm": "c"}]})")
        == "batch (JSON): items[1].vm: given more than once");
  CHECK(error_of(R"({"name": "b", "template": "t", "fallback_template": "reboot",
                     "fallbackTemplate": "live", "items": [{"vm": "a"}]})")
        == "batch (JSON): fallback_template: given more than once");
  CHECK_THAT(error_of(R"({"name": "b", "template": "t", "items": [{"vm": "a",
                          "args": {"target": "a3", "target": "a2"}}]})"),
             Catch::Contains("Repeated map key: 'target' is already set"));
  // Distinct keys, the same key in two objects, and the same text in a string are fine.
  auto ok = load_batch(R"({"name": "b", "template": "t", "args": {"vm2": "x"},
                           "items": [{"vm": "a", "args": {"target": "a3"}},
                                     {"vm": "b", "args": {"target": "a3", "zone": "\"vm\""}}]})");
  INFO((ok ? "" : describe(ok.error())));
  CHECK(ok);
}

TEST_CASE("maintenance windows: absolute and daily, wrapping past midnight") {
  batch_spec s;
  time_ms next = 0;
  CHECK(in_window(s, 5, next));
  s.windows.push_back({1000, 2000});
  CHECK_FALSE(in_window(s, 500, next));
  CHECK(next == 1000);
  CHECK(in_window(s, 1000, next));
  CHECK_FALSE(in_window(s, 2000, next));
  CHECK(next == 0);
  s.windows.clear();
  s.daily.push_back({22 * 60, 2 * 60});
  const time_ms day = 86400000, h = 3600000;
  auto d = 20000 * day;
  CHECK(in_window(s, d + 23 * h, next));
  CHECK(in_window(s, d + 1 * h, next)); // yesterday's window, past midnight
  CHECK_FALSE(in_window(s, d + 12 * h, next));
  CHECK(next == d + 22 * h);
  CHECK_FALSE(in_window(s, d + 2 * h, next)); // the end is excluded
}

TEST_CASE("a drain batch holds every VM of the host or zone, and nothing else") {
  auto m = fleet::load_fleet_file(std::string{FERRY_SOURCE_DIR} + "/examples/demo-fleet.textproto");
  REQUIRE(m);
  std::vector<fleet::vm_location> locs{
    {"x2", "a4", "small"}, {"x1", "a4", "small"}, {"y", "a1", "small"}, {"z", "b1", "small"}};
  drain_request r;
  r.host = "a4";
  auto b = drain_batch(r, **m, locs);
  REQUIRE(b);
  CHECK(b->name == "drain-a4");
  REQUIRE(b->items.size() == 2);
  CHECK(b->items[0].vm == "x1");
  r = {};
  r.zone = "zone-a";
  r.to_zone = "zone-b";
  b = drain_batch(r, **m, locs);
  REQUIRE(b);
  CHECK(b->items.size() == 3);
  CHECK(b->args.at("zone") == "zone-b");
  r.to_zone = "";
  auto e = drain_batch(r, **m, locs);
  REQUIRE_FALSE(e);
  CHECK_THAT(message_of(e.error()), Catch::Contains("to_zone"));
  r = {};
  r.host = "c1";
  e = drain_batch(r, **m, locs);
  REQUIRE_FALSE(e);
  CHECK_THAT(message_of(e.error()), Catch::Contains("host \"c1\" runs no VM"));
}

TEST_CASE("the example batch reads and names VMs of the demo fleet") {
  auto b = load_batch_file(std::string{FERRY_SOURCE_DIR} + "/examples/batch.textproto");
  INFO((b ? "" : describe(b.error())));
  REQUIRE(b);
  auto m = fleet::load_fleet_file(std::string{FERRY_SOURCE_DIR} + "/examples/demo-fleet.textproto");
  REQUIRE(m);
  for (auto& it : b->items)
    CHECK((*m)->find_vm(it.vm) != fleet::npos);
  CHECK(b->fallback_template == "reboot");
}
