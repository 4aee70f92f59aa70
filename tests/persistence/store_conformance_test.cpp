// The store conformance suite: one set of tests, run against the in-memory store and the
// RocksDB store through a factory type (CONVENTIONS.md habit 11), then the cases only the
// RocksDB store has (durability across reopening, read-only mode, open errors).
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/errc.hpp"
#include "persistence/store.hpp"

namespace {

namespace fs = std::filesystem;

/// A fresh directory under /tmp, removed with everything in it on destruction.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/ferry-store-test-XXXXXX";
    auto* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// The factories the suite is instantiated with. Each owns what its store needs to live
// (the RocksDB one its temporary directory) and outlives the store it opens.

struct memory_store_factory {
  std::unique_ptr<ferry::store> open() { return ferry::make_memory_store(); }
};

struct rocksdb_store_factory {
  temp_dir dir;
  std::unique_ptr<ferry::store> open() {
    auto st = ferry::open_rocksdb_store(dir.path() + "/journal");
    INFO(ferry::describe(st ? caf::error{} : st.error()));
    REQUIRE(st);
    return std::move(*st);
  }
};

ferry::transition_record transition(std::string run, uint64_t first_seq, std::string events,
                                    std::string checkpoint) {
  ferry::transition_record r;
  r.run = std::move(run);
  r.first_seq = first_seq;
  r.events = std::move(events);
  r.checkpoint = std::move(checkpoint);
  return r;
}

caf::error write(ferry::store& st, const std::vector<ferry::transition_record>& records,
                 bool sync = false) {
  std::vector<const ferry::transition_record*> batch;
  for (auto& r : records)
    batch.push_back(&r);
  return st.write(batch, sync);
}

void require_written(ferry::store& st, const std::vector<ferry::transition_record>& records,
                     bool sync = false) {
  auto err = write(st, records, sync);
  INFO(ferry::describe(err));
  REQUIRE(!err);
}

using batch_list = std::vector<std::pair<uint64_t, std::string>>;

/// Every event record of `run` the store hands out from `from_seq`.
batch_list batches_of(const ferry::store& st, const std::string& run, uint64_t from_seq) {
  batch_list out;
  auto err = st.for_each_event_batch(run, from_seq, [&](uint64_t seq, std::string_view b) {
    out.emplace_back(seq, std::string{b});
    return true;
  });
  INFO(ferry::describe(err));
  REQUIRE(!err);
  return out;
}

std::vector<uint64_t> seqs_of(const batch_list& xs) {
  std::vector<uint64_t> out;
  for (auto& x : xs)
    out.push_back(x.first);
  return out;
}

using checkpoint_list = std::vector<std::pair<std::string, std::string>>;

checkpoint_list checkpoints_of(const ferry::store& st) {
  checkpoint_list out;
  auto err = st.for_each_checkpoint([&](std::string_view run, std::string_view cp) {
    out.emplace_back(std::string{run}, std::string{cp});
    return true;
  });
  INFO(ferry::describe(err));
  REQUIRE(!err);
  return out;
}

std::string checkpoint_of(const ferry::store& st, const std::string& run) {
  auto cp = st.checkpoint(run);
  INFO("run " << run << ": " << ferry::describe(cp ? caf::error{} : cp.error()));
  REQUIRE(cp);
  return *cp;
}

/// Bytes that are not text, including 0x00 and 0xff, so no store treats values as C strings.
std::string binary_payload(const std::string& tag) {
  std::string out = tag;
  out.push_back('\0');
  out.push_back('\xff');
  out.push_back('\x01');
  out += tag;
  return out;
}

} // namespace

// -- the conformance suite --------------------------------------------------------------------

TEMPLATE_TEST_CASE("a written transition is readable as checkpoint, events and definition",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  auto r = transition("r1", 1, binary_payload("events-1"), binary_payload("checkpoint-1"));
  r.definition_digest = "d1d1";
  r.definition = binary_payload("definition-1");
  require_written(*st, {r}, true);
  CHECK(checkpoint_of(*st, "r1") == r.checkpoint);
  CHECK(batches_of(*st, "r1", 1) == batch_list{{1, r.events}});
  auto def = st->definition("d1d1");
  REQUIRE(def);
  CHECK(*def == r.definition);
}

TEMPLATE_TEST_CASE("a batch of many transitions for several runs is all visible after one "
                   "write",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  const std::vector<std::string> runs{"alpha", "beta", "gamma", "delta"};
  std::vector<ferry::transition_record> records;
  // Three transitions per run of three events each, interleaved across runs as the journal
  // actor batches them.
  for (uint64_t t = 0; t < 3; ++t)
    for (auto& run : runs) {
      auto first = 1 + 3 * t;
      auto r = transition(run, first, run + "/events@" + std::to_string(first),
                          run + "/checkpoint@" + std::to_string(first + 2));
      if (t == 0) {
        r.definition_digest = "digest-of-" + run;
        r.definition = "definition of " + run;
      }
      records.push_back(std::move(r));
    }
  require_written(*st, records);
  for (auto& run : runs) {
    INFO("run " << run);
    // The checkpoint is the one of the last transition of the run in the batch.
    CHECK(checkpoint_of(*st, run) == run + "/checkpoint@9");
    CHECK(batches_of(*st, run, 1)
          == batch_list{{1, run + "/events@1"}, {4, run + "/events@4"},
                        {7, run + "/events@7"}});
    auto def = st->definition("digest-of-" + run);
    REQUIRE(def);
    CHECK(*def == "definition of " + run);
  }
  CHECK(checkpoints_of(*st).size() == runs.size());
}

TEMPLATE_TEST_CASE("fleet changes are written with their transition; an empty value erases",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  auto fleet_of = [&] {
    checkpoint_list out;
    REQUIRE(!st->for_each_fleet_record([&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string{k}, std::string{v});
      return true;
    }));
    return out;
  };
  auto r1 = transition("r1", 1, "e1", "cp1");
  r1.fleet = {{"lease/p1", binary_payload("table-1")}, {"resv/h1/r1.t.1", "resv"}};
  require_written(*st, {r1}, true);
  CHECK(fleet_of() == checkpoint_list{{"lease/p1", binary_payload("table-1")},
                                      {"resv/h1/r1.t.1", "resv"}});
  auto r2 = transition("r1", 2, "e2", "cp2");
  r2.fleet = {{"lease/p1", "table-2"}, {"resv/h1/r1.t.1", ""}};
  require_written(*st, {r2}, true);
  CHECK(fleet_of() == checkpoint_list{{"lease/p1", "table-2"}});
  CHECK(checkpoint_of(*st, "r1") == "cp2");
}

TEMPLATE_TEST_CASE("templates are kept by name, replaced, and removed by an empty encoding",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  auto all = [&] {
    checkpoint_list out;
    REQUIRE(!st->for_each_template([&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string{k}, std::string{v});
      return true;
    }));
    return out;
  };
  REQUIRE(!st->write_template("live", binary_payload("v1"), true));
  REQUIRE(!st->write_template("drain", "d1", true));
  REQUIRE(!st->write_template("live", "v2", true));
  CHECK(all() == checkpoint_list{{"drain", "d1"}, {"live", "v2"}});
  REQUIRE(!st->write_template("drain", "", true));
  CHECK(all() == checkpoint_list{{"live", "v2"}});
}

TEMPLATE_TEST_CASE("batches are kept by name, replaced, and removed by an empty encoding",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  auto all = [&] {
    checkpoint_list out;
    REQUIRE(!st->for_each_batch([&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string{k}, std::string{v});
      return true;
    }));
    return out;
  };
  REQUIRE(!st->write_batch("drain-a4", binary_payload("spec"), true));
  REQUIRE(!st->write_batch("wave", "w1", true));
  REQUIRE(!st->write_batch("wave", "w2", true));
  CHECK(all() == checkpoint_list{{"drain-a4", binary_payload("spec")}, {"wave", "w2"}});
  REQUIRE(!st->write_batch("drain-a4", "", true));
  CHECK(all() == checkpoint_list{{"wave", "w2"}});
  // Batches and templates do not see each other.
  REQUIRE(!st->for_each_template([](std::string_view, std::string_view) {
    FAIL("a batch read back as a template");
    return true;
  }));
}

TEMPLATE_TEST_CASE("an empty batch writes nothing and succeeds", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  CHECK(!write(*st, {}, true));
  CHECK(checkpoints_of(*st).empty());
}

TEMPLATE_TEST_CASE("a transition without events updates the checkpoint and adds no event "
                   "record",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  require_written(*st, {transition("r1", 1, "e1", "cp1")});
  require_written(*st, {transition("r1", 2, "", "cp1-again")});
  CHECK(checkpoint_of(*st, "r1") == "cp1-again");
  CHECK(batches_of(*st, "r1", 1) == batch_list{{1, "e1"}});
  CHECK(batches_of(*st, "r1", 2) == batch_list{{1, "e1"}});
}

TEMPLATE_TEST_CASE("a checkpoint written again keeps only the latest", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  require_written(*st, {transition("r1", 1, "e1", "cp-after-1")});
  require_written(*st, {transition("r1", 2, "e2", "cp-after-2")});
  CHECK(checkpoint_of(*st, "r1") == "cp-after-2");
  // Within one batch, the later record of a run wins too.
  require_written(*st, {transition("r1", 3, "e3", "cp-after-3"),
                        transition("r1", 4, "e4", "cp-after-4")});
  CHECK(checkpoint_of(*st, "r1") == "cp-after-4");
  CHECK(checkpoints_of(*st) == checkpoint_list{{"r1", "cp-after-4"}});
  CHECK(seqs_of(batches_of(*st, "r1", 1)) == std::vector<uint64_t>{1, 2, 3, 4});
}

TEMPLATE_TEST_CASE("for_each_checkpoint visits runs in key order and stops when the callback "
                   "returns false",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  // Written out of order, and with ids that are prefixes of one another.
  require_written(*st, {transition("r2", 1, "e", "cp-r2"), transition("r10", 1, "e", "cp-r10"),
                        transition("A", 1, "e", "cp-A"), transition("r1", 1, "e", "cp-r1"),
                        transition("r1.b", 1, "e", "cp-r1.b")});
  SECTION("all runs, ordered bytewise by id") {
    CHECK(checkpoints_of(*st)
          == checkpoint_list{{"A", "cp-A"},
                             {"r1", "cp-r1"},
                             {"r1.b", "cp-r1.b"},
                             {"r10", "cp-r10"},
                             {"r2", "cp-r2"}});
  }
  SECTION("the callback returning false ends the scan") {
    std::vector<std::string> seen;
    auto err = st->for_each_checkpoint([&](std::string_view run, std::string_view) {
      seen.emplace_back(run);
      return seen.size() < 2;
    });
    CHECK(!err);
    CHECK(seen == std::vector<std::string>{"A", "r1"});
  }
  SECTION("a callback returning false at once sees one run") {
    size_t calls = 0;
    auto err = st->for_each_checkpoint([&](std::string_view, std::string_view) {
      ++calls;
      return false;
    });
    CHECK(!err);
    CHECK(calls == 1);
  }
}

TEMPLATE_TEST_CASE("for_each_checkpoint on an empty store calls nothing", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  CHECK(checkpoints_of(*st).empty());
}

TEMPLATE_TEST_CASE("for_each_event_batch returns a run's batches in sequence order from the "
                   "batch holding from_seq",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  // Batches of three events: 1-3, 4-6, 7-9. Written newest first, so order comes from keys.
  require_written(*st, {transition("r1", 7, "e7-9", "cp9")});
  require_written(*st, {transition("r1", 1, "e1-3", "cp3"), transition("r1", 4, "e4-6", "cp6")});
  const batch_list all{{1, "e1-3"}, {4, "e4-6"}, {7, "e7-9"}};
  SECTION("from 1 yields every batch") {
    CHECK(batches_of(*st, "r1", 1) == all);
  }
  SECTION("from 0 yields every batch") {
    CHECK(batches_of(*st, "r1", 0) == all);
  }
  SECTION("from the first sequence number of a batch starts at that batch") {
    CHECK(seqs_of(batches_of(*st, "r1", 4)) == std::vector<uint64_t>{4, 7});
    CHECK(seqs_of(batches_of(*st, "r1", 7)) == std::vector<uint64_t>{7});
  }
  SECTION("from inside a batch starts at the batch that holds it") {
    CHECK(batches_of(*st, "r1", 5) == batch_list{{4, "e4-6"}, {7, "e7-9"}});
    CHECK(seqs_of(batches_of(*st, "r1", 6)) == std::vector<uint64_t>{4, 7});
    CHECK(seqs_of(batches_of(*st, "r1", 2)) == std::vector<uint64_t>{1, 4, 7});
    CHECK(seqs_of(batches_of(*st, "r1", 9)) == std::vector<uint64_t>{7});
  }
  SECTION("from past the last batch's start yields at most the last batch") {
    // A store keeps batches as opaque bytes: it cannot tell where the last batch ends, so the
    // last batch is the one that may hold any later number; the codec's reader skips the
    // events before from_seq. No earlier batch is ever returned.
    CHECK(seqs_of(batches_of(*st, "r1", 100)) == std::vector<uint64_t>{7});
    CHECK(seqs_of(batches_of(*st, "r1", UINT64_MAX)) == std::vector<uint64_t>{7});
  }
  SECTION("the callback returning false ends the iteration") {
    std::vector<uint64_t> seen;
    auto err = st->for_each_event_batch("r1", 1, [&](uint64_t seq, std::string_view) {
      seen.push_back(seq);
      return seq < 4;
    });
    CHECK(!err);
    CHECK(seen == std::vector<uint64_t>{1, 4});
  }
  SECTION("a run without events yields nothing") {
    CHECK(batches_of(*st, "r2", 1).empty());
    CHECK(batches_of(*st, "r2", 100).empty());
  }
}

TEMPLATE_TEST_CASE("for_each_event_batch orders sequence numbers numerically, not as text",
                   "[store]", memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  const std::vector<uint64_t> firsts{1,     2,        10,      255,        256,
                                     257,   65535,    65536,   1ull << 32, 1ull << 40,
                                     (1ull << 56) + 1, UINT64_MAX - 1};
  std::vector<ferry::transition_record> records;
  // Written in reverse so the store cannot rely on insertion order.
  for (auto i = firsts.rbegin(); i != firsts.rend(); ++i)
    records.push_back(transition("r1", *i, "e" + std::to_string(*i), "cp"));
  require_written(*st, records);
  CHECK(seqs_of(batches_of(*st, "r1", 0)) == firsts);
  CHECK(seqs_of(batches_of(*st, "r1", 300))
        == std::vector<uint64_t>(firsts.begin() + 5, firsts.end()));
  CHECK(seqs_of(batches_of(*st, "r1", 1ull << 33))
        == std::vector<uint64_t>(firsts.begin() + 8, firsts.end()));
  auto got = batches_of(*st, "r1", 65536);
  REQUIRE(!got.empty());
  CHECK(got.front() == std::make_pair(uint64_t{65536}, std::string{"e65536"}));
}

TEMPLATE_TEST_CASE("for_each_event_batch never returns another run's events", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  // "r1" is a prefix of "r10" and "r1.x"; "r" is a prefix of all of them.
  require_written(*st, {transition("r", 1, "r@1", "cp"), transition("r", 50, "r@50", "cp"),
                        transition("r1", 1, "r1@1", "cp"), transition("r1", 4, "r1@4", "cp"),
                        transition("r10", 1, "r10@1", "cp"),
                        transition("r10", 2, "r10@2", "cp"),
                        transition("r10", 900, "r10@900", "cp"),
                        transition("r1.x", 3, "r1.x@3", "cp"),
                        transition("r2", 5, "r2@5", "cp")});
  SECTION("the shorter id sees only its own batches") {
    CHECK(batches_of(*st, "r1", 1) == batch_list{{1, "r1@1"}, {4, "r1@4"}});
    CHECK(batches_of(*st, "r1", 2) == batch_list{{1, "r1@1"}, {4, "r1@4"}});
    CHECK(batches_of(*st, "r1", 1000) == batch_list{{4, "r1@4"}});
    CHECK(batches_of(*st, "r", 1) == batch_list{{1, "r@1"}, {50, "r@50"}});
    CHECK(batches_of(*st, "r", 2000) == batch_list{{50, "r@50"}});
  }
  SECTION("the longer id sees only its own batches") {
    CHECK(batches_of(*st, "r10", 1)
          == batch_list{{1, "r10@1"}, {2, "r10@2"}, {900, "r10@900"}});
    CHECK(batches_of(*st, "r10", 3) == batch_list{{2, "r10@2"}, {900, "r10@900"}});
    CHECK(batches_of(*st, "r1.x", 1) == batch_list{{3, "r1.x@3"}});
    CHECK(batches_of(*st, "r1.x", 10) == batch_list{{3, "r1.x@3"}});
  }
  SECTION("a run starting after from_seq does not pick up the preceding run's batch") {
    // The record before r2's key range belongs to r10; the one before r1.x's to r1.
    CHECK(batches_of(*st, "r2", 1) == batch_list{{5, "r2@5"}});
    CHECK(batches_of(*st, "r1.x", 0) == batch_list{{3, "r1.x@3"}});
    CHECK(batches_of(*st, "r10", 0).size() == 3);
  }
  SECTION("runs without events see nothing, even next to runs sharing their prefix") {
    CHECK(batches_of(*st, "r0", 1).empty());
    CHECK(batches_of(*st, "r11", 1).empty());
    CHECK(batches_of(*st, "r100", 1).empty());
    CHECK(batches_of(*st, "r1.", 1).empty());
    CHECK(batches_of(*st, "r3", 1000).empty());
    CHECK(batches_of(*st, "q", 7).empty());
  }
}

TEMPLATE_TEST_CASE("a callback may read the store while the store iterates", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  // The journal reader looks definitions up while it decodes a batch; a store that holds a
  // lock across the callback deadlocks here.
  TestType factory;
  auto st = factory.open();
  auto r = transition("r1", 1, "r1@1", "cp-r1");
  r.definition_digest = "d1";
  r.definition = "def";
  require_written(*st, {r, transition("r1", 4, "r1@4", "cp-r1"),
                        transition("r2", 1, "r2@1", "cp-r2")});
  std::vector<std::string> seen;
  auto err = st->for_each_event_batch("r1", 1, [&](uint64_t seq, std::string_view) {
    auto def = st->definition("d1");
    auto cp = st->checkpoint("r2");
    seen.push_back(std::to_string(seq) + ":" + (def ? *def : "?") + ":" + (cp ? *cp : "?")
                   + ":" + std::to_string(batches_of(*st, "r2", 1).size()));
    return true;
  });
  CHECK(!err);
  CHECK(seen == std::vector<std::string>{"1:def:cp-r2:1", "4:def:cp-r2:1"});
  std::vector<std::string> runs;
  err = st->for_each_checkpoint([&](std::string_view run, std::string_view) {
    auto cp = st->checkpoint(std::string{run});
    runs.push_back(std::string{run} + ":" + (cp ? *cp : "?") + ":"
                   + std::to_string(batches_of(*st, std::string{run}, 1).size()));
    return true;
  });
  CHECK(!err);
  CHECK(runs == std::vector<std::string>{"r1:cp-r1:2", "r2:cp-r2:1"});
}

TEMPLATE_TEST_CASE("a missing checkpoint or definition is not_found", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  SECTION("on an empty store") {
    auto cp = st->checkpoint("r1");
    REQUIRE(!cp);
    CHECK(ferry::code_of(cp.error()) == ferry::errc::not_found);
    CHECK_THAT(ferry::message_of(cp.error()), Catch::Contains("r1"));
    auto def = st->definition("abc123");
    REQUIRE(!def);
    CHECK(ferry::code_of(def.error()) == ferry::errc::not_found);
    CHECK_THAT(ferry::message_of(def.error()), Catch::Contains("abc123"));
  }
  SECTION("next to runs and definitions that exist") {
    auto r = transition("r10", 1, "e", "cp");
    r.definition_digest = "abc1234";
    r.definition = "def";
    require_written(*st, {r});
    auto cp = st->checkpoint("r1");
    REQUIRE(!cp);
    CHECK(ferry::code_of(cp.error()) == ferry::errc::not_found);
    auto def = st->definition("abc123");
    REQUIRE(!def);
    CHECK(ferry::code_of(def.error()) == ferry::errc::not_found);
  }
}

TEMPLATE_TEST_CASE("remove_run deletes the events and checkpoint of that run only", "[store]",
                   memory_store_factory, rocksdb_store_factory) {
  TestType factory;
  auto st = factory.open();
  auto first = transition("r1", 1, "r1@1", "cp-r1");
  first.definition_digest = "shared-digest";
  first.definition = "shared definition";
  require_written(*st, {first, transition("r1", 4, "r1@4", "cp-r1"),
                        transition("r1", UINT64_MAX - 1, "r1@max", "cp-r1"),
                        transition("r", 1, "r@1", "cp-r"), transition("r10", 1, "r10@1", "cp-r10"),
                        transition("r1.x", 2, "r1.x@2", "cp-r1.x"),
                        transition("r2", 1, "r2@1", "cp-r2")});
  auto err = st->remove_run("r1");
  INFO(ferry::describe(err));
  REQUIRE(!err);
  auto cp = st->checkpoint("r1");
  REQUIRE(!cp);
  CHECK(ferry::code_of(cp.error()) == ferry::errc::not_found);
  CHECK(batches_of(*st, "r1", 0).empty());
  CHECK(batches_of(*st, "r1", UINT64_MAX).empty());
  // Every other run is intact, its id a prefix of "r1" or "r1" a prefix of its id.
  CHECK(checkpoints_of(*st)
        == checkpoint_list{{"r", "cp-r"}, {"r1.x", "cp-r1.x"}, {"r10", "cp-r10"},
                           {"r2", "cp-r2"}});
  CHECK(batches_of(*st, "r", 1) == batch_list{{1, "r@1"}});
  CHECK(batches_of(*st, "r10", 1) == batch_list{{1, "r10@1"}});
  CHECK(batches_of(*st, "r1.x", 1) == batch_list{{2, "r1.x@2"}});
  CHECK(batches_of(*st, "r2", 1) == batch_list{{1, "r2@1"}});
  // Definitions stay: other runs may be pinned to them.
  auto def = st->definition("shared-digest");
  REQUIRE(def);
  CHECK(*def == "shared definition");
  SECTION("removing a run that does not exist succeeds and changes nothing") {
    CHECK(!st->remove_run("r1"));
    CHECK(!st->remove_run("nope"));
    CHECK(checkpoints_of(*st).size() == 4);
  }
  SECTION("a removed run may be written again from scratch") {
    require_written(*st, {transition("r1", 1, "r1@1-new", "cp-r1-new")});
    CHECK(checkpoint_of(*st, "r1") == "cp-r1-new");
    CHECK(batches_of(*st, "r1", 1) == batch_list{{1, "r1@1-new"}});
  }
}

// -- RocksDB only -----------------------------------------------------------------------------

TEST_CASE("a rocksdb journal written with sync survives closing and reopening",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/journal";
  {
    auto st = ferry::open_rocksdb_store(path);
    REQUIRE(st);
    auto r = transition("r1", 1, binary_payload("e1"), "cp-1");
    r.definition_digest = "d1";
    r.definition = binary_payload("def");
    require_written(**st, {r, transition("r2", 1, "r2@1", "cp-r2")}, true);
    require_written(**st, {transition("r1", 4, "e4", "cp-4")}, true);
    REQUIRE(!(*st)->remove_run("r2"));
  }
  auto st = ferry::open_rocksdb_store(path);
  INFO(ferry::describe(st ? caf::error{} : st.error()));
  REQUIRE(st);
  CHECK(checkpoint_of(**st, "r1") == "cp-4");
  CHECK(batches_of(**st, "r1", 1) == batch_list{{1, binary_payload("e1")}, {4, "e4"}});
  auto def = (*st)->definition("d1");
  REQUIRE(def);
  CHECK(*def == binary_payload("def"));
  // The removal survives too.
  CHECK(checkpoints_of(**st) == checkpoint_list{{"r1", "cp-4"}});
  CHECK(batches_of(**st, "r2", 1).empty());
}

TEST_CASE("a reopened rocksdb journal reads batches from its table files as it did from "
          "memory",
          "[store][rocksdb]") {
  // Reopening flushes the recovered write-ahead log into table files, so the same queries
  // go through the table readers and their prefix filters instead of the memtables.
  temp_dir dir;
  auto path = dir.path() + "/journal";
  const std::vector<std::string> runs{"r", "r1", "r1.x", "r10", "r2"};
  const std::vector<uint64_t> froms{0, 1, 2, 4, 5, 7, 8, 255, 256, 300, UINT64_MAX};
  auto snapshot = [&](const ferry::store& st) {
    std::vector<batch_list> out;
    for (auto& run : runs)
      for (auto from : froms)
        out.push_back(batches_of(st, run, from));
    for (auto& run : {"r0", "r11", "r100", "r3"})
      out.push_back(batches_of(st, run, 1));
    return out;
  };
  std::vector<batch_list> before;
  {
    auto st = ferry::open_rocksdb_store(path);
    REQUIRE(st);
    std::vector<ferry::transition_record> records;
    for (auto& run : runs)
      for (uint64_t first : {1, 4, 7, 256})
        records.push_back(transition(run, first, run + "@" + std::to_string(first), "cp"));
    require_written(**st, records, true);
    before = snapshot(**st);
  }
  // Spot-check the expectations themselves before comparing.
  REQUIRE(before[1 * froms.size() + 4] == batch_list{{4, "r1@4"}, {7, "r1@7"},
                                                     {256, "r1@256"}});
  auto st = ferry::open_rocksdb_store(path);
  REQUIRE(st);
  bool tables = false;
  for (auto& entry : fs::directory_iterator(path))
    tables = tables || entry.path().extension() == ".sst";
  CHECK(tables);
  CHECK(snapshot(**st) == before);
  SECTION("and from table files and memory together") {
    require_written(**st, {transition("r1", 300, "r1@300", "cp"),
                           transition("r10", 2, "r10@2", "cp")});
    CHECK(batches_of(**st, "r1", 257) == batch_list{{256, "r1@256"}, {300, "r1@300"}});
    CHECK(batches_of(**st, "r10", 3) == batch_list{{2, "r10@2"}, {4, "r10@4"},
                                                   {7, "r10@7"}, {256, "r10@256"}});
    REQUIRE(!(*st)->remove_run("r1"));
    CHECK(batches_of(**st, "r1", 0).empty());
    CHECK(batches_of(**st, "r1.x", 0).size() == 4);
    CHECK(batches_of(**st, "r10", 0).size() == 5);
  }
}

TEST_CASE("a rocksdb journal opened read-only sees the data and refuses writes with an error",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/journal";
  {
    auto st = ferry::open_rocksdb_store(path);
    REQUIRE(st);
    auto r = transition("r1", 1, "e1", "cp-1");
    r.definition_digest = "d1";
    r.definition = "def";
    require_written(**st, {r}, true);
  }
  ferry::rocksdb_store_options opts;
  opts.read_only = true;
  opts.create_if_missing = false;
  auto ro = ferry::open_rocksdb_store(path, opts);
  INFO(ferry::describe(ro ? caf::error{} : ro.error()));
  REQUIRE(ro);
  CHECK(checkpoint_of(**ro, "r1") == "cp-1");
  CHECK(batches_of(**ro, "r1", 1) == batch_list{{1, "e1"}});
  CHECK(checkpoints_of(**ro) == checkpoint_list{{"r1", "cp-1"}});
  auto def = (*ro)->definition("d1");
  REQUIRE(def);
  CHECK(*def == "def");
  SECTION("a write fails with an error naming the journal") {
    auto err = write(**ro, {transition("r1", 2, "e2", "cp-2")}, true);
    REQUIRE(err);
    CHECK(ferry::code_of(err) != ferry::errc::ok);
    CHECK_THAT(ferry::message_of(err), Catch::Contains(path));
    CHECK(checkpoint_of(**ro, "r1") == "cp-1");
  }
  SECTION("remove_run fails with an error and removes nothing") {
    auto err = (*ro)->remove_run("r1");
    REQUIRE(err);
    CHECK(ferry::code_of(err) != ferry::errc::ok);
    CHECK_THAT(ferry::message_of(err), Catch::Contains(path));
    CHECK(checkpoint_of(**ro, "r1") == "cp-1");
  }
}

TEST_CASE("a rocksdb journal opened read-only next to its writer sees the synced data",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/journal";
  auto rw = ferry::open_rocksdb_store(path);
  REQUIRE(rw);
  require_written(**rw, {transition("r1", 1, "e1", "cp-1")}, true);
  ferry::rocksdb_store_options opts;
  opts.read_only = true;
  opts.create_if_missing = false;
  auto ro = ferry::open_rocksdb_store(path, opts);
  INFO(ferry::describe(ro ? caf::error{} : ro.error()));
  REQUIRE(ro);
  CHECK(checkpoint_of(**ro, "r1") == "cp-1");
  CHECK(batches_of(**ro, "r1", 1) == batch_list{{1, "e1"}});
}

TEST_CASE("opening a rocksdb journal at a regular file gives an error naming the path",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/not-a-directory";
  {
    std::ofstream f{path};
    f << "just a file\n";
  }
  auto st = ferry::open_rocksdb_store(path);
  REQUIRE(!st);
  CHECK(ferry::code_of(st.error()) != ferry::errc::ok);
  CHECK_THAT(ferry::message_of(st.error()), Catch::Contains(path));
  // The file is left alone.
  CHECK(fs::is_regular_file(path));
  SECTION("read-only too") {
    ferry::rocksdb_store_options opts;
    opts.read_only = true;
    opts.create_if_missing = false;
    auto ro = ferry::open_rocksdb_store(path, opts);
    REQUIRE(!ro);
    CHECK_THAT(ferry::message_of(ro.error()), Catch::Contains(path));
  }
}

TEST_CASE("opening a missing rocksdb journal without create_if_missing gives an error naming "
          "the path",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/missing";
  ferry::rocksdb_store_options opts;
  opts.create_if_missing = false;
  auto st = ferry::open_rocksdb_store(path, opts);
  REQUIRE(!st);
  CHECK(ferry::code_of(st.error()) != ferry::errc::ok);
  CHECK_THAT(ferry::message_of(st.error()), Catch::Contains(path));
  CHECK(!fs::exists(path + "/CURRENT"));
}

TEST_CASE("a second writer of a rocksdb journal is refused with an error naming the path",
          "[store][rocksdb]") {
  temp_dir dir;
  auto path = dir.path() + "/journal";
  auto first = ferry::open_rocksdb_store(path);
  REQUIRE(first);
  auto second = ferry::open_rocksdb_store(path);
  REQUIRE(!second);
  CHECK(ferry::code_of(second.error()) != ferry::errc::ok);
  CHECK_THAT(ferry::message_of(second.error()), Catch::Contains(path));
  // The first store still works.
  require_written(**first, {transition("r1", 1, "e1", "cp-1")}, true);
  CHECK(checkpoint_of(**first, "r1") == "cp-1");
}

namespace {

std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator{dir})
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

TEST_CASE("a directory that holds no journal is told apart from a journal, and nothing is "
          "written into a directory of other files",
          "[store][rocksdb]") {
  temp_dir dir;
  ferry::rocksdb_store_options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  SECTION("a reader given a missing directory") {
    auto st = ferry::open_rocksdb_store(dir.path() + "/missing", ro);
    REQUIRE(!st);
    CHECK(ferry::code_of(st.error()) == ferry::errc::not_found);
    CHECK(ferry::message_of(st.error())
          == "journal " + dir.path() + "/missing: no such directory");
    CHECK(!fs::exists(dir.path() + "/missing"));
  }
  SECTION("a reader given an empty directory") {
    fs::create_directory(dir.path() + "/empty");
    auto st = ferry::open_rocksdb_store(dir.path() + "/empty", ro);
    REQUIRE(!st);
    CHECK(ferry::code_of(st.error()) == ferry::errc::not_found);
    CHECK(ferry::message_of(st.error())
          == "journal " + dir.path() + "/empty: the directory holds no journal");
    CHECK(entries_of(dir.path() + "/empty").empty());
  }
  SECTION("a directory of other files: readers say so, writers refuse it and leave it alone") {
    auto path = dir.path() + "/etc";
    fs::create_directory(path);
    std::ofstream{path + "/hosts"} << "127.0.0.1 localhost\n";
    auto st = ferry::open_rocksdb_store(path, ro);
    REQUIRE(!st);
    CHECK(ferry::code_of(st.error()) == ferry::errc::not_found);
    CHECK(ferry::message_of(st.error())
          == "journal " + path + ": the directory holds no journal (it holds other files: hosts)");
    auto rw = ferry::open_rocksdb_store(path);
    REQUIRE(!rw);
    CHECK(ferry::code_of(rw.error()) == ferry::errc::invalid_argument);
    CHECK(ferry::message_of(rw.error())
          == "journal " + path + ": the directory is not empty and holds no journal (hosts); "
                                 "give a new or empty directory, or an existing journal's");
    CHECK(entries_of(path) == std::vector<std::string>{"hosts"});
  }
  SECTION("a writer makes the directory with its parents, and names a file in the way") {
    // Before, RocksDB made only the last directory: "IO error: While mkdir if missing" (an
    // engine error) for a missing parent, or for a file in the way.
    auto deep = dir.path() + "/a/b/j";
    {
      auto st = ferry::open_rocksdb_store(deep);
      INFO(ferry::describe(st ? caf::error{} : st.error()));
      REQUIRE(st);
      require_written(**st, {transition("r1", 1, "e1", "cp-1")}, true);
    }
    CHECK(fs::exists(deep + "/CURRENT"));
    std::ofstream{dir.path() + "/file"} << "x";
    auto blocked = ferry::open_rocksdb_store(dir.path() + "/file/j");
    REQUIRE(!blocked);
    CHECK(ferry::code_of(blocked.error()) == ferry::errc::invalid_argument);
    CHECK(ferry::message_of(blocked.error())
          == "journal " + dir.path() + "/file/j: cannot be created: Not a directory");
  }
  SECTION("a writer creates the journal in an empty directory, or next to the simulated "
          "fleet's state, or where a first open stopped before writing CURRENT") {
    auto path = dir.path() + "/j";
    fs::create_directory(path);
    std::vector<std::string> before; // files that are not RocksDB's
    SECTION("empty") {}
    SECTION("sim-state") {
      std::ofstream{path + "/sim-state"} << "state";
      before = {"sim-state"};
    }
    SECTION("an interrupted first open") {
      for (auto* f : {"LOCK", "LOG", "IDENTITY", "000001.dbtmp", "MANIFEST-000001"})
        std::ofstream{path + "/" + f};
    }
    {
      auto st = ferry::open_rocksdb_store(path);
      INFO(ferry::describe(st ? caf::error{} : st.error()));
      REQUIRE(st);
      require_written(**st, {transition("r1", 1, "e1", "cp-1")}, true);
    }
    CHECK(fs::exists(path + "/CURRENT"));
    // The simulated fleet's state is left as it was.
    for (auto& f : before)
      CHECK(fs::file_size(path + "/" + f) == 5);
    auto again = ferry::open_rocksdb_store(path, ro);
    REQUIRE(again);
    CHECK(checkpoint_of(**again, "r1") == "cp-1");
  }
}
