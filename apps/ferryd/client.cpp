#include "apps/ferryd/client.hpp"

#include <fstream>

#include <grpcpp/grpcpp.h>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/api.grpc.pb.h"

namespace ferry::api {

struct client::impl {
  client_options opts;
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Ferry::Stub> stub;

  void prepare(grpc::ClientContext& ctx, bool deadline = true) const {
    if (!opts.token.empty())
      ctx.AddMetadata("authorization", "Bearer " + opts.token);
    if (deadline)
      ctx.set_deadline(std::chrono::system_clock::now() + opts.timeout);
  }

  caf::error error_of(const grpc::Status& st) const {
    if (st.ok())
      return caf::none;
    auto code = static_cast<errc>(static_cast<int>(st.error_code()));
    if (code == errc::unavailable && st.error_message().find("ferryd") == std::string::npos)
      return make_error(code, "cannot reach ferryd at " + opts.server + ": "
                                + st.error_message());
    if (code == errc::deadline_exceeded)
      return make_error(code, "ferryd at " + opts.server + " did not answer within "
                                + std::to_string(opts.timeout.count()) + " ms");
    return make_error(code, st.error_message());
  }

  /// `wait`: how long the server may hold the answer (a long poll), beyond the call's timeout.
  template <class Resp, class Call>
  caf::expected<Resp> unary(Call call,
                            std::chrono::milliseconds wait = std::chrono::milliseconds{0}) const {
    if (auto problem = wait_problem(wait.count()); !problem.empty())
      return make_error(errc::invalid_argument, problem);
    grpc::ClientContext ctx;
    prepare(ctx, false);
    ctx.set_deadline(std::chrono::system_clock::now() + opts.timeout + wait);
    Resp resp;
    auto st = call(ctx, resp);
    if (!st.ok())
      return error_of(st);
    return resp;
  }
};

std::string wait_problem(int64_t wait_ms) {
  if (wait_ms < 0)
    return "wait_ms: negative";
  if (wait_ms > static_cast<int64_t>(max_duration_ms))
    return "wait_ms: at most " + std::to_string(max_duration_ms) + " (about 31 years), got "
           + std::to_string(wait_ms);
  return {};
}

namespace {

caf::expected<std::string> read_pem(const std::string& what, const std::string& path) {
  auto text = read_file(path);
  if (!text)
    return make_error(errc::invalid_argument,
                      what + ": cannot read " + path + ": " + message_of(text.error()));
  return text;
}

} // namespace

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

client::~client() = default;

const std::string& client::server() const noexcept {
  return impl_->opts.server;
}

caf::expected<std::unique_ptr<client>> client::connect(const client_options& opts) {
  auto p = std::make_unique<impl>();
  p->opts = opts;
  if (opts.server.empty())
    return make_error(errc::invalid_argument, "server: empty");
  grpc::ChannelArguments args;
  if (opts.own_connection)
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A restarted ferryd is found again within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (opts.server.rfind("unix:", 0) == 0 || opts.server.front() == '/') {
    p->target = opts.server.front() == '/' ? "unix:" + opts.server : opts.server;
    creds = grpc::InsecureChannelCredentials();
  } else {
    if (opts.server.find(':') == std::string::npos)
      return make_error(errc::invalid_argument,
                        "server: \"" + opts.server + "\": expected host:port or unix:PATH");
    grpc::SslCredentialsOptions ssl;
    if (!opts.ca_file.empty()) {
      auto ca = read_pem("ca", opts.ca_file);
      if (!ca)
        return ca.error();
      ssl.pem_root_certs = *ca;
    }
    if (!opts.cert_file.empty() || !opts.key_file.empty()) {
      auto cert = read_pem("cert", opts.cert_file);
      if (!cert)
        return cert.error();
      auto key = read_pem("key", opts.key_file);
      if (!key)
        return key.error();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    p->target = opts.server;
    creds = grpc::SslCredentials(ssl);
  }
  p->channel = grpc::CreateCustomChannel(p->target, creds, args);
  p->stub = v1::Ferry::NewStub(p->channel);
  return std::unique_ptr<client>{new client(std::move(p))};
}

bool client::wait_connected(std::chrono::milliseconds timeout) {
  return impl_->channel->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

caf::expected<v1::SubmitResponse> client::submit(const v1::SubmitRequest& req) {
  return impl_->unary<v1::SubmitResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->Submit(&ctx, req, &resp); });
}

caf::expected<v1::Run> client::get(const std::string& run_id, std::chrono::milliseconds wait) {
  v1::GetRequest req;
  req.set_run_id(run_id);
  req.set_wait_ms(wait.count());
  // The server answers by `wait` at the latest: the deadline covers it.
  return impl_->unary<v1::Run>(
    [&](auto& ctx, auto& resp) { return impl_->stub->Get(&ctx, req, &resp); }, wait);
}

caf::expected<v1::ListResponse> client::list(const v1::ListRequest& req) {
  return impl_->unary<v1::ListResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->List(&ctx, req, &resp); });
}

caf::expected<v1::ControlResponse> client::control(const std::string& op,
                                                   const v1::ControlRequest& req) {
  return impl_->unary<v1::ControlResponse>([&](auto& ctx, auto& resp) {
    auto* s = impl_->stub.get();
    if (op == "cancel")
      return s->Cancel(&ctx, req, &resp);
    if (op == "abort")
      return s->Abort(&ctx, req, &resp);
    if (op == "pause")
      return s->Pause(&ctx, req, &resp);
    if (op == "resume")
      return s->Resume(&ctx, req, &resp);
    if (op == "approve")
      return s->Approve(&ctx, req, &resp);
    if (op == "retry")
      return s->Retry(&ctx, req, &resp);
    return grpc::Status{grpc::StatusCode::INVALID_ARGUMENT, "op: unknown \"" + op + "\""};
  });
}

caf::expected<v1::FleetResponse> client::fleet() {
  return impl_->unary<v1::FleetResponse>([&](auto& ctx, auto& resp) {
    return impl_->stub->Fleet(&ctx, v1::FleetRequest{}, &resp);
  });
}

caf::expected<v1::RecommendResponse> client::recommend(const v1::RecommendRequest& req) {
  return impl_->unary<v1::RecommendResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->Recommend(&ctx, req, &resp); });
}

caf::expected<v1::OptionsResponse> client::options(const v1::OptionsRequest& req) {
  return impl_->unary<v1::OptionsResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->Options(&ctx, req, &resp); });
}

caf::expected<v1::ListTemplatesResponse> client::list_templates() {
  return impl_->unary<v1::ListTemplatesResponse>([&](auto& ctx, auto& resp) {
    return impl_->stub->ListTemplates(&ctx, v1::ListTemplatesRequest{}, &resp);
  });
}

caf::expected<v1::TemplateResponse> client::get_template(const std::string& name) {
  v1::GetTemplateRequest req;
  req.set_name(name);
  return impl_->unary<v1::TemplateResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->GetTemplate(&ctx, req, &resp); });
}

caf::expected<v1::TemplateResponse> client::put_template(const std::string& source) {
  v1::PutTemplateRequest req;
  req.set_source(source);
  return impl_->unary<v1::TemplateResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->PutTemplate(&ctx, req, &resp); });
}

caf::error client::delete_template(const std::string& name) {
  v1::DeleteTemplateRequest req;
  req.set_name(name);
  auto r = impl_->unary<v1::DeleteTemplateResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->DeleteTemplate(&ctx, req, &resp); });
  return r ? caf::none : r.error();
}

caf::expected<v1::RenderTemplateResponse> client::render_template(const v1::TemplateCall& call) {
  v1::RenderTemplateRequest req;
  *req.mutable_template_() = call;
  return impl_->unary<v1::RenderTemplateResponse>(
    [&](auto& ctx, auto& resp) { return impl_->stub->RenderTemplate(&ctx, req, &resp); });
}

caf::expected<v1::BatchStatus> client::submit_batch(const v1::SubmitBatchRequest& req) {
  return impl_->unary<v1::BatchStatus>(
    [&](auto& ctx, auto& resp) { return impl_->stub->SubmitBatch(&ctx, req, &resp); });
}

caf::expected<v1::BatchStatus> client::get_batch(const std::string& name,
                                                 std::chrono::milliseconds wait) {
  v1::GetBatchRequest req;
  req.set_name(name);
  req.set_wait_ms(wait.count());
  return impl_->unary<v1::BatchStatus>(
    [&](auto& ctx, auto& resp) { return impl_->stub->GetBatch(&ctx, req, &resp); }, wait);
}

caf::expected<v1::ListBatchesResponse> client::list_batches() {
  return impl_->unary<v1::ListBatchesResponse>([&](auto& ctx, auto& resp) {
    return impl_->stub->ListBatches(&ctx, v1::ListBatchesRequest{}, &resp);
  });
}

caf::expected<v1::BatchStatus> client::cancel_batch(const std::string& name) {
  v1::CancelBatchRequest req;
  req.set_name(name);
  return impl_->unary<v1::BatchStatus>(
    [&](auto& ctx, auto& resp) { return impl_->stub->CancelBatch(&ctx, req, &resp); });
}

caf::error client::watch(const v1::WatchRequest& req,
                         const std::function<bool(const v1::WatchResponse&)>& on_message,
                         std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  impl_->prepare(ctx, false);
  if (timeout.count() > 0)
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = impl_->stub->Watch(&ctx, req);
  v1::WatchResponse m;
  bool stopped = false;
  while (reader->Read(&m)) {
    if (!on_message(m)) {
      stopped = true;
      ctx.TryCancel();
      break;
    }
  }
  auto st = reader->Finish();
  if (stopped)
    return caf::none;
  return impl_->error_of(st);
}

} // namespace ferry::api
