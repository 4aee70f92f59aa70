// Tests of the libvirt driver against libvirt's in-process test driver. Each test gets private
// hosts: test:///<tmpdir>/hostN.xml files written by the test (a test:/// file URI gives
// every connection its own host). Replies are awaited with a 10 s limit, never by sleeping.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "hypervisor/call_pool.hpp"
#include "hypervisor/libvirt_driver.hpp"

using namespace ferry;
using namespace ferry::hv;
using namespace std::chrono_literals;

namespace {

/// A directory of its own, removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ferry-libvirt-XXXXXX");
    path = mkdtemp(pattern.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// A running test-driver domain: 1 of 4 vCPUs, 256 of 512 MiB, one disk, one NIC.
std::string running_domain(const std::string& name) {
  return "<domain type='test'><name>" + name + "</name>"
         "<memory unit='MiB'>512</memory><currentMemory unit='MiB'>256</currentMemory>"
         "<vcpu current='1'>4</vcpu><os><type>hvm</type></os><devices>"
         "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
         "<source file='/var/lib/ferry/" + name + ".qcow2'/><target dev='vda' bus='virtio'/>"
         "</disk><interface type='user'><mac address='52:54:00:00:00:01'/>"
         "<model type='virtio'/></interface></devices></domain>";
}

/// Writes a test-driver host (a node with 4 CPUs, 8 GiB and `domains`, which start running)
/// and returns its URI.
std::string host_uri(const temp_dir& dir, const std::string& name,
                     const std::string& domains = "") {
  auto file = dir.path / (name + ".xml");
  std::ofstream{file} << "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>4</active>"
                         "<nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>"
                         "</cpu><memory>8388608</memory>"
                      << domains << "</node>\n";
  return "test://" + file.string();
}

driver_ptr open_host(const std::string& uri, const libvirt_driver_options& opts = {}) {
  auto d = open_libvirt_driver(uri, opts);
  REQUIRE(d);
  return *d;
}

/// Calls `start` with a reply and waits for it (10 s at most).
template <class T, class F>
caf::expected<T> wait_reply(F start) {
  auto p = std::make_shared<std::promise<caf::expected<T>>>();
  auto f = p->get_future();
  start(reply<T>{[p](caf::expected<T> x) { p->set_value(std::move(x)); }});
  if (f.wait_for(10s) != std::future_status::ready)
    return make_error(errc::deadline_exceeded, "test: no reply within 10 s");
  return f.get();
}

const call c{"run/task/1", 5000ms};

domain_status status(const driver_ptr& d, const std::string& name) {
  auto i = wait_reply<domain_info>([&](auto r) { d->query(name, c, r); });
  REQUIRE(i);
  return i->status;
}

} // namespace

TEST_CASE("a domain defined from another host's configuration starts, pauses, resumes and is "
          "destroyed, each step a success when repeated") {
  temp_dir dir;
  auto host1 = open_host(host_uri(dir, "host1", running_domain("web")));
  auto host2 = open_host(host_uri(dir, "host2"));

  auto cfg = wait_reply<domain_config>([&](auto r) { host1->config("web", c, r); });
  REQUIRE(cfg);
  CHECK(cfg->name == "web");
  CHECK(cfg->vcpus == 1);
  CHECK(cfg->max_vcpus == 4);
  CHECK(cfg->memory_mib == 256);
  CHECK(cfg->max_memory_mib == 512);
  REQUIRE(cfg->disks.size() == 1);
  CHECK(cfg->disks[0].target == "vda");
  CHECK(cfg->disks[0].source == "/var/lib/ferry/web.qcow2");
  REQUIRE(cfg->nics.size() == 1);
  CHECK(cfg->nics[0].mac == "52:54:00:00:00:01");
  CHECK(cfg->nics[0].network == "user");
  CHECK(cfg->native.find("<name>web</name>") != std::string::npos);

  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    auto defined = wait_reply<domain_info>([&](auto r) { host2->define(*cfg, c, r); });
    REQUIRE(defined);
    CHECK(defined->status == domain_status::shut_off);
  }
  for (int round = 0; round < 2; ++round) {
    auto started = wait_reply<domain_info>([&](auto r) { host2->start("web", c, r); });
    REQUIRE(started);
    CHECK(started->status == domain_status::running);
    CHECK(started->vcpus == 1);
    CHECK(started->memory_mib == 256);
  }
  for (int round = 0; round < 2; ++round) {
    auto paused = wait_reply<domain_info>([&](auto r) { host2->pause("web", c, r); });
    REQUIRE(paused);
    CHECK(paused->status == domain_status::paused);
  }
  for (int round = 0; round < 2; ++round) {
    auto resumed = wait_reply<domain_info>([&](auto r) { host2->resume("web", c, r); });
    REQUIRE(resumed);
    CHECK(resumed->status == domain_status::running);
  }
  for (int round = 0; round < 2; ++round) {
    auto destroyed = wait_reply<done>([&](auto r) { host2->destroy("web", c, r); });
    REQUIRE(destroyed);
  }
  CHECK(status(host2, "web") == domain_status::absent);
  CHECK(status(host1, "web") == domain_status::running);
}

TEST_CASE("a domain defined from fields alone reads back with the same fields") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1"));
  domain_config cfg;
  cfg.name = "db";
  cfg.vcpus = 2;
  cfg.max_vcpus = 4;
  cfg.memory_mib = 192;
  cfg.max_memory_mib = 256;
  cfg.disks.push_back(disk_spec{"vdb", "/data/db.raw", true, 0});
  cfg.nics.push_back(nic_spec{"52:54:00:00:00:02", "user"});
  auto defined = wait_reply<domain_info>([&](auto r) { host->define(cfg, c, r); });
  REQUIRE(defined);
  CHECK(defined->status == domain_status::shut_off);

  auto back = wait_reply<domain_config>([&](auto r) { host->config("db", c, r); });
  REQUIRE(back);
  CHECK(back->vcpus == 2);
  CHECK(back->max_vcpus == 4);
  CHECK(back->memory_mib == 192);
  CHECK(back->max_memory_mib == 256);
  REQUIRE(back->disks.size() == 1);
  CHECK(back->disks[0].target == "vdb");
  CHECK(back->disks[0].source == "/data/db.raw");
  REQUIRE(back->nics.size() == 1);
  CHECK(back->nics[0].mac == "52:54:00:00:00:02");
}

TEST_CASE("a native description naming another domain is rejected as an invalid argument") {
  temp_dir dir;
  auto host1 = open_host(host_uri(dir, "host1", running_domain("web")));
  auto host2 = open_host(host_uri(dir, "host2"));
  auto cfg = wait_reply<domain_config>([&](auto r) { host1->config("web", c, r); });
  REQUIRE(cfg);
  cfg->name = "other";
  auto defined = wait_reply<domain_info>([&](auto r) { host2->define(*cfg, c, r); });
  REQUIRE_FALSE(defined);
  CHECK(code_of(defined.error()) == errc::invalid_argument);
}

TEST_CASE("vCPU and memory changes apply to a running domain, repeat as successes and stop at "
          "the maximum") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1", running_domain("web")));
  for (int round = 0; round < 2; ++round) {
    auto v = wait_reply<domain_info>([&](auto r) { host->set_vcpus("web", 3, c, r); });
    REQUIRE(v);
    CHECK(v->vcpus == 3);
    CHECK(v->status == domain_status::running);
  }
  for (int round = 0; round < 2; ++round) {
    auto m = wait_reply<domain_info>([&](auto r) { host->set_memory("web", 384, c, r); });
    REQUIRE(m);
    CHECK(m->memory_mib == 384);
  }
  auto beyond = wait_reply<domain_info>([&](auto r) { host->set_vcpus("web", 9, c, r); });
  REQUIRE_FALSE(beyond);
  CHECK(code_of(beyond.error()) == errc::invalid_argument);
}

TEST_CASE("vCPU and memory changes of a shut-off domain change its definition") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1"));
  domain_config cfg;
  cfg.name = "db";
  cfg.max_vcpus = 4;
  cfg.max_memory_mib = 512;
  REQUIRE(wait_reply<domain_info>([&](auto r) { host->define(cfg, c, r); }));
  REQUIRE(wait_reply<domain_info>([&](auto r) { host->set_vcpus("db", 2, c, r); }));
  REQUIRE(wait_reply<domain_info>([&](auto r) { host->set_memory("db", 256, c, r); }));
  auto back = wait_reply<domain_config>([&](auto r) { host->config("db", c, r); });
  REQUIRE(back);
  CHECK(back->vcpus == 2);
  CHECK(back->memory_mib == 256);
}

TEST_CASE("a saved domain restores to running, and saving or restoring again is a success") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1", running_domain("web")));
  auto image = (dir.path / "web.save").string();
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    REQUIRE(wait_reply<done>([&](auto r) { host->save("web", image, c, r); }));
    CHECK(status(host, "web") == domain_status::shut_off);
  }
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    auto restored = wait_reply<domain_info>([&](auto r) { host->restore(image, c, r); });
    REQUIRE(restored);
    CHECK(restored->name == "web");
    CHECK(restored->status == domain_status::running);
  }
  auto elsewhere = (dir.path / "none.save").string();
  auto missing = wait_reply<done>([&](auto r) { host->save("nope", elsewhere, c, r); });
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("an absent domain is reported absent by query and is not listed") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1", running_domain("web")));
  auto q = wait_reply<domain_info>([&](auto r) { host->query("ghost", c, r); });
  REQUIRE(q);
  CHECK(q->name == "ghost");
  CHECK(q->status == domain_status::absent);

  auto all = wait_reply<std::vector<domain_info>>([&](auto r) { host->list(c, r); });
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK((*all)[0].name == "web");
  CHECK((*all)[0].status == domain_status::running);

  auto started = wait_reply<domain_info>([&](auto r) { host->start("ghost", c, r); });
  REQUIRE_FALSE(started);
  CHECK(code_of(started.error()) == errc::not_found);
}

TEST_CASE("operations the test driver cannot do fail as unimplemented, naming the operation") {
  temp_dir dir;
  auto uri = host_uri(dir, "host1", running_domain("web"));
  auto host = open_host(uri);
  auto unimplemented = [&](const caf::error& err, const std::string& operation) {
    INFO(describe(err));
    CHECK(code_of(err) == errc::unimplemented);
    CHECK(message_of(err).find(uri + ": " + operation
                               + " is not supported by this libvirt driver (test)")
          != std::string::npos);
  };

  auto attached = wait_reply<domain_info>(
    [&](auto r) { host->attach_disk("web", disk_spec{"vdb", "/data/b.qcow2"}, c, r); });
  REQUIRE_FALSE(attached);
  unimplemented(attached.error(), "attach_disk");

  migrate_request req;
  req.domain = "web";
  req.destination_uri = host_uri(dir, "host2");
  auto migrated = wait_reply<migration_result>([&](auto r) { host->migrate(req, c, r); });
  REQUIRE_FALSE(migrated);
  unimplemented(migrated.error(), "migrate");

  auto aborted = wait_reply<done>([&](auto r) { host->abort_migration("web", c, r); });
  REQUIRE_FALSE(aborted);
  unimplemented(aborted.error(), "abort_migration");

  auto snap = wait_reply<done>([&](auto r) { host->snapshot_disk("web", "vda", "s1", c, r); });
  REQUIRE_FALSE(snap);
  unimplemented(snap.error(), "snapshot_disk");
}

TEST_CASE("device changes that are done already succeed without asking the hypervisor") {
  temp_dir dir;
  auto host = open_host(host_uri(dir, "host1", running_domain("web")));
  auto present = wait_reply<domain_info>(
    [&](auto r) { host->attach_disk("web", disk_spec{"vda", "/elsewhere.qcow2"}, c, r); });
  REQUIRE(present);
  CHECK(present->disks.size() == 1);
  REQUIRE(wait_reply<domain_info>([&](auto r) { host->detach_disk("web", "vdz", c, r); }));
  REQUIRE(wait_reply<domain_info>(
    [&](auto r) { host->attach_nic("web", nic_spec{"52:54:00:00:00:01", "user"}, c, r); }));
  REQUIRE(wait_reply<domain_info>(
    [&](auto r) { host->detach_nic("web", "52:54:00:aa:bb:cc", c, r); }));
}

TEST_CASE("a migration is a success when the domain already runs on the destination") {
  temp_dir dir;
  auto source = open_host(host_uri(dir, "host1"));
  migrate_request req;
  req.domain = "web";
  req.destination_uri = host_uri(dir, "host2", running_domain("web"));
  auto migrated = wait_reply<migration_result>([&](auto r) { source->migrate(req, c, r); });
  INFO((migrated ? "" : describe(migrated.error())));
  REQUIRE(migrated);

  req.domain = "ghost";
  auto missing = wait_reply<migration_result>([&](auto r) { source->migrate(req, c, r); });
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("a call that hangs is answered with deadline_exceeded in about its timeout while a "
          "call on another domain succeeds") {
  temp_dir dir;
  auto entered = std::make_shared<std::promise<void>>();
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  libvirt_driver_options opts;
  opts.pool_options.threads = 1;
  opts.pool_options.max_threads = 4;
  opts.before_call = [entered, released](const std::string& op, const std::string& domain) {
    if (domain != "hung")
      return;
    entered->set_value();
    // Bounded, so a failing test cannot hang the suite.
    released.wait_for(10s);
  };
  auto host = open_host(host_uri(dir, "host1", running_domain("web")), opts);

  auto answers = std::make_shared<std::atomic<int>>(0);
  auto first = std::make_shared<std::promise<caf::expected<domain_info>>>();
  auto first_answer = first->get_future();
  auto t0 = std::chrono::steady_clock::now();
  host->query("hung", call{"run/hung/1", 300ms}, [answers, first](caf::expected<domain_info> x) {
    if (++*answers == 1)
      first->set_value(std::move(x));
  });
  REQUIRE(entered->get_future().wait_for(10s) == std::future_status::ready);
  REQUIRE(first_answer.wait_for(10s) == std::future_status::ready);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  auto hung = first_answer.get();
  REQUIRE_FALSE(hung);
  CHECK(code_of(hung.error()) == errc::deadline_exceeded);
  CHECK(message_of(hung.error()).find(": query hung: no answer within 300 ms")
        != std::string::npos);
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 5s);

  // Still hung: the pool grew for this one.
  auto other = wait_reply<domain_info>([&](auto r) { host->query("web", c, r); });
  REQUIRE(other);
  CHECK(other->status == domain_status::running);

  release->set_value();
  host.reset(); // joins the pool: the hung call has finished, its late result dropped
  CHECK(answers->load() == 1);
}

TEST_CASE("a call pool starts another thread when every thread is blocked") {
  call_pool pool{call_pool_options{1, 4}};
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  auto second = std::make_shared<std::promise<void>>();
  pool.submit([released] { released.wait_for(10s); });
  pool.submit([second] { second->set_value(); });
  CHECK(second->get_future().wait_for(10s) == std::future_status::ready);
  CHECK(pool.size() == 2);
  release->set_value();
}

TEST_CASE("a call pool runs every submitted job before its destructor returns") {
  std::atomic<int> ran{0};
  {
    call_pool pool{call_pool_options{2, 2}};
    for (int i = 0; i < 100; ++i)
      pool.submit([&ran] { ++ran; });
  }
  CHECK(ran.load() == 100);
}

TEST_CASE("opening a host that does not exist fails instead of returning a driver") {
  temp_dir dir;
  auto d = open_libvirt_driver("test://" + (dir.path / "missing.xml").string());
  CHECK_FALSE(d);
}
