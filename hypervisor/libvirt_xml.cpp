// The libvirt driver's domain XML: the writer of domain and device XML (define, attach) and a
// small scanner for what libvirt writes (config(), query, the device elements to detach).
// Reads what libvirt writes (attributes quoted, '<' and '>' escaped in values); not a general
// XML parser. Pure string work, no libvirt calls and no state: runs on whichever call_pool
// thread the call runs on.
#include "hypervisor/libvirt_internal.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::hv::libvirt_detail {

namespace {

std::string unescape(std::string_view s) {
  static constexpr std::pair<std::string_view, char> entities[] = {
    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool replaced = false;
    if (s[i] == '&')
      for (auto& [name, c] : entities)
        if (s.substr(i, name.size()) == name) {
          out += c;
          i += name.size() - 1;
          replaced = true;
          break;
        }
    if (!replaced)
      out += s[i];
  }
  return out;
}

/// The next element `<tag …>…</tag>` or `<tag …/>` at or after `pos` (moved past it); empty
/// when there is none.
std::string_view next_element(std::string_view xml, const std::string& tag, size_t& pos) {
  auto open = "<" + tag;
  while (pos < xml.size()) {
    auto at = xml.find(open, pos);
    if (at == std::string_view::npos)
      break;
    auto after = at + open.size();
    pos = after;
    auto ends_name = after < xml.size()
                     && std::string_view{" \t\r\n/>"}.find(xml[after]) != std::string_view::npos;
    if (!ends_name) // <diskette> is not <disk>
      continue;
    auto gt = xml.find('>', after);
    if (gt == std::string_view::npos)
      break;
    if (xml[gt - 1] == '/') {
      pos = gt + 1;
      return xml.substr(at, pos - at);
    }
    auto close = xml.find("</" + tag + ">", gt);
    if (close == std::string_view::npos)
      break;
    pos = close + tag.size() + 3;
    return xml.substr(at, pos - at);
  }
  pos = xml.size();
  return {};
}

/// The first element `tag` inside `xml`.
std::string_view child(std::string_view xml, const std::string& tag) {
  size_t pos = 1;
  return next_element(xml, tag, pos);
}

/// Attribute `name` of the element's start tag; empty when absent.
std::string attr(std::string_view element, std::string_view name) {
  auto tag = element.substr(0, element.find('>'));
  for (size_t p = tag.find(name); p != std::string_view::npos; p = tag.find(name, p + 1)) {
    auto eq = p + name.size();
    if (p == 0 || !std::isspace(static_cast<unsigned char>(tag[p - 1])) || eq + 1 >= tag.size()
        || tag[eq] != '=')
      continue;
    auto quote = tag[eq + 1];
    auto end = tag.find(quote, eq + 2);
    if ((quote == '\'' || quote == '"') && end != std::string_view::npos)
      return unescape(tag.substr(eq + 2, end - eq - 2));
  }
  return {};
}

/// The element's text content, trimmed.
std::string inner_text(std::string_view element) {
  auto begin = element.find('>');
  auto end = element.rfind("</");
  if (begin == std::string_view::npos || end == std::string_view::npos || end <= begin)
    return {};
  auto s = element.substr(begin + 1, end - begin - 1);
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos)
    return {};
  auto last = s.find_last_not_of(" \t\r\n");
  return unescape(s.substr(first, last - first + 1));
}

uint64_t to_u64(const std::string& s) {
  return std::strtoull(s.c_str(), nullptr, 10);
}

/// A `<memory unit='…'>N</memory>`-style element in KiB.
uint64_t kib_of(std::string_view element) {
  auto n = to_u64(inner_text(element));
  auto unit = attr(element, "unit");
  if (unit == "b" || unit == "bytes")
    return n / 1024;
  if (unit == "KB")
    return n * 1000 / 1024;
  if (unit == "M" || unit == "MiB")
    return n * 1024;
  if (unit == "MB")
    return n * 1000 * 1000 / 1024;
  if (unit == "G" || unit == "GiB")
    return n * 1024 * 1024;
  if (unit == "GB")
    return n * 1000 * 1000 * 1000 / 1024;
  return n; // "", "k", "KiB"
}

bool same_mac(std::string a, std::string b) {
  auto lower = [](std::string& s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  };
  lower(a);
  lower(b);
  return a == b;
}

} // namespace

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

parsed_domain parse_domain(std::string_view xml) {
  parsed_domain d;
  d.cfg.name = d.name = inner_text(child(xml, "name"));
  auto vcpu = child(xml, "vcpu");
  d.cfg.max_vcpus = static_cast<uint32_t>(to_u64(inner_text(vcpu)));
  auto current = attr(vcpu, "current");
  d.cfg.vcpus = current.empty() ? d.cfg.max_vcpus : static_cast<uint32_t>(to_u64(current));
  d.cfg.max_memory_mib = kib_of(child(xml, "memory")) / 1024;
  auto cur = child(xml, "currentMemory");
  d.cfg.memory_mib = cur.empty() ? d.cfg.max_memory_mib : kib_of(cur) / 1024;
  size_t pos = 0;
  for (auto e = next_element(xml, "disk", pos); !e.empty(); e = next_element(xml, "disk", pos)) {
    auto source = child(e, "source");
    disk_spec disk;
    disk.target = attr(child(e, "target"), "dev");
    for (auto key : {"file", "dev", "volume", "name"})
      if (disk.source.empty())
        disk.source = attr(source, key);
    d.cfg.disks.push_back(std::move(disk));
    d.disk_elements.emplace_back(e);
  }
  pos = 0;
  for (auto e = next_element(xml, "interface", pos); !e.empty();
       e = next_element(xml, "interface", pos)) {
    nic_spec nic;
    nic.mac = attr(child(e, "mac"), "address");
    auto type = attr(e, "type");
    auto source = child(e, "source");
    nic.network = type == "network" ? attr(source, "network")
                  : type == "bridge" ? attr(source, "bridge")
                                     : type;
    d.cfg.nics.push_back(std::move(nic));
    d.nic_elements.emplace_back(e);
  }
  return d;
}

/// Index of the disk with target `target`, or -1.
int find_disk(const parsed_domain& d, const std::string& target) {
  for (size_t i = 0; i < d.cfg.disks.size(); ++i)
    if (d.cfg.disks[i].target == target)
      return static_cast<int>(i);
  return -1;
}

int find_nic(const parsed_domain& d, const std::string& mac) {
  for (size_t i = 0; i < d.cfg.nics.size(); ++i)
    if (same_mac(d.cfg.nics[i].mac, mac))
      return static_cast<int>(i);
  return -1;
}

std::string disk_xml(const disk_spec& d) {
  std::string_view suffix = ".qcow2";
  auto qcow2 = d.source.size() >= suffix.size()
               && d.source.compare(d.source.size() - suffix.size(), suffix.size(), suffix) == 0;
  auto format = qcow2 ? "qcow2" : "raw";
  return "<disk type='file' device='disk'><driver name='qemu' type='" + std::string{format}
         + "' cache='none'/><source file='" + escape(d.source) + "'/><target dev='"
         + escape(d.target) + "' bus='virtio'/></disk>";
}

std::string nic_xml(const nic_spec& n) {
  auto mac = "<mac address='" + escape(n.mac) + "'/>";
  if (n.network.empty() || n.network == "user")
    return "<interface type='user'>" + mac + "<model type='virtio'/></interface>";
  return "<interface type='network'>" + mac + "<source network='" + escape(n.network)
         + "'/><model type='virtio'/></interface>";
}

/// A domain XML built from the configuration's fields, for a host of kind `kind` ("qemu"
/// gives type='qemu', never kvm; the test driver takes type='test').
std::string domain_xml(const domain_config& cfg, const std::string& kind) {
  auto vcpus = std::max<uint32_t>(cfg.vcpus, 1);
  auto max_vcpus = std::max(cfg.max_vcpus, vcpus);
  auto max_memory = std::max(cfg.max_memory_mib, cfg.memory_mib);
  std::string x = "<domain type='" + escape(kind) + "'>\n";
  x += "  <name>" + escape(cfg.name) + "</name>\n";
  x += "  <memory unit='MiB'>" + std::to_string(max_memory) + "</memory>\n";
  x += "  <currentMemory unit='MiB'>" + std::to_string(cfg.memory_mib) + "</currentMemory>\n";
  x += "  <vcpu current='" + std::to_string(vcpus) + "'>" + std::to_string(max_vcpus)
       + "</vcpu>\n";
  x += "  <os><type>hvm</type></os>\n  <devices>\n";
  for (auto& d : cfg.disks)
    x += "    " + disk_xml(d) + "\n";
  for (auto& n : cfg.nics)
    x += "    " + nic_xml(n) + "\n";
  if (kind == "qemu")
    x += "    <memballoon model='virtio'/>\n"; // live memory changes need the balloon
  x += "  </devices>\n</domain>\n";
  return x;
}

} // namespace ferry::hv::libvirt_detail
