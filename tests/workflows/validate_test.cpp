// Validation and loading of workflow definitions: every refusal is an invalid_argument error
// naming the task and the field, text format and JSON load the same definition, and the
// digest names a definition's content, not its formatting.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include "common/errc.hpp"
#include "ferry/v1/workflow.pb.h"
#include "workflows/definition_codec.hpp"
#include "workflows/sha256.hpp"
#include "workflows/validate.hpp"

using namespace ferry;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

param_spec param(std::string name, param_type type, bool required = false) {
  param_spec p;
  p.name = std::move(name);
  p.type = type;
  p.required = required;
  return p;
}

kind_spec kind(std::string name, std::vector<param_spec> params = {}) {
  kind_spec k;
  k.name = std::move(name);
  k.params = std::move(params);
  return k;
}

const kind_catalog& kinds() {
  static const kind_catalog catalog = [] {
    kind_catalog k;
    k.add(kind("noop"));
    k.add(kind("sleep", {param("ms", param_type::integer, true)}));
    k.add(kind("fail", {param("attempts", param_type::integer),
                        param("forever", param_type::boolean),
                        param("message", param_type::string)}));
    k.add(kind("effect", {param("log", param_type::string, true)}));
    auto at_least_one = param("lo", param_type::integer);
    at_least_one.min = 1;
    auto at_most_ten = param("hi", param_type::number);
    at_most_ten.max = 10;
    k.add(kind("bounded", {at_least_one, at_most_ten,
                           within(param("both", param_type::integer), 0, uint32_limit)}));
    return k;
  }();
  return catalog;
}

// Text-format builders. `fields` are concatenated `num(...)`, `str(...)`, `flag(...)`.
std::string num(const std::string& key, const std::string& n) {
  return "fields { key: \"" + key + "\" value { number_value: " + n + " } } ";
}
std::string str(const std::string& key, const std::string& s) {
  return "fields { key: \"" + key + "\" value { string_value: \"" + s + "\" } } ";
}
std::string flag(const std::string& key, bool b) {
  return "fields { key: \"" + key + "\" value { bool_value: " + (b ? "true" : "false")
         + " } } ";
}
std::string with_params(const std::string& fields) {
  return "params { " + fields + "} ";
}
std::string dep(const std::string& id) {
  return "depends_on: \"" + id + "\" ";
}
std::string task(const std::string& id, const std::string& kind = "noop",
                 const std::string& body = "") {
  return "tasks { id: \"" + id + "\" kind: \"" + kind + "\" " + body + "}\n";
}
std::string wf(const std::string& body) {
  return "name: \"wf\"\n" + body;
}

caf::expected<definition_ptr> load(const std::string& text) {
  return load_definition(text, kinds());
}

definition_ptr load_ok(const std::string& text) {
  auto d = load(text);
  INFO(text);
  INFO((d ? std::string{} : describe(d.error())));
  REQUIRE(d);
  return *d;
}

/// Loads `text`, requires an invalid_argument refusal and returns its message.
std::string refusal(const std::string& text) {
  auto d = load(text);
  INFO(text);
  REQUIRE_FALSE(d);
  CHECK(code_of(d.error()) == errc::invalid_argument);
  return message_of(d.error());
}

/// Requires a refusal that begins `task "<task>": field "<field>": ` and contains `what`.
void require_task_error(const std::string& text, const std::string& task_id,
                        const std::string& field, const std::string& what) {
  auto msg = refusal(text);
  CHECK_THAT(msg, StartsWith("task \"" + task_id + "\": field \"" + field + "\": "));
  CHECK_THAT(msg, Contains(what));
}

const task_def& task_named(const definition& d, const std::string& id) {
  auto i = d.index_of(id);
  REQUIRE(i >= 0);
  return d.tasks[static_cast<size_t>(i)];
}

std::vector<uint32_t> indices(std::initializer_list<uint32_t> xs) {
  return xs;
}

const std::string diamond = wf(task("a") + task("b", "noop", dep("a")) + task("c", "noop", dep("a"))
                               + task("d", "noop", dep("b") + dep("c")));

} // namespace

TEST_CASE("a well-formed definition links dependencies, dependents and transitive dependents") {
  auto d = load_ok(diamond);
  REQUIRE(d->tasks.size() == 4);
  CHECK(d->name == "wf");
  CHECK(d->tasks[3].deps == indices({1, 2}));
  CHECK(d->tasks[0].dependents == indices({1, 2}));
  CHECK(d->tasks[0].transitive_dependents == indices({1, 2, 3}));
  CHECK(d->tasks[1].transitive_dependents == indices({3}));
  CHECK(d->tasks[3].transitive_dependents.empty());
  CHECK(d->index_of("c") == 2);
  CHECK(d->index_of("zz") == -1);
}

TEST_CASE("a duplicate task id is refused naming the task and the id field") {
  require_task_error(wf(task("a") + task("b") + task("a")), "a", "id", "duplicate task id");
}

TEST_CASE("a task id outside [A-Za-z0-9_.-] or a missing one is refused") {
  require_task_error(wf(task("a b")), "a b", "id", "must be 1 to 64 characters");
  require_task_error(wf(task(std::string(65, 'x'))), std::string(65, 'x'), "id",
                     "must be 1 to 64 characters");
  auto msg = refusal(wf(task("a") + "tasks { kind: \"noop\" }"));
  CHECK(msg == "task #2: field \"id\": missing");
}

TEST_CASE("an unknown kind is refused naming the task and the kind field") {
  require_task_error(wf(task("a") + task("flip", "flp")), "flip", "kind", "unknown kind \"flp\"");
  require_task_error(wf(task("a", "")), "a", "kind", "missing");
}

TEST_CASE("a missing dependency is refused naming the task and the missing id") {
  require_task_error(wf(task("a") + task("b", "noop", dep("a") + dep("ghost"))), "b",
                     "depends_on", "missing dependency \"ghost\"");
}

TEST_CASE("a dependency listed twice is refused") {
  require_task_error(wf(task("a") + task("b", "noop", dep("a") + dep("a"))), "b", "depends_on",
                     "dependency \"a\" listed twice");
}

TEST_CASE("a task depending on itself is refused") {
  require_task_error(wf(task("a") + task("b", "noop", dep("a") + dep("b"))), "b", "depends_on",
                     "depends on itself");
}

TEST_CASE("a cycle is refused and the message lists the tasks on the cycle in order") {
  // a -> c -> b -> a, following depends_on.
  require_task_error(wf(task("a", "noop", dep("c")) + task("b", "noop", dep("a"))
                        + task("c", "noop", dep("b"))),
                     "a", "depends_on", "cycle: a -> c -> b -> a");
}

TEST_CASE("a task that only depends on a cycle is not named in the cycle") {
  auto msg = refusal(wf(task("d", "noop", dep("x")) + task("x", "noop", dep("y"))
                        + task("y", "noop", dep("x")) + task("ok")));
  CHECK_THAT(msg, StartsWith("task \"x\": field \"depends_on\": "));
  CHECK_THAT(msg, Contains("cycle: x -> y -> x"));
  CHECK_THAT(msg, !Contains("d ->"));
}

TEST_CASE("an unknown compensation kind is refused naming compensation.kind") {
  require_task_error(wf(task("a", "noop", "compensation { kind: \"undo\" }")), "a",
                     "compensation.kind", "unknown compensation kind \"undo\"");
  require_task_error(wf(task("a", "noop", "compensation { timeout_ms: 5 }")), "a",
                     "compensation.kind", "missing");
}

TEST_CASE("a compensation's parameters are checked against its kind") {
  require_task_error(wf(task("a", "noop", "compensation { kind: \"effect\" }")), "a",
                     "compensation.params.log", "missing required parameter of kind \"effect\"");
  require_task_error(
    wf(task("a", "noop", "compensation { kind: \"effect\" " + with_params(num("log", "3")) + "}")),
    "a", "compensation.params.log", "expected string, got number 3");
}

TEST_CASE("an integer parameter given a string is refused naming both types") {
  require_task_error(wf(task("s", "sleep", with_params(str("ms", "5")))), "s", "params.ms",
                     "bad parameter type: expected integer, got string");
}

TEST_CASE("an integer parameter given 1.5 is refused naming the number") {
  require_task_error(wf(task("s", "sleep", with_params(num("ms", "1.5")))), "s", "params.ms",
                     "bad parameter type: expected integer, got number 1.5");
}

TEST_CASE("a number outside its kind's bounds is refused naming the bounds and the number") {
  require_task_error(wf(task("b", "bounded", with_params(num("lo", "0")))), "b", "params.lo",
                     "must be at least 1, got 0");
  require_task_error(wf(task("b", "bounded", with_params(num("hi", "10.5")))), "b", "params.hi",
                     "must be at most 10, got 10.5");
  require_task_error(wf(task("b", "bounded", with_params(num("both", "-5")))), "b", "params.both",
                     "must be between 0 and 4294967295, got -5");
  require_task_error(wf(task("b", "bounded", with_params(num("both", "4294967296")))), "b",
                     "params.both", "must be between 0 and 4294967295, got 4294967296");
  // The bounds are inclusive.
  auto d = load_ok(wf(task("b", "bounded", with_params(num("lo", "1") + num("hi", "10")
                                                      + num("both", "4294967295")))));
  CHECK(*find_param(task_named(*d, "b").parameters, "both") == value::of(4294967295.0));
  load_ok(wf(task("b", "bounded", with_params(num("lo", "1e12") + num("hi", "-3")
                                                + num("both", "0")))));
}

TEST_CASE("bool and string parameters are type-checked too") {
  require_task_error(wf(task("f", "fail", with_params(num("forever", "1")))), "f", "params.forever",
                     "expected bool, got number 1");
  require_task_error(wf(task("f", "fail", with_params(flag("message", true)))), "f",
                     "params.message", "expected string, got bool");
}

TEST_CASE("parameters of the right types are accepted and kept") {
  auto d = load_ok(wf(task("s", "sleep", with_params(num("ms", "250")))
                      + task("f", "fail", with_params(num("attempts", "2") + flag("forever", false)
                                                 + str("message", "boom")))));
  auto& f = task_named(*d, "f");
  REQUIRE(find_param(f.parameters, "attempts") != nullptr);
  CHECK(*find_param(f.parameters, "attempts") == value::of(2));
  CHECK(*find_param(f.parameters, "forever") == value::of(false));
  CHECK(*find_param(f.parameters, "message") == value::of("boom"));
  CHECK(*find_param(task_named(*d, "s").parameters, "ms") == value::of(250));
  // Struct fields have no order: parameters are kept sorted by name, whatever the input.
  auto reordered = load_ok(wf(task("f", "fail", with_params(str("message", "boom")
                                                            + flag("forever", false)
                                                            + num("attempts", "2")))));
  CHECK(reordered->tasks[0].parameters == f.parameters);
  REQUIRE(f.parameters.size() == 3);
  CHECK(f.parameters[0].first == "attempts");
  CHECK(f.parameters[1].first == "forever");
  CHECK(f.parameters[2].first == "message");
}

TEST_CASE("an unknown parameter is refused and the kind's parameters are listed") {
  require_task_error(wf(task("n", "noop", with_params(num("x", "1")))), "n", "params.x",
                     "unknown parameter for kind \"noop\" (it takes none)");
  require_task_error(wf(task("s", "sleep", with_params(num("ms", "1") + num("sm", "1")))), "s",
                     "params.sm", "unknown parameter for kind \"sleep\" (it takes ms)");
}

TEST_CASE("a missing required parameter is refused naming the parameter") {
  require_task_error(wf(task("s", "sleep")), "s", "params.ms",
                     "missing required parameter of kind \"sleep\"");
  require_task_error(wf(task("e", "effect")), "e", "params.log",
                     "missing required parameter of kind \"effect\"");
}

TEST_CASE("retry policy fields out of range are refused naming the field") {
  SECTION("max_attempts 0") {
    require_task_error(wf(task("a", "noop", "retry { max_attempts: 0 }")), "a",
                       "retry.max_attempts", "must be at least 1");
  }
  SECTION("jitter 2") {
    require_task_error(wf(task("a", "noop", "retry { jitter: 2 }")), "a", "retry.jitter",
                       "must be between 0 and 1");
  }
  SECTION("negative jitter") {
    require_task_error(wf(task("a", "noop", "retry { jitter: -0.1 }")), "a", "retry.jitter",
                       "must be between 0 and 1");
  }
  SECTION("multiplier 0.5") {
    require_task_error(wf(task("a", "noop", "retry { backoff_multiplier: 0.5 }")), "a",
                       "retry.backoff_multiplier", "must be at least 1.0");
  }
  SECTION("max_backoff_ms below initial_backoff_ms") {
    require_task_error(wf(task("a", "noop",
                               "retry { initial_backoff_ms: 500 max_backoff_ms: 100 }")),
                       "a", "retry.max_backoff_ms", "must not be less than initial_backoff_ms");
  }
  SECTION("in a compensation") {
    require_task_error(wf(task("a", "noop",
                               "compensation { kind: \"noop\" retry { max_attempts: 0 } }")),
                       "a", "compensation.retry.max_attempts", "must be at least 1");
  }
  SECTION("in the definition's default_retry, which names the definition") {
    auto msg = refusal(wf("default_retry { jitter: 2 }\n" + task("a")));
    CHECK(msg == "definition \"wf\": field \"default_retry.jitter\": must be between 0 and 1");
  }
}

TEST_CASE("a timeout or backoff past about 31 years is refused naming the field") {
  // Before, a timeout of 2^64-1 ms overflowed the deadline into the past: every attempt timed
  // out at once ("attempt 3 timed out after 18446744073709551615 ms").
  const std::string most = "must be at most 1000000000000 ms (about 31 years), got ";
  require_task_error(wf(task("a", "noop", "timeout_ms: 18446744073709551615")), "a",
                     "timeout_ms", most + "18446744073709551615");
  require_task_error(wf(task("a", "noop", "compensation { kind: \"noop\" timeout_ms: "
                                          "1000000000001 }")),
                     "a", "compensation.timeout_ms", most + "1000000000001");
  require_task_error(wf(task("a", "noop", "retry { initial_backoff_ms: 9223372036854775807 }")),
                     "a", "retry.initial_backoff_ms", most + "9223372036854775807");
  require_task_error(wf(task("a", "noop", "retry { max_backoff_ms: 1000000000001 }")), "a",
                     "retry.max_backoff_ms", most + "1000000000001");
  require_task_error(wf(task("a", "noop", "retry { budget_ms: 18446744073709551615 }")), "a",
                     "retry.budget_ms", most + "18446744073709551615");
  CHECK(refusal(wf("default_timeout_ms: 9223372036854775808\n" + task("a")))
        == "definition \"wf\": field \"default_timeout_ms\": " + most + "9223372036854775808");
  CHECK(refusal(wf("default_retry { max_backoff_ms: 1000000000001 }\n" + task("a")))
        == "definition \"wf\": field \"default_retry.max_backoff_ms\": " + most
             + "1000000000001");
  // The longest allowed is taken.
  auto d = load_ok(wf(task("a", "noop", "timeout_ms: 1000000000000 retry { max_backoff_ms: "
                                         "1000000000000 }")));
  CHECK(d->tasks[0].effective_timeout_ms == max_duration_ms);
  CHECK(d->tasks[0].retry.max_backoff_ms == max_duration_ms);
}

TEST_CASE("an invalid or missing definition name is refused") {
  auto msg = refusal("name: \"bad name\"\n" + task("a"));
  CHECK(msg == "definition: field \"name\": must be 1 to 128 characters of [A-Za-z0-9_.-], "
               "got \"bad name\"");
  CHECK(refusal(task("a")) == "definition: field \"name\": missing");
  CHECK_THAT(refusal("name: \"" + std::string(129, 'n') + "\"\n" + task("a")),
             StartsWith("definition: field \"name\": must be 1 to 128"));
  CHECK(load_ok("name: \"" + std::string(128, 'n') + "\"\n" + task("a"))->name.size() == 128);
}

TEST_CASE("a definition with no tasks is refused") {
  CHECK(refusal("name: \"empty\"\n") == "definition \"empty\": field \"tasks\": no tasks");
  CHECK(refusal("{\"name\": \"empty\", \"tasks\": []}")
        == "definition \"empty\": field \"tasks\": no tasks");
}

TEST_CASE("a text-format syntax error names the line and the column") {
  auto msg = refusal("name: \"wf\"\n"
                     "tasks {\n"
                     "  id: \"a\"\n"
                     "  kind \"noop\"\n"
                     "}\n");
  CHECK_THAT(msg, StartsWith("definition (text format): line 4 column 8: "));
}

TEST_CASE("a key given twice in a definition is refused with where it is, not silently the "
          "last one") {
  // A task's parameter twice: the second would have turned a 1 ms sleep into 100 s.
  CHECK(refusal("name: \"wf\"\n"
                "tasks { id: \"a\" kind: \"sleep\" params {\n"
                "  fields { key: \"ms\" value { number_value: 1 } }\n"
                "  fields { key: \"ms\" value { number_value: 100000 } } } }\n")
        == "definition (text format): line 4 column 3: \"fields\": key \"ms\" given more than "
           "once");
  CHECK(refusal(wf("labels { key: \"vm\" value: \"a\" } labels { key: \"vm\" value: \"b\" }\n"
                   + task("a", "noop")))
        == "definition (text format): line 2 column 33: \"labels\": key \"vm\" given more than "
           "once");
  CHECK(refusal(R"({"name": "wf", "tasks": [{"id": "a", "kind": "noop", "id": "b"}]})")
        == "definition (JSON): tasks[0].id: given more than once");
  CHECK(refusal(R"({"name": "wf", "retry_budget": 1, "retryBudget": 3,
                    "tasks": [{"id": "a", "kind": "noop"}]})")
        == "definition (JSON): retry_budget: given more than once");
  // A parameter's own object is a Struct: its keys are checked as well.
  CHECK_THAT(refusal(R"({"name": "wf", "tasks": [{"id": "a", "kind": "sleep",
                         "params": {"ms": 1, "ms": 2}}]})"),
             Contains("Repeated map key: 'ms' is already set"));
  // The same key in different objects is fine.
  load_ok(R"({"name": "wf", "labels": {"kind": "x"},
              "tasks": [{"id": "a", "kind": "noop"}, {"id": "b", "kind": "noop"}]})");
}

TEST_CASE("an unknown text-format field is refused naming the field") {
  auto msg = refusal(wf(task("a", "noop", "retries: 3")));
  CHECK_THAT(msg, StartsWith("definition (text format): line 2 column "));
  CHECK_THAT(msg, Contains("retries"));
}

TEST_CASE("a JSON definition loads to the same definition and digest as its text form") {
  auto text = load_ok(
    "name: \"wf\" version: 2 default_timeout_ms: 5000 retry_budget: 4\n"
    "labels { key: \"vm\" value: \"vm-1\" }\n"
    "default_retry { max_attempts: 5 jitter: 0 }\n"
    "tasks { id: \"a\" kind: \"sleep\" params { fields { key: \"ms\" value { number_value: 5 } } }"
    "  retry { initial_backoff_ms: 7 } timeout_ms: 100 }\n"
    "tasks { id: \"b\" kind: \"effect\" depends_on: \"a\" point_of_no_return: true gate: true\n"
    "  params { fields { key: \"log\" value { string_value: \"x\" } } }\n"
    "  compensation { kind: \"noop\" timeout_ms: 9 retry { max_attempts: 2 } } }\n");
  auto json = load_ok(R"({
    "name": "wf", "version": 2, "default_timeout_ms": 5000, "retryBudget": 4,
    "labels": {"vm": "vm-1"},
    "default_retry": {"max_attempts": 5, "jitter": 0},
    "tasks": [
      {"id": "a", "kind": "sleep", "params": {"ms": 5}, "retry": {"initial_backoff_ms": 7},
       "timeout_ms": 100},
      {"id": "b", "kind": "effect", "depends_on": ["a"], "point_of_no_return": true,
       "gate": true, "params": {"log": "x"},
       "compensation": {"kind": "noop", "timeout_ms": 9, "retry": {"max_attempts": 2}}}
    ]})");
  CHECK(json->digest == text->digest);
  CHECK(json->encoded == text->encoded);
  CHECK(json->tasks[1].deps == indices({0}));
  CHECK(json->tasks[1].compensation->retry.max_attempts == 2);
  CHECK(json->labels.at("vm") == "vm-1");
}

TEST_CASE("an unknown JSON field is refused naming the field") {
  auto msg = refusal(R"({"name": "wf", "bogus_field": 1, "tasks": [{"id": "a", "kind": "noop"}]})");
  CHECK_THAT(msg, StartsWith("definition (JSON): "));
  CHECK_THAT(msg, Contains("bogus_field"));
  // A JSON definition is validated like a text one.
  CHECK_THAT(refusal(R"({"name": "wf", "tasks": [{"id": "a", "kind": "flp"}]})"),
             StartsWith("task \"a\": field \"kind\": unknown kind \"flp\""));
}

TEST_CASE("the digest is stable: the same definition, however written, has the same digest") {
  auto a = load_ok(wf(task("f", "fail", with_params(num("attempts", "2") + str("message", "m")))));
  auto b = load_ok(wf(task("f", "fail", with_params(num("attempts", "2") + str("message", "m")))));
  // Other whitespace, comments and parameter order.
  auto c = load_ok("# a comment\nname:\"wf\"\n\n  tasks {\n id:\"f\"\n kind:\"fail\"\n"
                   "params{" + str("message", "m") + num("attempts", "2.0") + "}}");
  REQUIRE(a->digest.size() == 64);
  CHECK(a->digest.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(b->digest == a->digest);
  CHECK(c->digest == a->digest);
  // An empty default_retry says nothing.
  CHECK(load_ok("default_retry {}\n" + wf(task("f", "fail", with_params(num("attempts", "2")
                                                                   + str("message", "m")))))
          ->digest
        == a->digest);
}

TEST_CASE("the digest changes when any field changes") {
  auto base_text = [](const std::string& extra_def, const std::string& extra_task) {
    return wf(extra_def + task("a", "sleep", with_params(num("ms", "5")) + extra_task)
              + task("b", "noop", dep("a")));
  };
  auto base = load_ok(base_text("", ""))->digest;
  std::vector<std::pair<std::string, std::string>> changes = {
    {"version: 2\n", ""},
    {"default_timeout_ms: 1\n", ""},
    {"retry_budget: 1\n", ""},
    {"labels { key: \"vm\" value: \"x\" }\n", ""},
    {"default_retry { jitter: 0 }\n", ""},
    {"", "timeout_ms: 7"},
    // Writing a built-in default is still a change of the written definition.
    {"", "retry { max_attempts: 3 }"},
    {"", "description: \"d\""},
    {"", "gate: true"},
    {"", "point_of_no_return: true"},
    {"", "compensation { kind: \"noop\" }"},
  };
  for (auto& [d, t] : changes) {
    INFO(d << t);
    CHECK(load_ok(base_text(d, t))->digest != base);
  }
  CHECK(load_ok(wf(task("a", "sleep", with_params(num("ms", "6"))) + task("b", "noop", dep("a"))))
          ->digest
        != base);
  CHECK(load_ok("name: \"wf2\"\n" + task("a", "sleep", with_params(num("ms", "5")))
                + task("b", "noop", dep("a")))->digest
        != base);
}

TEST_CASE("a definition survives its encoding and its renderings with the same digest") {
  auto d = load_ok(wf("default_retry { max_attempts: 4 }\n"
                      + task("a", "effect", with_params(str("log", "l")) + "timeout_ms: 10")
                      + task("b", "noop", dep("a") + "compensation { kind: \"noop\" }")));
  auto decoded = decode_definition(d->encoded);
  REQUIRE(decoded);
  CHECK((*decoded)->digest == d->digest);
  CHECK((*decoded)->tasks[0].retry.max_attempts == 4);
  for (auto fmt : {definition_format::text, definition_format::json}) {
    auto again = load_definition(render_definition(*d, fmt), kinds(), fmt);
    REQUIRE(again);
    CHECK((*again)->digest == d->digest);
  }
  auto garbage = decode_definition("\xff\xff\xff");
  REQUIRE_FALSE(garbage);
  CHECK(code_of(garbage.error()) == errc::data_loss);
}

TEST_CASE("timeouts come from the task, then the definition, then 600000 ms") {
  auto d = load_ok(wf(task("a") + task("b", "noop", "timeout_ms: 42")));
  CHECK(d->tasks[0].effective_timeout_ms == 600000);
  CHECK(d->tasks[0].effective_timeout_ms == default_task_timeout_ms);
  CHECK(d->tasks[1].effective_timeout_ms == 42);
  auto e = load_ok(wf("default_timeout_ms: 900\n" + task("a")
                      + task("b", "noop", "timeout_ms: 42")));
  CHECK(e->tasks[0].effective_timeout_ms == 900);
  CHECK(e->tasks[1].effective_timeout_ms == 42);
}

TEST_CASE("retry policies inherit field by field from default_retry, then the built-ins") {
  auto d = load_ok(wf("default_retry { max_attempts: 5 initial_backoff_ms: 50 jitter: 0.5 }\n"
                      + task("plain")
                      + task("own", "noop", "retry { initial_backoff_ms: 7 "
                                            "backoff_multiplier: 3 budget_ms: 99 }")));
  auto& plain = task_named(*d, "plain").retry;
  CHECK(plain.max_attempts == 5);
  CHECK(plain.initial_backoff_ms == 50);
  CHECK(plain.jitter == 0.5);
  CHECK(plain.max_backoff_ms == 10000);
  CHECK(plain.backoff_multiplier == 2.0);
  CHECK(plain.budget_ms == 0);
  auto& own = task_named(*d, "own").retry;
  CHECK(own.max_attempts == 5);
  CHECK(own.initial_backoff_ms == 7);
  CHECK(own.backoff_multiplier == 3.0);
  CHECK(own.budget_ms == 99);
  CHECK(own.jitter == 0.5);
  auto none = load_ok(wf(task("a")));
  auto& builtin = none->tasks[0].retry;
  retry_policy expected;
  CHECK(builtin.max_attempts == 3);
  CHECK(builtin.initial_backoff_ms == expected.initial_backoff_ms);
  CHECK(builtin.max_backoff_ms == expected.max_backoff_ms);
  CHECK(builtin.backoff_multiplier == expected.backoff_multiplier);
  CHECK(builtin.jitter == expected.jitter);
}

TEST_CASE("an initial backoff above the inherited cap raises the cap to it") {
  auto d = load_ok(wf(task("a", "noop", "retry { initial_backoff_ms: 20000 }")));
  CHECK(d->tasks[0].retry.initial_backoff_ms == 20000);
  CHECK(d->tasks[0].retry.max_backoff_ms == 20000);
}

TEST_CASE("a compensation retries 10 times unless told otherwise and times out with its task") {
  auto d = load_ok(wf(task("a", "noop", "timeout_ms: 300 compensation { kind: \"noop\" }")
                      + task("b", "noop", "compensation { kind: \"noop\" timeout_ms: 7 "
                                          "retry { max_attempts: 2 initial_backoff_ms: 1 } }")
                      + task("c")));
  auto& a = task_named(*d, "a");
  REQUIRE(a.compensation);
  CHECK(a.compensation->retry.max_attempts == 10);
  CHECK(a.retry.max_attempts == 3);
  CHECK(a.compensation->timeout_ms == 300);
  auto& b = task_named(*d, "b");
  REQUIRE(b.compensation);
  CHECK(b.compensation->retry.max_attempts == 2);
  CHECK(b.compensation->retry.initial_backoff_ms == 1);
  CHECK(b.compensation->timeout_ms == 7);
  CHECK_FALSE(task_named(*d, "c").compensation);
}

TEST_CASE("a definition built in code is validated and finished like a loaded one") {
  definition def;
  def.name = "wf";
  task_def t;
  t.id = "s";
  t.kind = "sleep";
  def.tasks.push_back(t);
  auto bad = finish_definition(def, kinds());
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::invalid_argument);
  CHECK_THAT(message_of(bad.error()), StartsWith("task \"s\": field \"params.ms\": "));
  def.tasks[0].parameters.emplace_back("ms", value::of(5));
  auto good = finish_definition(def, kinds());
  REQUIRE(good);
  CHECK((*good)->digest == load_ok(wf(task("s", "sleep", with_params(num("ms", "5")))))->digest);
}

TEST_CASE("an output reference names a task the referring task depends on, directly or not") {
  auto ok = load_ok(wf(task("a") + task("b", "noop", dep("a"))
                       + task("c", "effect", dep("b") + with_params(str("log", "host @{a}, @{b}")))));
  CHECK(task_named(*ok, "c").uses_outputs);
  CHECK_FALSE(task_named(*ok, "b").uses_outputs);
  require_task_error(wf(task("a") + task("c", "effect", with_params(str("log", "@{a}")))), "c",
                     "params.log", "@{a}: the output of a task this one does not depend on");
  require_task_error(wf(task("a") + task("c", "effect", dep("a") + with_params(str("log", "@{z}")))),
                     "c", "params.log", "@{z}: no task has that id");
  // A compensation's references are checked the same way.
  require_task_error(wf(task("a") + task("b", "noop",
                                         "compensation { kind: \"effect\" "
                                         + with_params(str("log", "@{a}")) + "}")),
                     "b", "compensation.params.log", "@{a}");
  // A compensation may name its own task's output (what the task did, to undo); the task
  // itself may not (it has no output yet).
  auto own = load_ok(wf(task("a") + task("b", "noop",
                                         "compensation { kind: \"effect\" "
                                         + with_params(str("log", "undo @{b}")) + "}")));
  CHECK(task_named(*own, "b").uses_outputs);
  require_task_error(wf(task("b", "effect", with_params(str("log", "@{b}")))), "b", "params.log",
                     "@{b}: the output of a task this one does not depend on");
}

TEST_CASE("output references are replaced by the outputs, anywhere in a value") {
  value v;
  v.kind = value::type::list;
  v.items = {value::of("@{reserve}"), value::of("to @{reserve} from @{src}!"), value::of(3)};
  CHECK(output_refs(v) == std::vector<std::string>{"reserve", "reserve", "src"});
  auto out = substitute_outputs(v, [](const std::string& id) {
    return id == "reserve" ? std::string{"b2"} : std::string{"a1"};
  });
  CHECK(out.items[0].s == "b2");
  CHECK(out.items[1].s == "to b2 from a1!");
  CHECK(out.items[2].n == 3);
  CHECK(substitute_outputs(value::of("no @{ref"), [](const std::string&) { return std::string{"x"}; }).s
        == "no @{ref");
}

namespace {

// Every field of a definition, with the cases the canonical encoding must get right: optional
// fields set to their default, a compensation with nothing but its kind, parameters of every
// type (nested, empty, null, false, zero, negative), maps whose keys sort by bytes.
const char* canonical_check = R"pb(
name: "canonical-check"
version: 7
labels { key: "zone" value: "z1" }
labels { key: "empty" value: "" }
labels { key: "\303\251t\303\251" value: "summer" }
labels { key: "Alpha" value: "first by bytes" }
default_retry { max_attempts: 3 jitter: 0 }
default_timeout_ms: 60000
retry_budget: 3
tasks {
  id: "a" kind: "open"
  params {
    fields { key: "zero" value { number_value: 0 } }
    fields { key: "neg" value { number_value: -1.5 } }
    fields { key: "big" value { number_value: 1e300 } }
    fields { key: "no" value { bool_value: false } }
    fields { key: "nothing" value { null_value: NULL_VALUE } }
    fields { key: "empty" value { string_value: "" } }
    fields { key: "B" value { string_value: "upper sorts first" } }
    fields { key: "list" value { list_value { values { number_value: 1 } values { list_value {} } values { struct_value {} } values { string_value: "x" } } } }
    fields { key: "obj" value { struct_value { fields { key: "z" value { bool_value: true } } fields { key: "a" value { struct_value { fields { key: "deep" value { null_value: NULL_VALUE } } } } } } } }
  }
  retry { initial_backoff_ms: 0 max_backoff_ms: 5 backoff_multiplier: 2 budget_ms: 9 }
  timeout_ms: 100
  compensation { kind: "open" }
  description: "first"
}
tasks {
  id: "b" kind: "open" depends_on: "a"
  compensation { kind: "open" params { fields { key: "undo" value { bool_value: true } } } retry { max_attempts: 2 } timeout_ms: 7 }
  point_of_no_return: true
}
tasks { id: "c" kind: "open" depends_on: "a" depends_on: "b" gate: true }
)pb";

const kind_catalog& open_kinds() {
  static const kind_catalog catalog = [] {
    kind_catalog k;
    kind_spec open;
    open.name = "open";
    open.open_params = true;
    k.add(open);
    return k;
  }();
  return catalog;
}

/// Protobuf's own deterministic serialization of a message.
std::string deterministic(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream sos{&out};
  google::protobuf::io::CodedOutputStream cos{&sos};
  cos.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&cos);
  cos.Trim();
  return out;
}

} // namespace

TEST_CASE("the canonical encoding is protobuf's deterministic serialization of the definition") {
  auto d = load_definition(canonical_check, open_kinds(), definition_format::text);
  INFO((d ? "" : describe(d.error())));
  REQUIRE(d);
  // The digest of this definition as every earlier version computed it: journals keep
  // definitions under it, and a run resubmitted with the same definition must find its own.
  CHECK((*d)->digest == "58804451bbac2a9fc3e31547dea43396adce6de0b860f3e5c8a0ea009536e753");
  // The same bytes as protobuf writes for the message the text parses to.
  ferry::v1::WorkflowDefinition parsed;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(canonical_check, &parsed));
  CHECK((*d)->encoded == deterministic(parsed));
  // Parameters given in any order encode the same.
  definition reordered = **d;
  std::reverse(reordered.tasks[0].parameters.begin(), reordered.tasks[0].parameters.end());
  auto again = finish_definition(reordered, open_kinds());
  REQUIRE(again);
  CHECK((*again)->encoded == (*d)->encoded);
  // An object that repeats a key (possible only in a definition built in code) encodes as
  // protobuf's map does: the last one stays.
  auto object_of = [](std::vector<std::pair<std::string, value>> fields) {
    value v;
    v.kind = value::type::object;
    v.fields = std::move(fields);
    return v;
  };
  definition twice = **d;
  twice.tasks[1].parameters = {{"o", object_of({{"k", value::of(1)}, {"k", value::of(2)}})}};
  definition once = **d;
  once.tasks[1].parameters = {{"o", object_of({{"k", value::of(2)}})}};
  auto a = finish_definition(twice, open_kinds());
  auto b = finish_definition(once, open_kinds());
  REQUIRE(a);
  REQUIRE(b);
  CHECK((*a)->encoded == (*b)->encoded);
}

namespace {

// Random definitions (and bytes) for the encoders: every field, set or not, values of every
// kind at any depth, keys and strings that are empty or not ASCII, numbers at the edges.
struct definition_gen {
  uint64_t x;

  uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
  bool coin() { return next() % 2 == 0; }
  size_t upto(size_t n) { return static_cast<size_t>(next() % (n + 1)); }

  std::string text() {
    static const std::string pieces[] = {"", "a", "vm-17", "h0-999", "${vm}", "héllo", "日本",
                                         "x y", std::string(200, 'z')};
    std::string s;
    for (size_t i = 0, n = upto(3); i < n; ++i)
      s += pieces[next() % (sizeof pieces / sizeof *pieces)];
    return s;
  }
  double number() {
    static const double xs[] = {0.0, -0.0, 1.0, -1.0, 1.5, 1e300, -3e-300, 4294967296.0,
                                0.1, 123456789012345.0};
    return xs[next() % (sizeof xs / sizeof *xs)];
  }
  params fields(int depth) {
    params ps;
    for (size_t i = 0, n = upto(4); i < n; ++i)
      ps.emplace_back(text() + std::to_string(i), val(depth + 1));
    std::sort(ps.begin(), ps.end(), [](auto& a, auto& b) { return a.first < b.first; });
    ps.erase(std::unique(ps.begin(), ps.end(),
                         [](auto& a, auto& b) { return a.first == b.first; }),
             ps.end());
    return ps;
  }
  value val(int depth) {
    value v;
    switch (next() % (depth > 3 ? 4 : 6)) {
      case 0: break;
      case 1: v = value::of(coin()); break;
      case 2: v = value::of(number()); break;
      case 3: v = value::of(text()); break;
      case 4:
        v.kind = value::type::list;
        for (size_t i = 0, n = upto(3); i < n; ++i)
          v.items.push_back(val(depth + 1));
        break;
      default:
        v.kind = value::type::object;
        v.fields = fields(depth);
        break;
    }
    return v;
  }
  retry_spec retry() {
    retry_spec r;
    if (coin()) r.max_attempts = static_cast<uint32_t>(upto(3));
    if (coin()) r.initial_backoff_ms = upto(1) * 300;
    if (coin()) r.max_backoff_ms = next();
    if (coin()) r.backoff_multiplier = number();
    if (coin()) r.jitter = coin() ? 0.0 : 0.25;
    if (coin()) r.budget_ms = upto(2) * 1000000;
    return r;
  }
  definition def() {
    definition d;
    d.name = text();
    d.version = static_cast<uint32_t>(upto(1) * next());
    d.default_retry = retry();
    d.default_timeout_ms = upto(1) * next();
    d.retry_budget = static_cast<uint32_t>(upto(2));
    for (size_t i = 0, n = upto(3); i < n; ++i)
      d.labels[text()] = text();
    for (size_t i = 0, n = upto(6); i < n; ++i) {
      task_def t;
      t.id = coin() ? "t" + std::to_string(i) : text();
      t.kind = text();
      t.parameters = fields(0);
      for (size_t k = 0, m = upto(2); k < m; ++k)
        t.depends_on.push_back(text());
      t.retry_written = retry();
      t.timeout_ms = upto(1) * next();
      if (coin()) {
        compensation_def c;
        c.kind = text();
        c.parameters = fields(0);
        c.retry_written = retry();
        c.timeout_ms_written = upto(1) * 5000;
        t.compensation = std::move(c);
      }
      t.point_of_no_return = coin();
      t.gate = coin();
      t.description = text();
      d.tasks.push_back(std::move(t));
    }
    return d;
  }
};

} // namespace

TEST_CASE("the canonical encoding is written byte for byte as protobuf's deterministic "
          "serialization writes it") {
  definition_gen gen{0x9e3779b97f4a7c15ull};
  for (int i = 0; i < 2000; ++i) {
    auto d = gen.def();
    auto direct = encode_definition(d);
    auto through_protobuf = encode_definition_with_protobuf(d);
    INFO("definition " << i << " (" << d.tasks.size() << " tasks)");
    REQUIRE(direct == through_protobuf);
  }
  // And what loading writes is that encoding.
  auto d = load_ok(wf("default_retry { initial_backoff_ms: 0 jitter: 0 }\nlabels { key: \"k\" value: \"\" }\n"
                      + task("a", "fail", with_params(num("attempts", "0") + flag("forever", false)
                                                      + str("message", "")))
                      + task("b", "noop", dep("a") + "compensation { kind: \"noop\" }")));
  CHECK(d->encoded == encode_definition(*d));
  CHECK(d->encoded == encode_definition_with_protobuf(*d));
}

TEST_CASE("a definition built in code with its parameters out of order encodes as protobuf "
          "does") {
  definition d;
  d.name = "wf";
  task_def t;
  t.id = "a";
  t.kind = "effect";
  t.parameters = {{"log", value::of("x")}, {"id", value::of(1)}};
  value nested;
  nested.kind = value::type::object;
  nested.fields = {{"z", value::of(true)}, {"a", value::of(2)}};
  t.parameters.emplace_back("deep", nested);
  d.tasks.push_back(t);
  CHECK(encode_definition(d) == encode_definition_with_protobuf(d));
  // The order they are written in is not part of the definition: same digest sorted.
  auto sorted = d;
  auto& ps = sorted.tasks[0].parameters;
  std::sort(ps.begin(), ps.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::sort(ps[0].second.fields.begin(), ps[0].second.fields.end(),
            [](auto& a, auto& b) { return a.first < b.first; });
  CHECK(encode_definition(sorted) == encode_definition(d));
}

TEST_CASE("a definition built in code with text that is not UTF-8 is refused, naming the "
          "field, rather than journaled as a record that cannot be read back") {
  auto base = [] {
    definition d;
    d.name = "wf";
    task_def t;
    t.id = "a";
    t.kind = "effect";
    t.parameters = {{"log", value::of("fine")}};
    d.tasks.push_back(t);
    return d;
  };
  const std::string bad = "caf\xc3 \xff";
  auto refused = [&](definition d, const std::string& owner, const std::string& field) {
    auto f = finish_definition(std::move(d), kinds());
    REQUIRE_FALSE(f);
    CHECK(code_of(f.error()) == errc::invalid_argument);
    CHECK_THAT(message_of(f.error()),
               StartsWith(owner + ": field \"" + field + "\": ") && Contains("UTF-8"));
  };
  auto d = base();
  d.tasks[0].parameters[0].second = value::of(bad);
  refused(d, "task \"a\"", "params.log");
  d = base();
  value nested;
  nested.kind = value::type::list;
  nested.items.push_back(value::of("ok"));
  nested.items.push_back(value::of(bad));
  d.tasks[0].kind = "noop";
  d.tasks[0].parameters.clear();
  d.tasks[0].compensation = compensation_def{};
  d.tasks[0].compensation->kind = "effect";
  d.tasks[0].compensation->parameters = {{"log", nested}};
  refused(d, "task \"a\"", "compensation.params.log");
  d = base();
  d.tasks[0].description = bad;
  refused(d, "task \"a\"", "description");
  d = base();
  d.labels["owner"] = bad;
  refused(d, "definition \"wf\"", "labels");
  d = base();
  d.labels[bad] = "x";
  refused(d, "definition \"wf\"", "labels");
  // What is accepted can be read back.
  d = base();
  d.tasks[0].description = "café ☕";
  auto ok = finish_definition(d, kinds());
  REQUIRE(ok);
  auto back = decode_definition((*ok)->encoded);
  REQUIRE(back);
  CHECK((*back)->tasks[0].description == "café ☕");
}

TEST_CASE("SHA-256 gives the standard's digests, with the CPU's SHA instructions as without") {
  const std::pair<std::string, std::string> known[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {std::string(1000000, 'a'),
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (auto& [in, digest] : known) {
    INFO("input of " << in.size() << " bytes");
    CHECK(sha256_hex(in) == digest);
    CHECK(sha256_hex_portable(in) == digest);
  }
  // Every length across the block and padding boundaries, arbitrary bytes.
  definition_gen bytes{0x2545f4914f6cdd1dull};
  std::string in;
  for (size_t n = 0; n < 300; ++n) {
    INFO("input of " << n << " bytes (accelerated: " << sha256_accelerated() << ")");
    REQUIRE(sha256_hex(in) == sha256_hex_portable(in));
    in.push_back(static_cast<char>(bytes.next() >> 56));
  }
}
