// render_template: renders a built-in migration template for many VMs, as a drain's scheduler
// does for every migration it starts: the arguments parsed by the template's parameters, the
// derived ones (source, address, partitions) taken from the fleet, the definition checked
// against the engine's task kinds, encoded canonically and digested. Prints one JSON object:
// renders, us_per_render (CPU time of the rendering thread), tasks and encoded_bytes (of one
// definition). The fleet is the one drain_zone drains (two zones of --hosts hosts, --vms VMs
// in z0); each VM is rendered with a target host in z1.
//   build/bench/render_template [--renders 30000] [--template live-precopy] [--vms 30000]
//     [--hosts 1000]
#include <CLI/CLI.hpp>

#include "actors/log.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  CLI::App app{"render_template: render a migration template for many VMs"};
  size_t renders = 30000;
  std::string template_name = "live-precopy";
  size_t vms = 30000;
  size_t hosts = 1000;
  app.add_option("--renders", renders, "Definitions to render (default 30000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--template", template_name, "Template to render (default live-precopy)");
  app.add_option("--vms", vms, "VMs in the fleet's zone z0 (default 30000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--hosts", hosts, "Hosts per zone (default 1000)")
    ->transform(ferry::whole_number(1));
  CLI11_PARSE(app, argc, argv);
  log().set_level(spdlog::level::warn);

  auto model = bench::must(fleet::load_fleet(bench::two_zone_fleet(vms, hosts)),
                           "render_template");
  engine_options opts;
  opts.fleet = model;
  opts.fleet_opts.sim = std::make_shared<hv::sim_world>(hv::sim_options{});
  opts.template_dirs = {FERRY_BUILTIN_TEMPLATES};
  auto e = bench::must(engine::open(opts), "render_template");
  auto t = bench::must(e->get_template(template_name), "render_template");
  auto& kinds = e->kinds();
  // Where each VM runs, from the model (the scheduler keeps its own map of the same).
  vm_locator locate = [&m = *model](const std::string& vm, std::string& host,
                                    std::string& type) {
    auto v = m.find_vm(vm);
    if (v == fleet::npos)
      return false;
    host = m.hosts[m.vms[v].host].name;
    type = m.types[m.vms[v].type].name;
    return true;
  };
  std::vector<std::string> raw(3);
  size_t tasks = 0, bytes = 0;
  auto cpu0 = bench::this_thread_cpu_s();
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < renders; ++i) {
    raw[0] = "vm=vm" + std::to_string(i % vms);
    raw[1] = "target=h1-" + std::to_string(i % hosts);
    raw[2] = "zone=z1";
    auto args = bench::must(parse_template_args(*t, raw), "render_template");
    auto d = bench::must(render(*t, args, kinds, model.get(), locate), "render_template");
    tasks = d->tasks.size();
    bytes = d->encoded.size();
  }
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cpu = bench::this_thread_cpu_s() - cpu0;
  auto n = static_cast<double>(std::max<size_t>(renders, 1));
  bench::json_object()
    .add("template", template_name)
    .add("renders", static_cast<uint64_t>(renders))
    .add("us_per_render", cpu * 1e6 / n)
    .add("wall_s", wall)
    .add("tasks", static_cast<uint64_t>(tasks))
    .add("encoded_bytes", static_cast<uint64_t>(bytes))
    .print();
  e->close();
  return 0;
}
