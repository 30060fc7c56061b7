//! The per-instance host state: one plain struct listing every capability a guest can reach.
//!
//! Each `Store` owns one `HostState`. WASI and `wasi:http` borrow their fields through the
//! "view" traits; capabilities added later become one more field here.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::capability::key_value::KeyValue;
use crate::capability::mqtt::MqttConnections;
use crate::capability::rdbms::RdbmsConnections;
use crate::capability::redis::RedisConnections;
use crate::capability::sqlite::Sqlite;
use crate::capability::variables::Variables;
use crate::outbound;
use crate::runtime::LoadedComponent;

/// Everything one guest instance can touch.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    outbound: OutboundHooks,
    pub(crate) limits: StoreLimits,
    pub(crate) key_value: KeyValue,
    pub(crate) sqlite: Sqlite,
    pub(crate) redis: RedisConnections,
    pub(crate) rdbms: RdbmsConnections,
    pub(crate) mqtt: MqttConnections,
    pub(crate) variables: Variables,
}

impl HostState {
    /// Builds the sandbox for one instance of `component`: only the env vars, files and hosts
    /// its manifest grants.
    pub fn new(loaded: &LoadedComponent) -> anyhow::Result<Self> {
        let component = &loaded.spec;
        let logs = &loaded.logs;
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&component.environment)
            .stdout(logs.stdout.clone())
            .stderr(logs.stderr.clone())
            .allow_blocking_current_thread(false)
            .max_random_size(1 << 20);
        if let Some(files) = &component.files_dir {
            wasi.preopened_dir(files, "/", FsPerms::ReadOnly)?;
        }
        let hosts = component.allowed_hosts.clone();
        let tcp = hosts.grants_sockets("tcp");
        let udp = hosts.grants_sockets("udp");
        wasi.allow_tcp(tcp)
            .allow_udp(udp)
            .allow_ip_name_lookup(tcp || udp);
        let check_hosts = hosts.clone();
        wasi.socket_addr_check(move |addr, use_| {
            let protocol = match use_ {
                SocketAddrUse::UdpBind | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    "udp"
                }
                _ => "tcp",
            };
            // Binding to a wildcard address is how an outgoing connection starts; what matters
            // is where it connects, which is checked separately.
            let allowed = matches!(use_, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && addr.ip().is_unspecified()
                || check_hosts.allows_socket(protocol, addr);
            Box::pin(async move { allowed })
        });
        let limits = StoreLimitsBuilder::new()
            .memory_size(component.limits.memory)
            .table_elements(1_000_000)
            .instances(1_000)
            .trap_on_grow_failure(false)
            .build();
        Ok(Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: OutboundHooks {
                grant: OutboundGrant {
                    hosts,
                    component: component.id.clone(),
                },
                http: loaded.outbound_http.clone(),
            },
            limits,
            key_value: loaded.key_value.clone(),
            sqlite: loaded.sqlite.clone(),
            redis: loaded.redis.clone(),
            rdbms: loaded.rdbms.clone(),
            mqtt: loaded.mqtt.clone(),
            variables: Variables {
                values: component.variables.clone(),
            },
        })
    }

    /// The component this instance belongs to (for log lines).
    pub fn component_id(&self) -> &str {
        &self.outbound.grant.component
    }

    /// What an outbound capability needs to check and log a connection, detached from the
    /// instance so it can be used across awaits.
    pub fn outbound_grant(&self) -> OutboundGrant {
        self.outbound.grant.clone()
    }
}

/// A component's outbound grants and its name.
#[derive(Clone)]
pub struct OutboundGrant {
    pub hosts: Arc<outbound::AllowedHosts>,
    pub component: Arc<str>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// The component's outbound grants; every outgoing `wasi:http` request goes through its
/// client, which checks it against them and keeps connections for the component's next
/// instances.
struct OutboundHooks {
    grant: OutboundGrant,
    /// Shared by the component's instances; one reference per store.
    http: Arc<outbound::HttpClient>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// `wasi:http`'s default forbidden headers, as a static: the trait's default
/// `is_forbidden_header` builds its rule in a new `Arc` on every call, one allocation per
/// header of every request and response.
static FORBIDDEN_HEADERS: [http::HeaderName; 9] = wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS;

impl WasiHttpHooks for OutboundHooks {
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        FORBIDDEN_HEADERS.contains(name)
    }

    /// The client writes `Host` itself on HTTP/1 connections. An HTTP/2 connection carries the
    /// authority as `:authority`, and some servers refuse a request that has both.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let client = self.http.clone();
        Box::new(async move {
            let response = client.send(request, options).await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// A component's stdout and stderr: appended to its log files, and echoed to the terminal
/// when the user follows it.
#[derive(Clone)]
pub struct GuestLogs {
    pub stdout: GuestLogStream,
    pub stderr: GuestLogStream,
}

impl GuestLogs {
    pub fn open(dir: &std::path::Path, component: &str, follow: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let open = |suffix: &str, to_stderr: bool| -> anyhow::Result<GuestLogStream> {
            let path = dir.join(format!("{component}.{suffix}.log"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| anyhow::anyhow!("opening log file {}: {e}", path.display()))?;
            Ok(GuestLogStream {
                inner: Arc::new(Mutex::new(file)),
                follow: follow.then(|| (Arc::<str>::from(component), to_stderr)),
            })
        };
        Ok(Self {
            stdout: open("stdout", false)?,
            stderr: open("stderr", true)?,
        })
    }
}

/// One log stream shared by every instance of a component.
#[derive(Clone)]
pub struct GuestLogStream {
    inner: Arc<Mutex<std::fs::File>>,
    /// `Some((component, to_stderr))` when following: echo each write with a prefix.
    follow: Option<(Arc<str>, bool)>,
}

impl GuestLogStream {
    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        if let Ok(mut file) = self.inner.lock() {
            file.write_all(buf)?;
        }
        if let Some((component, to_stderr)) = &self.follow {
            let text = String::from_utf8_lossy(buf);
            for line in text.lines() {
                if *to_stderr {
                    eprintln!("[{component}] {line}");
                } else {
                    println!("[{component}] {line}");
                }
            }
        }
        Ok(())
    }
}

impl IsTerminal for GuestLogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestLogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
