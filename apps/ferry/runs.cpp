// `ferry submit`, `list`, `show`, `cancel`, `abort`, `pause`, `resume`, `approve`, `retry`:
// runs on ferryd, through its API (docs/operations.md). Each prints a line or a table, or the
// API's message with --json; exit codes as in commands.hpp.
#include <cstdio>
#include <ctime>
#include <fstream>

#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "apps/ferry/remote.hpp"
#include "apps/ferryd/convert.hpp"
#include "common/errc.hpp"
#include "common/file.hpp"

namespace ferry::cli {

namespace {

struct runs_args {
  conn_args conn;
  std::string file;
  std::string template_name;
  std::vector<std::string> params;
  std::string id;
  uint64_t seed = 0;
  int64_t not_before_ms = 0;
  bool watch = false;
  bool json = false;
  std::string run;
  std::string task;
  std::string reason;
  std::vector<std::string> states;
  std::string vm, host, zone, template_filter;
  uint32_t limit = 0;
  std::string page_token;
  bool all = false;
  double wait_s = 0;
  double reconnect_s = 60;
};

int submit(const runs_args& a) {
  v1::SubmitRequest req;
  if (!a.template_name.empty()) {
    if (!a.file.empty()) {
      std::fprintf(stderr, "ferry submit: give a definition FILE or --template, not both\n");
      return exit_bad_input;
    }
    auto* t = req.mutable_template_();
    t->set_name(a.template_name);
    if (!split_params(a.params, *t->mutable_parameters(), "submit"))
      return exit_bad_input;
  } else if (a.file.empty()) {
    std::fprintf(stderr, "ferry submit: give a definition FILE or --template NAME\n");
    return exit_bad_input;
  } else {
    auto text = read_file(a.file);
    if (!text) {
      std::fprintf(stderr, "ferry submit: %s: %s\n", a.file.c_str(),
                   message_of(text.error()).c_str());
      return exit_bad_input;
    }
    req.set_definition_text(std::move(*text));
  }
  req.set_idempotency_key(a.id);
  req.set_seed(a.seed);
  req.set_not_before_ms(a.not_before_ms);
  int rc = exit_ok;
  auto cl = connect(a.conn, "submit", rc);
  if (!cl)
    return rc;
  auto resp = cl->submit(req);
  if (!resp)
    return fail("submit", resp.error());
  if (a.json)
    print_json(*resp);
  else
    std::printf("%s%s\n", resp->run_id().c_str(),
                resp->existing() ? " (already submitted with this id)" : "");
  std::fflush(stdout);
  if (a.watch)
    return watch_run(a.conn, resp->run_id(), 1, a.json, a.reconnect_s);
  return exit_ok;
}

std::string age(int64_t ms) {
  auto now = static_cast<int64_t>(std::time(nullptr)) * 1000;
  auto s = (now - ms) / 1000;
  if (s < 0)
    s = 0;
  char buf[32];
  if (s < 120)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 7200)
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  else if (s < 172800)
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  else
    std::snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  return buf;
}

int list(const runs_args& a) {
  v1::ListRequest req;
  for (auto& s : a.states) {
    v1::RunStatus st;
    auto name = "RUN_" + s;
    for (auto& c : name)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!v1::RunStatus_Parse(name, &st) || st == v1::RUN_STATUS_UNSPECIFIED) {
      std::fprintf(stderr,
                   "ferry list: --state \"%s\": expected pending, scheduled, running, paused, "
                   "rolling_back, succeeded, rolled_back, failed or aborted\n",
                   s.c_str());
      return exit_bad_input;
    }
    req.add_states(st);
  }
  req.set_vm(a.vm);
  req.set_host(a.host);
  req.set_zone(a.zone);
  req.set_template_(a.template_filter);
  req.set_page_size(a.limit);
  req.set_page_token(a.page_token);
  int rc = exit_ok;
  auto cl = connect(a.conn, "list", rc);
  if (!cl)
    return rc;
  v1::ListResponse all;
  for (;;) {
    auto resp = cl->list(req);
    if (!resp)
      return fail("list", resp.error());
    for (auto& r : *resp->mutable_runs())
      *all.add_runs() = std::move(r);
    all.set_next_page_token(resp->next_page_token());
    if (!a.all || resp->next_page_token().empty())
      break;
    req.set_page_token(resp->next_page_token());
  }
  if (a.json) {
    print_json(all);
    return exit_ok;
  }
  std::printf("%-36s %-28s %-12s %7s  %s\n", "RUN", "DEFINITION", "STATE", "UPDATED", "REASON");
  for (auto& r : all.runs())
    std::printf("%-36s %-28s %-12s %7s  %s\n", r.run_id().c_str(), r.definition_name().c_str(),
                to_string(api::from_proto(r.status())), age(r.updated_ms()).c_str(),
                r.reason().c_str());
  if (!all.next_page_token().empty())
    std::printf("more: --page-token %s (or --all)\n", all.next_page_token().c_str());
  return exit_ok;
}

int show(const runs_args& a) {
  int rc = exit_ok;
  auto cl = connect(a.conn, "show", rc);
  if (!cl)
    return rc;
  auto wait = std::chrono::milliseconds{static_cast<int64_t>(a.wait_s * 1000)};
  auto run = cl->get(a.run, wait);
  if (!run)
    return fail("show", run.error());
  if (a.json) {
    print_json(*run);
  } else {
    auto s = api::from_proto(*run);
    if (!s)
      return fail("show", s.error());
    std::printf("run %s: %s\n%s", s->id.c_str(), s->def ? s->def->name.c_str() : "",
                format_summary(*s).c_str());
  }
  if (a.wait_s > 0) {
    if (!is_resting(api::from_proto(run->state().status())))
      return exit_timeout;
    return exit_of_status(run->state().status());
  }
  return exit_ok;
}

int control(const runs_args& a, const char* op) {
  v1::ControlRequest req;
  req.set_run_id(a.run);
  req.set_task(a.task);
  req.set_reason(a.reason);
  int rc = exit_ok;
  auto cl = connect(a.conn, op, rc);
  if (!cl)
    return rc;
  auto ack = cl->control(op, req);
  if (!ack)
    return fail(op, ack.error());
  if (a.json)
    print_json(*ack);
  else
    std::printf("run %s: %s%s%s done (event %llu, %s)\n", a.run.c_str(), op,
                a.task.empty() ? "" : " ", a.task.c_str(),
                static_cast<unsigned long long>(ack->seq()),
                to_string(api::from_proto(ack->status())));
  return exit_ok;
}

} // namespace

void add_remote(CLI::App& app, std::function<int()>& action) {
  auto args = std::make_shared<runs_args>();
  auto* s = app.add_subcommand("submit", "Submit a workflow definition or a template to ferryd");
  s->add_option("file", args->file, "Definition (protobuf text format or JSON)");
  s->add_option("--template", args->template_name, "A template registered in ferryd, by name");
  s->add_option("-p,--param", args->params, "A template parameter: NAME=VALUE (lists: a,b)")
    ->take_all();
  s->add_option("--id", args->id,
                "Idempotency key, and the run's id: submitting again with it returns that run");
  s->add_option("--seed", args->seed, "Seed of the retry jitter")->transform(whole_number());
  s->add_option("--not-before", args->not_before_ms,
                "Start no earlier than this (ms since the epoch)")
    ->transform(whole_number(0, INT64_MAX));
  s->add_flag("-w,--watch", args->watch, "Then watch the run until it is at rest");
  s->add_flag("--json", args->json, "JSON output");
  add_conn(s, args->conn);
  s->callback([&action, args] { action = [args] { return submit(*args); }; });

  auto* l = app.add_subcommand("list", "List ferryd's runs");
  l->add_option("--state", args->states, "Only runs in this state (repeat for several)")
    ->take_all();
  l->add_option("--vm", args->vm, "Only runs that name this VM");
  l->add_option("--host", args->host, "Only runs that name this host");
  l->add_option("--zone", args->zone, "Only runs that name this zone or one of its hosts");
  l->add_option("--template", args->template_filter, "Only runs rendered from this template");
  l->add_option("--limit", args->limit, "Runs per page (default 100, at most 1000)")
    ->transform(whole_number(0, 1000));
  l->add_option("--page-token", args->page_token, "Continue after this page");
  l->add_flag("--all", args->all, "Every page");
  l->add_flag("--json", args->json, "JSON output");
  add_conn(l, args->conn);
  l->callback([&action, args] { action = [args] { return list(*args); }; });

  auto* sh = app.add_subcommand("show", "Show a run: its tasks, their states and the outcome");
  sh->add_option("run", args->run, "Run id")->required();
  sh->add_option("--wait", args->wait_s,
                 "Wait up to this many seconds for the run to come to rest; the exit code "
                 "is then its outcome's (6 if still running)")
    ->check(finite_number(false));
  sh->add_flag("--json", args->json, "JSON output");
  add_conn(sh, args->conn);
  sh->callback([&action, args] { action = [args] { return show(*args); }; });

  struct ctl {
    const char* name;
    const char* help;
    bool task;
  };
  for (auto c : {ctl{"cancel", "Cancel a run: it rolls back (before its point of no return)",
                     false},
                 ctl{"abort", "Abort a run at once, without rollback (admin)", false},
                 ctl{"pause", "Pause a run: no new task starts", false},
                 ctl{"resume", "Resume a paused or failed run", false},
                 ctl{"approve", "Approve a gate", true},
                 ctl{"retry", "Retry a task that ran out of retries", true}}) {
    auto* cmd = app.add_subcommand(c.name, c.help);
    cmd->add_option("run", args->run, "Run id")->required();
    if (c.task)
      cmd->add_option("task", args->task, "The task")->required();
    if (std::string{c.name} == "abort")
      cmd->add_option("--reason", args->reason, "Why (recorded in the journal)");
    cmd->add_flag("--json", args->json, "JSON output");
    add_conn(cmd, args->conn);
    auto name = c.name;
    cmd->callback([&action, args, name] { action = [args, name] { return control(*args, name); }; });
  }
}

} // namespace ferry::cli
