//! The HTTP trigger: the listener, routing, host-answered endpoints, and one fresh guest
//! instance per request, under the component's deadline and memory cap.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use boson_router::{RouteMatch, RouteTable, prepare_guest_request};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use wasmtime::Store;
use wasmtime_wasi_http::{WasiBody, WasiHttpView as _};

use crate::app::{HttpTargetSpec, ResolvedApp};
use crate::guest_body::{LimitedBody, NotifyOnDrop};
use crate::host::HostState;
use crate::metrics::{Metrics, TriggerMetrics};
use crate::runtime::{
    Components, FailureKind, GuestFailure, HandlerPre, InstanceSlot, LoadedComponent, Runtime,
};
use crate::write_stall::WriteStallTimeout;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// A client must finish sending its request headers within this time.
    pub header_read_timeout: Duration,
    /// A connection whose writes make no progress for this long is closed.
    pub write_stall_timeout: Duration,
    /// How long in-flight requests may run after a stop signal.
    pub grace_period: Duration,
    /// Connections served at once; the accept loop waits for one to close beyond this, so
    /// further clients wait in the kernel's listen backlog.
    pub max_connections: usize,
}

enum Target {
    Component(Arc<LoadedComponent>, Arc<TriggerMetrics>),
    Static(boson_manifest::StaticResponse),
}

/// What one version of the app serves over HTTP: its route table and what `/.well-known/spin/info`
/// reports. `boson watch` replaces it whole while requests run.
pub struct HttpRoutes {
    table: RouteTable<Target>,
    app_name: String,
    app_version: Option<String>,
}

/// The HTTP trigger for one app.
pub struct HttpTrigger {
    /// Each request takes the current routes once and keeps them to its end.
    routes: ArcSwap<HttpRoutes>,
    runtime: Arc<Runtime>,
    /// Requests currently inside a guest (reported at `/.well-known/boson/status`).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Every trigger's counters, HTTP's included.
    metrics: Arc<Metrics>,
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type GuestReply = Result<Response<WasiBody>, String>;

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<WasiBody> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl HttpRoutes {
    /// Builds the route table; duplicate or malformed routes, and routed components that are
    /// not HTTP handlers, fail here, at start.
    pub fn new(
        app: &ResolvedApp,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut routes = RouteTable::default();
        for trigger in &app.http_triggers {
            let Some(route) = &trigger.route else {
                continue; // private: not reachable from the listener
            };
            let target = match &trigger.target {
                HttpTargetSpec::Static(r) => Target::Static(r.clone()),
                HttpTargetSpec::Component(id) => {
                    let component = components
                        .get(id)
                        .with_context(|| format!("component `{id}` was not loaded"))?
                        .clone();
                    if component.http.is_none() {
                        return Err(component.missing_export(
                            &format!("[[trigger.http]] route `{route}`"),
                            "`wasi:http/incoming-handler@0.2.x` or `wasi:http/handler@0.3.x`",
                        ));
                    }
                    let counters = metrics.register("http", component.spec.id.clone(), route);
                    Target::Component(component, counters)
                }
            };
            routes
                .add(route, target)
                .map_err(|e| anyhow::anyhow!("[[trigger.http]] {e}"))?;
        }
        Ok(Self {
            table: routes,
            app_name: app.name.clone(),
            app_version: app.version.clone(),
        })
    }
}

impl HttpTrigger {
    pub fn new(routes: HttpRoutes, runtime: Arc<Runtime>, metrics: Arc<Metrics>) -> Self {
        Self {
            routes: ArcSwap::from_pointee(routes),
            runtime,
            in_flight: Default::default(),
            metrics,
        }
    }

    /// Serves `routes` from the next request on; requests already routed finish on the old ones.
    pub fn replace_routes(&self, routes: HttpRoutes) {
        self.routes.store(Arc::new(routes));
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests for the grace period.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        options: ServerOptions,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Running out of file descriptors must not end the server.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let this = this.clone();
                async move { Ok::<_, Infallible>(this.handle(req, client).await) }
            });
            let conn = builder
                .serve_connection(
                    TokioIo::new(WriteStallTimeout::new(stream, options.write_stall_timeout)),
                    service,
                )
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                let ended = std::future::poll_fn(|cx| {
                    let _scope = SpentScope::enter();
                    conn.as_mut().poll(cx)
                });
                if let Err(e) = ended.await {
                    tracing::debug!(%client, "connection ended: {e}");
                }
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!(
            "stopping: no new connections; waiting up to {:?} for in-flight requests",
            options.grace_period
        );
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all requests finished"),
            () = tokio::time::sleep(options.grace_period) => {
                tracing::warn!("grace period over; dropping the remaining connections");
            }
        }
        Ok(())
    }

    async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<WasiBody> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let (component, response) = self.route(req, client).await;
        tracing::info!(
            target: "boson::request",
            %method,
            path,
            component = component.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            // Whole microseconds: `as_secs_f64() * 1000.0` logs values like 0.041439000000000004.
            duration_ms = start.elapsed().as_micros() as f64 / 1000.0,
        );
        response
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> (Option<Arc<str>>, Response<WasiBody>) {
        let path = req.uri().path();
        match path {
            "/.well-known/spin/health" => return (None, text_response(StatusCode::OK, "OK")),
            "/.well-known/boson/status" => {
                let status = serde_json::json!({
                    "in_flight": self.in_flight.load(Ordering::SeqCst),
                    "memory_reset": self.runtime.memory_reset().name(),
                    "triggers": self.metrics.to_json(),
                });
                let mut r = text_response(StatusCode::OK, status.to_string());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return (None, r);
            }
            "/.well-known/boson/metrics" => {
                let mut r = text_response(StatusCode::OK, self.metrics.to_prometheus());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                return (None, r);
            }
            "/.well-known/spin/info" => {
                let routes = self.routes.load();
                let info = serde_json::json!({
                    "name": routes.app_name,
                    "version": routes.app_version,
                    "host": "boson",
                    "host_version": env!("CARGO_PKG_VERSION"),
                });
                let mut r = text_response(StatusCode::OK, info.to_string());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return (None, r);
            }
            _ => {}
        }
        let routes = self.routes.load_full();
        let Some(matched) = routes.table.match_path(path) else {
            return (None, text_response(StatusCode::NOT_FOUND, "Not Found\n"));
        };
        match matched.target {
            Target::Static(r) => (None, static_response(r)),
            Target::Component(component, counters) => {
                let id = component.spec.id.clone();
                counters.received();
                let timer = counters.start();
                let response = self
                    .call_component(component.clone(), counters, req, &matched, client)
                    .await;
                timer.finish(!response.status().is_server_error());
                (Some(id), response)
            }
        }
    }

    async fn call_component(
        &self,
        component: Arc<LoadedComponent>,
        counters: &Arc<TriggerMetrics>,
        req: Request<Incoming>,
        matched: &RouteMatch<'_, Target>,
        client: SocketAddr,
    ) -> Response<WasiBody> {
        let limits = component.spec.limits;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limits.max_request_body) {
            return text_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        let (mut parts, body) = req.into_parts();
        // Clients may not forge routing metadata: their `spin-*` headers are replaced.
        prepare_guest_request(&mut parts, matched, client);
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = LimitedBody::new(body, limits.max_request_body, exceeded.clone());
        let req = Request::from_parts(parts, body);

        let id = component.spec.id.clone();
        let _in_flight = InFlight::enter(&self.in_flight);
        match run_guest(&self.runtime, component, counters, req).await {
            Ok(response) => response,
            Err(failure) => {
                if exceeded.load(Ordering::Relaxed) {
                    return text_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request body too large\n",
                    );
                }
                tracing::error!(component = %id, "request failed: {}", failure.cause);
                let status = failure_status(failure.kind);
                let mut r = text_response(
                    status,
                    format!("{}\n", status.canonical_reason().unwrap_or("error")),
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                r
            }
        }
    }
}

fn static_response(r: &boson_manifest::StaticResponse) -> Response<WasiBody> {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut response = text_response(status, r.body.clone());
    response.headers_mut().remove(http::header::CONTENT_TYPE);
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// The status a guest failure answers with.
fn failure_status(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::Deadline => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        FailureKind::NoCapacity => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Runs one request in a fresh instance of `component`.
async fn run_guest(
    runtime: &Runtime,
    component: Arc<LoadedComponent>,
    counters: &Arc<TriggerMetrics>,
    req: Request<LimitedBody>,
) -> Result<Response<WasiBody>, GuestFailure> {
    let timeout = component.spec.limits.timeout;
    let internal = |e: anyhow::Error| GuestFailure::failed(format!("{e:#}"));
    // A request a client pipelined behind one answered in this poll must not wait for that
    // one's slot.
    drop_spent();
    let slot = runtime.admission.admit().await?;
    let Some(handler) = &component.http else {
        return Err(GuestFailure::failed(
            "the component exports no HTTP handler",
        ));
    };
    let (mut store, ready) = match crate::ready::take(&component) {
        Some((store, proxy)) => {
            counters.ran_in_ready_instance();
            (store, Some(proxy))
        }
        None => (component.new_store().map_err(internal)?, None),
    };

    let (tx, mut rx) = tokio::sync::oneshot::channel::<GuestReply>();
    let mut guest = match handler {
        HandlerPre::P2(pre) => {
            let incoming = store
                .data_mut()
                .http()
                .new_incoming_request(
                    wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http,
                    req,
                )
                .map_err(|e| internal(e.into()))?;
            // The guest's `response-outparam.set` answers the request directly.
            let out = store
                .data_mut()
                .http()
                .new_response_outparam_from_callback(move |result| {
                    _ = tx.send(result.map_err(|code| format!("guest returned error {code:?}")));
                })
                .map_err(|e| internal(e.into()))?;
            let pre = pre.clone();
            let next = Next {
                component: component.clone(),
                counters: counters.clone(),
            };
            runtime.guests.start(
                &component.placement,
                tokio::time::timeout(timeout, async move {
                    let proxy = match ready {
                        Some(proxy) => proxy,
                        None => pre.instantiate_async(&mut store).await?,
                    };
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, incoming, out)
                        .await?;
                    Spent {
                        store,
                        slot,
                        next: Some(next),
                    }
                    .drop_after_write();
                    wasmtime::Result::Ok(())
                }),
            )
        }
        HandlerPre::P3(pre) => {
            let pre = pre.clone();
            runtime.guests.start(
                &component.placement,
                tokio::time::timeout(timeout, async move {
                    let service = pre.instantiate_async(&mut store).await?;
                    let (request, io) = wasmtime_wasi_http::p3::Request::from_http(
                        store.data_mut().http().hooks,
                        req,
                    );
                    store
                        .run_concurrent(async move |accessor| -> wasmtime::Result<()> {
                            match service.handle(accessor, request).await? {
                                Ok(response) => {
                                    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                                    let response = accessor
                                        .with(|mut store| response.into_http(&mut store, io))?;
                                    let response = response.map(|body| {
                                        NotifyOnDrop::new(body, done_tx).boxed_unsync()
                                    });
                                    let _ = tx.send(Ok(response));
                                    // Keep the instance running until the body has been sent.
                                    let _ = done_rx.await;
                                }
                                Err(code) => {
                                    _ = tx.send(Err(format!("guest returned error {code:?}")))
                                }
                            }
                            Ok(())
                        })
                        .await??;
                    Spent {
                        store,
                        slot,
                        next: None,
                    }
                    .drop_after_write();
                    wasmtime::Result::Ok(())
                }),
            )
        }
    };

    // The guest is polled here, on this request's thread, until it answers or ends; a guest
    // still running once it answered (streaming its body) is detached to finish on its own.
    let late = tokio::time::sleep(timeout + Duration::from_millis(100));
    tokio::pin!(late);
    let reply = tokio::select! {
        biased;
        ended = &mut guest => match rx.try_recv() {
            Ok(reply) => reply,
            Err(_) => return Err(unanswered(ended, timeout)),
        },
        reply = &mut rx => match reply {
            Ok(reply) => {
                guest.detach();
                reply
            }
            // The guest dropped its response outparam unset: its end says why.
            Err(_) => return Err(unanswered(guest.await, timeout)),
        },
        // Dropping the guest stops it wherever it runs.
        () = &mut late => return Err(GuestFailure::deadline(timeout)),
    };
    reply.map_err(GuestFailure::failed)
}

/// Why a guest that ended without answering failed.
fn unanswered(
    ended: Result<
        Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
        tokio::task::JoinError,
    >,
    timeout: Duration,
) -> GuestFailure {
    match ended {
        Ok(Ok(Ok(()))) => GuestFailure::failed("guest returned without sending a response"),
        Ok(Ok(Err(e))) => GuestFailure::from_error(&e, timeout),
        Ok(Err(_elapsed)) => GuestFailure::deadline(timeout),
        Err(join) => GuestFailure::failed(format!("guest task failed: {join}")),
    }
}

/// What a guest that returned leaves behind: its store (memory to reset, host resources to
/// free) and its instance slot, free again once the store is gone; and, for a component that
/// can have one, what this thread then builds ahead ([`crate::ready`]).
struct Spent {
    store: Store<HostState>,
    slot: InstanceSlot,
    next: Option<Next>,
}

/// The component whose next instance is built ahead, and its route's counters.
struct Next {
    component: Arc<LoadedComponent>,
    counters: Arc<TriggerMetrics>,
}

thread_local! {
    /// Whether this thread is polling an HTTP/1 connection.
    static IN_CONNECTION: Cell<bool> = const { Cell::new(false) };
    /// The spent guests of the requests that poll answered.
    static SPENT: RefCell<Vec<Spent>> = const { RefCell::new(Vec::new()) };
}

impl Spent {
    /// For a guest that ran in place, inside its connection's poll: drops the store at the
    /// end of that poll, once hyper has written the response (it writes within the same
    /// poll). Resetting the instance's memory and freeing its resources is a third of a small
    /// guest's cost; done after the write, the client has its answer sooner and may send its
    /// next request meanwhile. Anywhere else (the guest threads, an HTTP/2 stream's task, a
    /// detached guest) it is dropped now, on the thread that ran the guest.
    fn drop_after_write(self) {
        if IN_CONNECTION.get() {
            SPENT.with_borrow_mut(|spent| spent.push(self));
        }
    }
}

/// Marks this thread as polling a connection until dropped; then drops the spent guests.
struct SpentScope {
    outer: bool,
}

impl SpentScope {
    fn enter() -> Self {
        Self {
            outer: IN_CONNECTION.replace(true),
        }
    }
}

impl Drop for SpentScope {
    fn drop(&mut self) {
        IN_CONNECTION.set(self.outer);
        if !self.outer {
            drop_spent();
        }
    }
}

/// Drops this thread's spent guests now, then builds the next instance of their component.
fn drop_spent() {
    // One by one, outside the borrow: a store's drop runs host code.
    while let Some(Spent { store, slot, next }) = SPENT.with_borrow_mut(Vec::pop) {
        drop(store);
        drop(slot);
        if let Some(Next {
            component,
            counters,
        }) = next
        {
            crate::ready::prepare(&component, &counters);
        }
    }
}
