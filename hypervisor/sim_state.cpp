// sim_world, its state file (sim_options::state_file): the hosts, their domains and images,
// the virtual time and the finished migrations (for re-dispatches), written before a change is
// answered and read back when the world is made. The format is private to this file: tokens
// separated by spaces, strings as "<length>:<bytes>", one record per line.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "hypervisor/sim_world.hpp"

namespace ferry::hv {

namespace {

struct writer {
  std::ostringstream out;

  writer& str(const std::string& s) {
    out << s.size() << ':' << s << ' ';
    return *this;
  }
  template <class T>
  writer& num(T x) {
    out << x << ' ';
    return *this;
  }
  void end() {
    out << '\n';
  }
};

struct reader {
  std::istream& in;
  bool ok = true;

  std::string str() {
    size_t n = 0;
    char colon = 0;
    if (!(in >> n) || !in.get(colon) || colon != ':') {
      ok = false;
      return {};
    }
    std::string s(n, '\0');
    if (n > 0 && !in.read(&s[0], static_cast<std::streamsize>(n)))
      ok = false;
    return s;
  }
  template <class T>
  T num() {
    T x{};
    if (!(in >> x))
      ok = false;
    return x;
  }
};

void write_config(writer& w, const domain_config& c) {
  w.str(c.name).num(c.vcpus).num(c.max_vcpus).num(c.memory_mib).num(c.max_memory_mib);
  w.num(c.disks.size());
  for (auto& d : c.disks)
    w.str(d.target).str(d.source).num(d.local ? 1 : 0).num(d.size_bytes);
  w.num(c.nics.size());
  for (auto& n : c.nics)
    w.str(n.mac).str(n.network);
  w.num(c.dirty_mib_s).num(c.agent ? 1 : 0).str(c.native);
}

domain_config read_config(reader& r) {
  domain_config c;
  c.name = r.str();
  c.vcpus = r.num<uint32_t>();
  c.max_vcpus = r.num<uint32_t>();
  c.memory_mib = r.num<uint64_t>();
  c.max_memory_mib = r.num<uint64_t>();
  auto nd = r.num<size_t>();
  for (size_t i = 0; r.ok && i < nd; ++i) {
    disk_spec d;
    d.target = r.str();
    d.source = r.str();
    d.local = r.num<int>() != 0;
    d.size_bytes = r.num<uint64_t>();
    c.disks.push_back(std::move(d));
  }
  auto nn = r.num<size_t>();
  for (size_t i = 0; r.ok && i < nn; ++i) {
    nic_spec n;
    n.mac = r.str();
    n.network = r.str();
    c.nics.push_back(std::move(n));
  }
  c.dirty_mib_s = r.num<double>();
  c.agent = r.num<int>() != 0;
  c.native = r.str();
  return c;
}

} // namespace

void sim_world::save_state() {
  if (opts_.state_file.empty() || !dirty_)
    return;
  dirty_ = false;
  writer w;
  w.out.precision(17);
  w.str("ferry-sim-state").num(1).num(now_us_).end();
  for (auto& [uri, h] : hosts_) {
    w.str("host").str(uri).str(h.zone).num(h.nic_bytes_s).num(h.up ? 1 : 0).end();
    for (auto& [name, d] : h.domains) {
      // A migration in flight is not kept: its domain runs on here after a restart.
      auto status = d.status;
      for (auto& [id, m] : migrations_)
        if (m.src == uri && m.domain == name && status == domain_status::migrating)
          status = m.was;
      w.str("domain").str(uri).num(static_cast<int>(status));
      write_config(w, d.config);
      w.num(d.snapshots.size());
      for (auto& s : d.snapshots)
        w.str(s);
      w.end();
    }
    for (auto& [path, cfg] : h.images) {
      w.str("image").str(uri).str(path);
      write_config(w, cfg);
      w.end();
    }
  }
  for (auto& [key, f] : finished_) {
    w.str("finished").str(key).str(f.domain).str(f.dst);
    w.num(f.result.duration_ms).num(f.result.downtime_ms).num(f.result.transferred_bytes);
    w.num(f.result.iterations).num(static_cast<int>(f.result.mode)).end();
  }
  auto tmp = opts_.state_file + ".tmp";
  {
    std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
    out << w.out.str();
    if (!out)
      return; // kept dirty-free: the next change tries again with the whole state
  }
  std::rename(tmp.c_str(), opts_.state_file.c_str());
}

caf::error sim_world::load_state(bool& found) {
  found = false;
  std::ifstream in{opts_.state_file, std::ios::binary};
  if (!in)
    return {};
  found = true;
  reader r{in};
  auto bad = [&](const std::string& what) {
    return make_error(errc::data_loss, "simulator state " + opts_.state_file + ": " + what);
  };
  if (r.str() != "ferry-sim-state" || r.num<int>() != 1)
    return bad("not a state file of this version");
  now_us_ = r.num<uint64_t>();
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    std::istringstream ls{line};
    reader lr{ls};
    auto kind = lr.str();
    if (kind == "host") {
      sim_host h;
      h.uri = lr.str();
      h.zone = lr.str();
      h.nic_bytes_s = lr.num<double>();
      h.up = lr.num<int>() != 0;
      hosts_[h.uri] = std::move(h);
    } else if (kind == "domain") {
      auto uri = lr.str();
      auto status = static_cast<domain_status>(lr.num<int>());
      sim_domain d;
      d.config = read_config(lr);
      d.status = status;
      auto n = lr.num<size_t>();
      for (size_t i = 0; lr.ok && i < n; ++i)
        d.snapshots.insert(lr.str());
      auto name = d.config.name;
      hosts_[uri].domains[name] = std::move(d);
    } else if (kind == "image") {
      auto uri = lr.str();
      auto path = lr.str();
      hosts_[uri].images[path] = read_config(lr);
    } else if (kind == "finished") {
      auto key = lr.str();
      finished_migration f;
      f.domain = lr.str();
      f.dst = lr.str();
      f.result.duration_ms = lr.num<uint64_t>();
      f.result.downtime_ms = lr.num<uint64_t>();
      f.result.transferred_bytes = lr.num<uint64_t>();
      f.result.iterations = lr.num<uint32_t>();
      f.result.mode = static_cast<migration_mode>(lr.num<int>());
      finished_[key] = std::move(f);
    } else {
      return bad("unknown record \"" + kind + "\"");
    }
    if (!lr.ok)
      return bad("a damaged " + kind + " record");
  }
  return {};
}

} // namespace ferry::hv
