// The engine's template registry: validation, versions, built-in templates, and templates
// kept in the journal across a restart.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "actors/engine.hpp"
#include "tests/support/test_kinds.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

std::string tmpl(const std::string& name, int version, const std::string& kind = "noop") {
  return "name: \"" + name + "\" version: " + std::to_string(version)
         + " parameters { name: \"vm\" type: VM required: true }"
           " migrate { tasks { task { id: \"a\" kind: \"" + kind + "\" } } }"
           " cleanup { tasks { task { id: \"b\" kind: \"noop\" } } }";
}

std::unique_ptr<engine> open(const std::string& journal, std::vector<std::string> dirs = {}) {
  engine_options opts;
  opts.journal_path = journal;
  opts.threads = 2;
  opts.template_dirs = std::move(dirs);
  auto e = engine::open(opts);
  INFO((e ? "" : describe(e.error())));
  REQUIRE(e);
  return std::move(*e);
}

} // namespace

TEST_CASE("templates are kept in the journal, replaced only by a higher version, and deleted") {
  test::temp_dir dir;
  auto journal = dir.file("journal");
  {
    auto e = open(journal);
    REQUIRE(e->put_template(tmpl("live", 1)));
    // The same version and content again: a success; other content under it: refused.
    REQUIRE(e->put_template(tmpl("live", 1)));
    auto same = e->put_template(tmpl("live", 1, "fail"));
    REQUIRE_FALSE(same);
    CHECK(code_of(same.error()) == errc::failed_precondition);
    CHECK_THAT(message_of(same.error()),
               Catch::Contains("field \"version\": 1 does not replace version 1"));
    auto v2 = R"(name: "live" version: 2 parameters { name: "vm" type: VM required: true }
                 migrate { tasks { task { id: "a" kind: "noop" } } })";
    REQUIRE(e->put_template(v2));
    REQUIRE(e->put_template(tmpl("drain", 1)));
    auto bad = e->put_template(tmpl("broken", 1, "flp"));
    REQUIRE_FALSE(bad);
    CHECK(code_of(bad.error()) == errc::invalid_argument);
    CHECK_THAT(message_of(bad.error()), Catch::Contains("unknown kind \"flp\""));
    CHECK(e->list_templates().size() == 2);
  }
  // After a restart: what was kept is there, at its last version.
  auto e = open(journal);
  auto live = e->get_template("live");
  REQUIRE(live);
  CHECK((*live)->version == 2);
  auto d = e->render_template("live", {{"vm", value::of("web-1")}});
  REQUIRE(d);
  CHECK((*d)->labels.at("param.vm") == "web-1");
  REQUIRE_FALSE(e->delete_template("drain"));
  CHECK(code_of(e->get_template("drain").error()) == errc::not_found);
  CHECK(code_of(e->delete_template("drain")) == errc::not_found);
}

TEST_CASE("built-in templates cannot be replaced or deleted, and a broken one stops the open") {
  test::temp_dir dir;
  auto builtin = dir.file("builtin");
  std::filesystem::create_directories(builtin);
  std::ofstream{builtin + "/live.textproto"} << tmpl("live", 1);
  std::ofstream{builtin + "/README.md"} << "not a template";
  auto e = open({}, {builtin});
  REQUIRE(e->get_template("live"));
  auto replace = e->put_template(tmpl("live", 9));
  REQUIRE_FALSE(replace);
  CHECK_THAT(message_of(replace.error()), Catch::Contains("is built in: it cannot be replaced"));
  CHECK(code_of(e->delete_template("live")) == errc::failed_precondition);
  e.reset();
  std::ofstream{builtin + "/bad.textproto"} << tmpl("bad", 1, "flp");
  engine_options opts;
  opts.template_dirs = {builtin};
  auto failed = engine::open(opts);
  REQUIRE_FALSE(failed);
  CHECK_THAT(message_of(failed.error()), Catch::Contains("bad.textproto"));
}
