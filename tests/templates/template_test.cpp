#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"
#include "templates/template.hpp"

using namespace ferry;

namespace {

kind_catalog kinds() {
  kind_catalog k;
  k.add(kind_spec{"noop", {}, false, ""});
  k.add(kind_spec{"step",
                  {{"vm", param_type::string, true, ""},
                   {"count", param_type::integer, false, ""},
                   {"note", param_type::string, false, ""},
                   {"partition", param_type::string, false, ""}},
                  false,
                  ""});
  return k;
}

// A template over three phases: prepare (one standby per partition), flip, cleanup.
const char* live = R"(
name: "live"
version: 3
description: "A test template"
parameters { name: "vm" type: VM required: true }
parameters { name: "partitions" type: STRING_LIST }
parameters { name: "cpus" type: INTEGER default_value { number_value: 2 } }
parameters { name: "mode" type: STRING choices: "fast" choices: "safe" default_value { string_value: "safe" } }
parameters { name: "forward" type: BOOLEAN }
labels { key: "vm" value: "${vm}" }
pre_reconfigure {
  tasks { task { id: "check" kind: "step" params { fields { key: "vm" value { string_value: "${vm}" } } } } }
}
migrate {
  tasks { for_each: "partitions" task { id: "standby" kind: "step" params {
    fields { key: "vm" value { string_value: "${vm}" } }
    fields { key: "partition" value { string_value: "${item}" } } } } }
  tasks { task { id: "copy" kind: "step" params {
    fields { key: "vm" value { string_value: "${vm}" } }
    fields { key: "count" value { string_value: "${cpus}" } }
    fields { key: "note" value { string_value: "${vm} in ${mode} mode" } } } } }
  tasks { when: "forward" task { id: "forward" kind: "noop" depends_on: "copy" } }
  tasks { task { id: "flip" kind: "noop" depends_on: "forward" depends_on: "standby"
                 point_of_no_return: true } }
}
cleanup {
  tasks { task { id: "release" kind: "noop" } }
}
)";

template_ptr load(const std::string& text) {
  auto t = load_template(text, kinds());
  INFO((t ? "" : describe(t.error())));
  REQUIRE(t);
  return *t;
}

std::string load_error(const std::string& text) {
  auto t = load_template(text, kinds());
  REQUIRE_FALSE(t);
  CHECK(code_of(t.error()) == errc::invalid_argument);
  return message_of(t.error());
}

const task_def& task(const definition& d, const std::string& id) {
  auto i = d.index_of(id);
  INFO("task " << id);
  REQUIRE(i >= 0);
  return d.tasks[static_cast<size_t>(i)];
}

std::vector<std::string> deps(const definition& d, const std::string& id) {
  auto x = task(d, id).depends_on;
  std::sort(x.begin(), x.end());
  return x;
}

value list(std::vector<std::string> xs) {
  value v;
  v.kind = value::type::list;
  for (auto& x : xs)
    v.items.push_back(value::of(x));
  return v;
}

} // namespace

TEST_CASE("a template renders its phases in order, with typed and interpolated values") {
  auto t = load(live);
  CHECK(t->name == "live");
  CHECK(t->tasks_per_phase[2] == 4);
  auto d = render(*t, {{"vm", value::of("web-1")}, {"partitions", list({"p0", "p1"})}}, kinds());
  INFO((d ? "" : describe(d.error())));
  REQUIRE(d);
  auto& def = **d;
  CHECK(def.name == "live");
  CHECK(def.version == 3);
  // A task without dependencies follows every task of the previous phase that has tasks.
  CHECK(deps(def, "standby-0") == std::vector<std::string>{"check"});
  CHECK(deps(def, "copy") == std::vector<std::string>{"check"});
  CHECK(deps(def, "release") == std::vector<std::string>{"copy", "flip", "standby-0",
                                                         "standby-1"});
  // for_each: one task per element, ${item} is the element; a dependency means all of them.
  CHECK(find_param(task(def, "standby-1").parameters, "partition")->s == "p1");
  // forward is not rendered (forward = false): flip depends on what it depended on.
  CHECK(def.index_of("forward") < 0);
  CHECK(deps(def, "flip") == std::vector<std::string>{"copy", "standby-0", "standby-1"});
  CHECK(task(def, "flip").point_of_no_return);
  // An exact placeholder keeps the type; others interpolate.
  auto* count = find_param(task(def, "copy").parameters, "count");
  REQUIRE(count);
  CHECK(count->kind == value::type::number);
  CHECK(count->n == 2);
  CHECK(find_param(task(def, "copy").parameters, "note")->s == "web-1 in safe mode");
  // Labels: the template's own, then the template, its version and every argument.
  CHECK(def.labels.at("vm") == "web-1");
  CHECK(def.labels.at("template") == "live");
  CHECK(def.labels.at("template_version") == "3");
  CHECK(def.labels.at("param.partitions") == "p0,p1");
  CHECK(def.labels.at("param.cpus") == "2");
}

TEST_CASE("placeholders inside lists and objects are substituted, keeping their types") {
  auto k = kinds();
  k.add(kind_spec{"shape", {{"spec", param_type::object, true, ""}}, false, ""});
  const char* nested = R"(
name: "nested"
parameters { name: "vm" type: VM required: true }
parameters { name: "cpus" type: INTEGER default_value { number_value: 4 } }
parameters { name: "disks" type: STRING_LIST }
migrate { tasks { task { id: "a" kind: "shape" params { fields { key: "spec" value {
  struct_value {
    fields { key: "vm" value { string_value: "${vm}" } }
    fields { key: "cpus" value { string_value: "${cpus}" } }
    fields { key: "label" value { string_value: "${vm}/${cpus}" } }
    fields { key: "disks" value { list_value {
      values { string_value: "${disks}" } values { string_value: "boot-${vm}" } } } }
  } } } } } } }
)";
  auto t = load_template(nested, k);
  INFO((t ? "" : describe(t.error())));
  REQUIRE(t);
  auto d = render(**t, {{"vm", value::of("web-1")}, {"disks", list({"d0", "d1"})}}, k);
  INFO((d ? "" : describe(d.error())));
  REQUIRE(d);
  auto* spec = find_param((*d)->tasks.at(0).parameters, "spec");
  REQUIRE(spec);
  REQUIRE(spec->kind == value::type::object);
  CHECK(spec->find("vm")->s == "web-1");
  CHECK(spec->find("cpus")->kind == value::type::number);
  CHECK(spec->find("cpus")->n == 4);
  CHECK(spec->find("label")->s == "web-1/4");
  auto* disks = spec->find("disks");
  REQUIRE(disks);
  REQUIRE(disks->items.size() == 2);
  CHECK(disks->items[0] == list({"d0", "d1"}));
  CHECK(disks->items[1].s == "boot-web-1");
  // The template itself is left as written: a second render substitutes afresh.
  auto again = render(**t, {{"vm", value::of("web-2")}, {"disks", list({})}}, k);
  REQUIRE(again);
  CHECK(find_param((*again)->tasks.at(0).parameters, "spec")->find("label")->s == "web-2/4");
  CHECK((*again)->digest != (*d)->digest);
  auto same = render(**t, {{"vm", value::of("web-1")}, {"disks", list({"d0", "d1"})}}, k);
  REQUIRE(same);
  CHECK((*same)->digest == (*d)->digest);
  CHECK((*same)->encoded == (*d)->encoded);
  // A mistake deep inside names the parameter and the field.
  std::string bad = nested;
  bad.replace(bad.find("boot-${vm}"), 10, "boot-${nope}");
  auto refused = load_template(bad, k);
  REQUIRE_FALSE(refused);
  CHECK_THAT(message_of(refused.error()),
             Catch::Contains("phase \"migrate\" task \"a\": param \"spec\": field \"disks\": "
                             "unknown parameter \"nope\" in \"boot-${nope}\""));
}

TEST_CASE("a mistake in a label, a compensation or a description names where it is") {
  const char* base = R"(
name: "where"
parameters { name: "vm" type: VM required: true }
labels { key: "who" value: "LABEL" }
migrate { tasks { task { id: "a" kind: "step" description: "DESC"
  params { fields { key: "vm" value { string_value: "${vm}" } } }
  compensation { kind: "step" params { fields { key: "vm" value { string_value: "COMP" } } } }
} } }
)";
  auto with = [&](std::string label, std::string desc, std::string comp) {
    std::string text = base;
    text.replace(text.find("LABEL"), 5, label);
    text.replace(text.find("DESC"), 4, desc);
    text.replace(text.find("COMP"), 4, comp);
    return text;
  };
  CHECK_THAT(load_error(with("${nobody}", "d", "${vm}")),
             Catch::Contains("template \"where\": label \"who\": unknown parameter \"nobody\""));
  CHECK_THAT(load_error(with("l", "move ${oops}", "${vm}")),
             Catch::Contains("template \"where\": phase \"migrate\" task \"a\": description: "
                             "unknown parameter \"oops\" in \"move ${oops}\""));
  CHECK_THAT(load_error(with("l", "d", "${vmm}")),
             Catch::Contains("template \"where\": phase \"migrate\" task \"a\": compensation: "
                             "param \"vm\": unknown parameter \"vmm\""));
  CHECK(load(with("${vm}", "move ${vm}", "${vm}"))->name == "where");
}

TEST_CASE("a `when` parameter set to true renders its task") {
  auto t = load(live);
  auto d = render(*t, {{"vm", value::of("v")}, {"forward", value::of(true)}}, kinds());
  REQUIRE(d);
  CHECK(deps(**d, "forward") == std::vector<std::string>{"copy"});
  // No partitions: for_each renders nothing; what waited for it waits for what it would
  // have waited for (check), so the task never loses its place in the order.
  CHECK(deps(**d, "flip") == std::vector<std::string>{"check", "forward"});
  CHECK((*d)->index_of("standby-0") < 0);
}

TEST_CASE("arguments are checked against their parameters, naming the parameter") {
  auto t = load(live);
  auto err = [&](const template_args& a, const fleet::model* f = nullptr) {
    auto d = render(*t, a, kinds(), f);
    REQUIRE_FALSE(d);
    CHECK(code_of(d.error()) == errc::invalid_argument);
    return message_of(d.error());
  };
  CHECK_THAT(err({}), Catch::Contains("parameter \"vm\": required (VM)"));
  CHECK_THAT(err({{"vm", value::of("v")}, {"speed", value::of(1.0)}}),
             Catch::Contains("parameter \"speed\": not a parameter of the template"));
  CHECK_THAT(err({{"vm", value::of("v")}, {"cpus", value::of(1.5)}}),
             Catch::Contains("parameter \"cpus\": expected an integer"));
  CHECK_THAT(err({{"vm", value::of("v")}, {"mode", value::of("reckless")}}),
             Catch::Contains("\"reckless\" is not one of fast, safe"));
  CHECK_THAT(err({{"vm", value::of(3.0)}}), Catch::Contains("expected a string (got number)"));
  auto fleet = fleet::load_fleet(
    "zones { name: \"z\" } vm_types { name: \"t\" vcpus: 1 memory_mib: 1 }"
    "hosts { name: \"h\" zone: \"z\" driver: \"sim://z/h\" capacity { vcpus: 1 memory_mib: 1 "
    "slots: 1 } } vms { name: \"real\" type: \"t\" host: \"h\" }");
  REQUIRE(fleet);
  CHECK_THAT(err({{"vm", value::of("ghost")}}, fleet->get()),
             Catch::Contains("parameter \"vm\": VM \"ghost\" is not in the fleet"));
  CHECK(render(*t, {{"vm", value::of("real")}}, kinds(), fleet->get()));
}

TEST_CASE("a template with a mistake is refused with the phase, task and field named") {
  std::string base = "name: \"t\" parameters { name: \"vm\" type: VM }\n";
  CHECK_THAT(load_error(base + R"(migrate { tasks { task { id: "a" kind: "step" params {
               fields { key: "vm" value { string_value: "${vmm}" } } } } } })"),
             Catch::Contains("phase \"migrate\" task \"a\": param \"vm\": unknown parameter "
                             "\"vmm\""));
  CHECK_THAT(load_error(base + R"(migrate { tasks { task { id: "a" kind: "noop" depends_on: "b" } } }
               cleanup { tasks { task { id: "b" kind: "noop" } } })"),
             Catch::Contains("depends_on \"b\": a task of a later phase (cleanup)"));
  CHECK_THAT(load_error(base + R"(migrate { tasks { for_each: "vm" task { id: "a" kind: "noop" } } })"),
             Catch::Contains("for_each \"vm\": not a STRING_LIST parameter"));
  CHECK_THAT(load_error(base + R"(migrate { tasks { task { id: "a" kind: "noop" } } }
               cleanup { tasks { task { id: "a" kind: "noop" } } })"),
             Catch::Contains("task \"a\": id used twice"));
  CHECK_THAT(load_error(base + R"(migrate { tasks { task { id: "a" kind: "flp" } } })"),
             Catch::Contains("unknown kind \"flp\""));
  CHECK_THAT(load_error(base + R"(migrate { tasks { task { id: "a" kind: "step" } } })"),
             Catch::Contains("task \"a\": field \"params.vm\": missing required parameter"));
  CHECK_THAT(load_error("name: \"t\" parameters { name: \"n\" type: INTEGER default_value { "
                        "string_value: \"x\" } } migrate { tasks { task { id: \"a\" kind: "
                        "\"noop\" } } }"),
             Catch::Contains("parameter \"n\": default_value: expected an integer"));
  CHECK_THAT(load_error("name: \"t\""), Catch::Contains("no task in any phase"));
  CHECK_THAT(load_error("name: \"t\" parameters { name: \"x\" } migrate { tasks { task { id: "
                        "\"a\" kind: \"noop\" } } }"),
             Catch::Contains("parameter \"x\": field \"type\" is required"));
}

TEST_CASE("command-line arguments are parsed by the parameters' types") {
  auto t = load(live);
  auto a = parse_template_args(*t, {"vm=web-1", "cpus=4", "forward=true", "partitions=p0,p1"});
  REQUIRE(a);
  CHECK(a->at("cpus").n == 4);
  CHECK(a->at("forward").b);
  CHECK(a->at("partitions").items.size() == 2);
  CHECK_THAT(message_of(parse_template_args(*t, {"cpus=four"}).error()),
             Catch::Contains("parameter \"cpus\": \"four\" is not a number"));
  CHECK_THAT(message_of(parse_template_args(*t, {"novalue"}).error()),
             Catch::Contains("expected NAME=VALUE"));
}

TEST_CASE("a parameter given twice, or a number not written in decimal, is refused") {
  auto t = load(live);
  CHECK_THAT(message_of(parse_template_args(*t, {"vm=web-1", "vm=web-2"}).error()),
             Catch::Contains("parameter \"vm\": given more than once"));
  for (auto text : {"0x10", " 4", "4 ", "+4", "inf", "nan", "4.", ".5", "1e", "--4", ""})
    CHECK_THAT(message_of(parse_template_args(*t, {std::string{"cpus="} + text}).error()),
               Catch::Contains("parameter \"cpus\": \"" + std::string{text}
                               + "\" is not a number"));
  CHECK_THAT(message_of(parse_template_args(*t, {"cpus=1e999"}).error()),
             Catch::Contains("parameter \"cpus\": \"1e999\" is not a number in range"));
  for (auto text : {"2.5", "6e-1"})
    CHECK_THAT(message_of(parse_template_args(*t, {std::string{"cpus="} + text}).error()),
               Catch::Contains("parameter \"cpus\": \"" + std::string{text}
                               + "\" is not an integer"));
  for (auto text : {"-4", "0", "1E3", "5e1", "007"}) {
    auto a = parse_template_args(*t, {std::string{"cpus="} + text});
    REQUIRE(a);
    CHECK(a->at("cpus").n == std::strtod(text, nullptr));
  }
}

TEST_CASE("a template in JSON loads like its text form") {
  auto t = load(live);
  auto json = render_template_source(*t, template_format::json);
  auto again = load_template(json, kinds());
  REQUIRE(again);
  CHECK(render_template_source(**again, template_format::text)
        == render_template_source(*t, template_format::text));
}

TEST_CASE("a rendered task keeps every field its template task wrote") {
  auto t = load(R"(
name: "full"
parameters { name: "vm" type: VM required: true }
parameters { name: "disks" type: STRING_LIST }
migrate {
  tasks { for_each: "disks" task {
    id: "copy" kind: "step" description: "copy ${item} of ${vm}"
    params { fields { key: "vm" value { string_value: "${vm}" } } }
    retry { max_attempts: 7 initial_backoff_ms: 5 budget_ms: 9000 }
    timeout_ms: 1234
    compensation { kind: "step" params { fields { key: "vm" value { string_value: "${vm}" } } }
                   retry { max_attempts: 2 } timeout_ms: 77 }
    gate: true
    point_of_no_return: true } }
}
)");
  auto d = render(*t, {{"vm", value::of("web-1")}, {"disks", list({"d0", "d1"})}}, kinds());
  INFO((d ? "" : describe(d.error())));
  REQUIRE(d);
  for (std::string id : {"copy-0", "copy-1"}) {
    auto& x = task(**d, id);
    CHECK(x.kind == "step");
    CHECK(x.description == "copy d" + id.substr(5) + " of web-1");
    CHECK(find_param(x.parameters, "vm")->s == "web-1");
    CHECK(x.retry_written.max_attempts == 7u);
    CHECK(x.retry_written.initial_backoff_ms == 5u);
    CHECK(x.retry_written.budget_ms == 9000u);
    CHECK_FALSE(x.retry_written.jitter);
    CHECK(x.timeout_ms == 1234);
    REQUIRE(x.compensation);
    CHECK(x.compensation->kind == "step");
    CHECK(find_param(x.compensation->parameters, "vm")->s == "web-1");
    CHECK(x.compensation->retry_written.max_attempts == 2u);
    CHECK(x.compensation->timeout_ms_written == 77);
    CHECK(x.gate);
    CHECK(x.point_of_no_return);
    CHECK(x.depends_on.empty());
  }
}
