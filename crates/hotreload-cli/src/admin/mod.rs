//! The admin HTTP API of a running daemon (`[admin]` in the manifest):
//! components, configuration changes through the whole transaction,
//! history and rollback, handler swaps, events (long poll and server-sent
//! events), statistics, Prometheus metrics, health and readiness.
//!
//! Loopback by default; a bearer token (compared in constant time) guards
//! every endpoint but `/healthz` and `/readyz` (and `/metrics` with
//! `public_metrics`) when configured, and is required on any other address. A request whose `Host` is not this server's is refused
//! (DNS rebinding). Bodies are bounded (413) and must arrive in time.

pub(crate) mod client;
mod feed;
pub(crate) mod metrics;
pub(crate) mod notify;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hotreload::Runtime;
use hotreload::daemon::AdminSettings;
use hotreload::fleet::SourceState;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::metrics::{Metrics, RequestLabels};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 512;

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) runtime: Runtime,
    /// The manifest's components: ready once each has a configuration.
    pub(crate) expected: Vec<String>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) settings: AdminSettings,
    /// The etcd connection, when configurations live there.
    pub(crate) source: Option<Arc<SourceState>>,
    token: Option<Vec<u8>>,
    /// `host:port` values a request's `Host` may carry.
    hosts: Vec<String>,
    /// Listening on an unspecified address (0.0.0.0): any IP literal is
    /// this server (DNS rebinding needs a name).
    any_ip: bool,
    port: u16,
    /// Handler uploads in flight at once (each up to `max_handler_bytes`).
    pub(crate) uploads: tokio::sync::Semaphore,
}

pub(crate) type AppState = Arc<Shared>;

/// An error answer: `{"error": ..., "field": ...}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error });
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

impl From<hotreload::Error> for ApiError {
    fn from(e: hotreload::Error) -> ApiError {
        use hotreload::Error as E;
        let status = match &e {
            E::UnknownComponent(_) | E::NoRevision { .. } | E::NoHistory => StatusCode::NOT_FOUND,
            E::VersionConflict { .. } => StatusCode::PRECONDITION_FAILED,
            E::InvalidBatch(_) | E::InvalidName(_) => StatusCode::BAD_REQUEST,
            E::Disabled => StatusCode::CONFLICT,
            E::ShutDown => StatusCode::SERVICE_UNAVAILABLE,
            E::HandlerLoad { .. } | E::HandlerNotKept { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A running admin server; stops when [`Admin::stop`] is awaited.
pub(crate) struct Admin {
    pub(crate) addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Binds the admin address (before the components load, so `/healthz`
/// and `/readyz` answer during a long start).
///
/// # Errors
/// The address cannot be bound, or the token file cannot be read.
pub(crate) async fn start(
    settings: &AdminSettings,
    addr: SocketAddr,
    runtime: Runtime,
    expected: Vec<String>,
    metrics: Arc<Metrics>,
    source: Option<Arc<SourceState>>,
) -> Result<Admin, String> {
    let token = match &settings.token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "the admin API cannot listen on {addr}: {e} (set [admin] listen to another \
             address, or \"off\")"
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the admin API's address: {e}"))?;
    let mut hosts = vec![
        addr.to_string(),
        format!("localhost:{}", addr.port()),
        format!("127.0.0.1:{}", addr.port()),
        format!("[::1]:{}", addr.port()),
    ];
    hosts.extend(settings.allowed_hosts.iter().map(|h| {
        let h = h.to_ascii_lowercase();
        if h.contains(':') {
            h
        } else {
            format!("{h}:{}", addr.port())
        }
    }));
    let shared = Arc::new(Shared {
        runtime,
        expected,
        metrics,
        settings: settings.clone(),
        source,
        token,
        hosts,
        any_ip: addr.ip().is_unspecified(),
        port: addr.port(),
        uploads: tokio::sync::Semaphore::new(2),
    });
    let app = router(shared.clone());
    let (stop, stopped) = watch::channel(false);
    let header_timeout = Duration::from_millis(settings.request_timeout_ms.max(1));
    let task = tokio::spawn(serve(listener, app, stopped, header_timeout));
    Ok(Admin { addr, stop, task })
}

impl Admin {
    /// Stops accepting, lets requests in flight finish for up to a second,
    /// then closes what is left (event streams).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve(
    listener: TcpListener,
    app: Router,
    mut stopped: watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let service = hyper_util::service::TowerToHyperService::new(app);
    // At most this many connections at once; beyond, new ones wait in the
    // kernel's backlog (file descriptors are the daemon's too: it reads
    // configuration files with them).
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped.changed() => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: wait, go on.
                    tracing::warn!("admin API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service.clone());
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}

fn router(state: AppState) -> Router {
    routes::routes()
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take this method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Host, origin and token checks, the request counter, and JSON for
/// axum's own plain-text refusals (a malformed path or query).
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Methods are counted by name only when they are HTTP's own: a client
    // inventing methods must not grow the metrics without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "PUT" | "POST" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let res = match check(&state, req.uri().path(), req.headers()) {
        Ok(()) => as_json(next.run(req).await).await,
        Err(e) => e.into_response(),
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            code: res.status().as_u16().to_string(),
        })
        .inc();
    res
}

/// A client error axum answered in plain text (an extractor's rejection:
/// `/versions/abc`, `?since=x`) becomes `{"error": ...}`; a malformed path
/// is a 404 like any other unknown thing.
async fn as_json(res: Response) -> Response {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let status = if text.starts_with("Invalid URL") && parts.status == StatusCode::BAD_REQUEST {
        StatusCode::NOT_FOUND
    } else {
        parts.status
    };
    ApiError::new(status, text).into_response()
}

fn check(state: &Shared, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(state, host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} is not this server: requests must name it by its address or \
                 localhost (a page on another site cannot reach it through DNS rebinding); \
                 add the name to [admin] allowed_hosts"
            ),
        )
        .field("Host"));
    }
    // A page in a browser may send requests here (a form, a `no-cors`
    // fetch) without being able to read the answers: cross-site request
    // forgery. Browsers name the page's origin; only this server's own
    // pages may act.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = origin.strip_prefix("http://").unwrap_or("");
        if !host_allowed(state, host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("Origin {origin:?}: a page of another site may not act on this server"),
            )
            .field("Origin"));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a page of another site may not act on this server",
        )
        .field("Sec-Fetch-Site"));
    }
    let Some(token) = &state.token else {
        return Ok(());
    };
    // Probes (a kubelet holds no secret) and, if asked, the scraper.
    // The page's files hold no data (it asks for the token itself).
    if path == "/healthz"
        || path == "/readyz"
        || path == "/ui"
        || path.starts_with("/ui/")
        || (path == "/metrics" && state.settings.public_metrics)
    {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer TOKEN)",
        )
        .field("Authorization")),
        Some(g) if constant_time_eq(g.trim().as_bytes(), token) => Ok(()),
        Some(_) => Err(
            ApiError::new(StatusCode::UNAUTHORIZED, "the token is wrong").field("Authorization"),
        ),
    }
}

fn host_allowed(state: &Shared, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if state.hosts.contains(&host) {
        return true;
    }
    // `[v6]:port`, `name:port`, or a bare name (port 80).
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, "")) => (ip, Some(80)),
            Some((ip, p)) => (ip, p.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().ok()),
            None => (host.as_str(), Some(80)),
        },
    };
    if port != Some(state.port) {
        return false;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => state.any_ip || ip.is_loopback(),
        Err(_) => name == "localhost",
    }
}

/// Equal bytes, in time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_token(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = hotreload::sources::read_regular(path, 4096)
        .map_err(|e| format!("[admin] token_file {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("[admin] token_file {}: not UTF-8 text", path.display()))?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(format!(
            "[admin] token_file {}: the token must be at least 16 characters (it is {})",
            path.display(),
            token.len()
        ));
    }
    Ok(token.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
    }
}
