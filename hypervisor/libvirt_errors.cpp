// The libvirt driver's error translation: the one place a virErrorPtr becomes a ferry::errc
// (habit 6). It owns the mapping from libvirt's error codes to Ferry's and the message format
// "<uri>: <op> <domain>: <why>"; unsupported operations say so naming the driver's kind.
// Runs on the call_pool thread that made the failed libvirt call: libvirt keeps the last
// error per thread, and last_error() reads and resets that thread's.
#include "hypervisor/libvirt_internal.hpp"

#include <string>

namespace ferry::hv::libvirt_detail {

namespace {

errc code_for(int vir_code, const std::string& msg) {
  switch (vir_code) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_SNAPSHOT:
    case VIR_ERR_NO_DOMAIN_CHECKPOINT:
    case VIR_ERR_NO_DOMAIN_METADATA:
    case VIR_ERR_NO_NETWORK:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_DEVICE_MISSING:
      return errc::not_found;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
    case VIR_ERR_OPERATION_UNSUPPORTED:
      return errc::unimplemented;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_MIGRATE_UNSAFE:
    case VIR_ERR_CPU_INCOMPATIBLE:
    case VIR_ERR_BLOCK_COPY_ACTIVE:
    case VIR_ERR_CHECKPOINT_INCONSISTENT:
      return errc::failed_precondition;
    case VIR_ERR_OPERATION_TIMEOUT:
      return errc::deadline_exceeded;
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_UNKNOWN_HOST:
    case VIR_ERR_GNUTLS_ERROR:
    case VIR_ERR_SSH:
    case VIR_ERR_LIBSSH:
    case VIR_ERR_NO_SERVER:
    case VIR_ERR_AGENT_UNRESPONSIVE:
    case VIR_ERR_AGENT_UNSYNCED:
    case VIR_ERR_RESOURCE_BUSY:
      return errc::unavailable;
    case VIR_ERR_INVALID_ARG:
      // virCheckFlags: "unsupported flags (0x10) in function testDomainSnapshotCreateXML",
      // the driver does not do what the flag asks.
      return msg.rfind("unsupported flags", 0) == 0 ? errc::unimplemented
                                                    : errc::invalid_argument;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_XML_INVALID_SCHEMA:
    case VIR_ERR_INVALID_MAC:
    case VIR_ERR_OS_TYPE:
      return errc::invalid_argument;
    case VIR_ERR_DOM_EXIST:
      return errc::already_exists;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
      return errc::permission_denied;
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
      return errc::unauthenticated;
    case VIR_ERR_NO_MEMORY:
      return errc::resource_exhausted;
    case VIR_ERR_OVERFLOW:
      return errc::out_of_range;
    case VIR_ERR_OPERATION_ABORTED:
      return errc::aborted;
    case VIR_ERR_INTERNAL_ERROR:
      return errc::internal;
    default:
      return errc::unknown;
  }
}

} // namespace

caf::error fail(errc code, const op& o, const std::string& why) {
  return make_error(code, o.what() + ": " + why);
}

/// The one place a virErrorPtr becomes a Ferry error: this thread's last libvirt error, for
/// the call `o`. Resets it.
caf::error last_error(const op& o) {
  virErrorPtr e = virGetLastError();
  if (e == nullptr)
    return fail(errc::unknown, o, "libvirt failed without an error");
  std::string msg = e->message ? e->message : "libvirt error " + std::to_string(e->code);
  auto code = code_for(e->code, msg);
  virResetLastError();
  if (code == errc::unimplemented)
    return make_error(code, o.uri + ": " + o.name + " is not supported by this libvirt driver ("
                              + o.kind + "): " + msg);
  return fail(code, o, msg);
}

} // namespace ferry::hv::libvirt_detail
