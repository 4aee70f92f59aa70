// The libvirt driver's live changes: set_vcpus, set_memory and device hot-plug (attach and
// detach of disks and NICs). Each checks the domain first (the wanted count is already there,
// the device is already attached or already gone: success), then changes the running domain
// only, or the persistent definition of a shut-off one. It owns no state of its own. The
// calls queue a job and return; the libvirt work runs on a call_pool thread.
#include "hypervisor/libvirt_internal.hpp"

#include <string>

namespace ferry::hv::libvirt_detail {

void libvirt_driver::set_vcpus(const std::string& name, uint32_t vcpus, const call& c,
                               reply<domain_info> r) {
  on_domain("set_vcpus", name, c, std::move(r),
            [vcpus](virDomainPtr d, const op& o) -> caf::error {
              virDomainInfo vi;
              if (virDomainGetInfo(d, &vi) < 0)
                return last_error(o);
              if (vi.nrVirtCpu == vcpus)
                return caf::none;
              auto live = is_active(d);
              auto flags = live ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
              if (virDomainSetVcpusFlags(d, vcpus, flags) == 0)
                return caf::none;
              auto err = last_error(o);
              // Under TCG, QEMU never confirms a vCPU unplug and libvirt times out: the
              // removal may still happen, the caller must look again.
              if (live && vcpus < vi.nrVirtCpu && code_of(err) == errc::deadline_exceeded)
                return fail(errc::unavailable, o,
                            "removal of vCPUs (" + std::to_string(vi.nrVirtCpu) + " -> "
                              + std::to_string(vcpus)
                              + ") pending, verify with query: " + message_of(err));
              return err;
            });
}

void libvirt_driver::set_memory(const std::string& name, uint64_t mib, const call& c,
                                reply<domain_info> r) {
  on_domain("set_memory", name, c, std::move(r),
            [mib](virDomainPtr d, const op& o) -> caf::error {
              virDomainInfo vi;
              if (virDomainGetInfo(d, &vi) < 0)
                return last_error(o);
              if (vi.memory == mib * 1024)
                return caf::none;
              auto flags = is_active(d) ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
              return virDomainSetMemoryFlags(d, mib * 1024, flags) < 0 ? last_error(o)
                                                                        : caf::none;
            });
}

void libvirt_driver::attach_disk(const std::string& name, const disk_spec& disk, const call& c,
                                 reply<domain_info> r) {
  on_domain("attach_disk", name, c, std::move(r),
            [disk](virDomainPtr d, const op& o) -> caf::error {
              if (disk.target.empty() || disk.source.empty())
                return fail(errc::invalid_argument, o, "the disk needs a target and a source");
              auto xml = current_xml(d, o);
              if (!xml)
                return xml.error();
              if (find_disk(parse_domain(*xml), disk.target) >= 0)
                return caf::none;
              return change_device(d, disk_xml(disk), true, o);
            });
}

void libvirt_driver::detach_disk(const std::string& name, const std::string& target, const call& c,
                                 reply<domain_info> r) {
  on_domain("detach_disk", name, c, std::move(r),
            [target](virDomainPtr d, const op& o) -> caf::error {
              auto xml = current_xml(d, o);
              if (!xml)
                return xml.error();
              auto parsed = parse_domain(*xml);
              auto i = find_disk(parsed, target);
              if (i < 0)
                return caf::none;
              return change_device(d, parsed.disk_elements[i], false, o);
            });
}

void libvirt_driver::attach_nic(const std::string& name, const nic_spec& nic, const call& c,
                                reply<domain_info> r) {
  on_domain("attach_nic", name, c, std::move(r),
            [nic](virDomainPtr d, const op& o) -> caf::error {
              if (nic.mac.empty())
                return fail(errc::invalid_argument, o,
                            "the NIC needs a MAC address (it makes the attach idempotent)");
              auto xml = current_xml(d, o);
              if (!xml)
                return xml.error();
              if (find_nic(parse_domain(*xml), nic.mac) >= 0)
                return caf::none;
              return change_device(d, nic_xml(nic), true, o);
            });
}

void libvirt_driver::detach_nic(const std::string& name, const std::string& mac, const call& c,
                                reply<domain_info> r) {
  on_domain("detach_nic", name, c, std::move(r),
            [mac](virDomainPtr d, const op& o) -> caf::error {
              auto xml = current_xml(d, o);
              if (!xml)
                return xml.error();
              auto parsed = parse_domain(*xml);
              auto i = find_nic(parsed, mac);
              if (i < 0)
                return caf::none;
              return change_device(d, parsed.nic_elements[i], false, o);
            });
}

/// Hot-plugs (`attach`) or unplugs a device: live when the domain runs, else persistent.
caf::error libvirt_driver::change_device(virDomainPtr d, const std::string& xml, bool attach,
                                         const op& o) {
  unsigned flags = is_active(d) ? VIR_DOMAIN_AFFECT_LIVE : VIR_DOMAIN_AFFECT_CONFIG;
  auto rc = attach ? virDomainAttachDeviceFlags(d, xml.c_str(), flags)
                   : virDomainDetachDeviceFlags(d, xml.c_str(), flags);
  return rc < 0 ? last_error(o) : caf::none;
}

} // namespace ferry::hv::libvirt_detail
