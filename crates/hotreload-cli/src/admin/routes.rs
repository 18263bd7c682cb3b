//! The admin API's endpoints.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::Stream;
use hotreload::sources::{Change, Format, Origin, Payload};
use hotreload::state::Revision;
use hotreload::{ComponentInfo, ConfigInput, Event, HandlerSource, Outcome};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::feed::{Feed, Item};
use super::{ApiError, AppState};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/components", get(list))
        .route("/v1/components/{name}", get(one))
        .route("/v1/components/{name}/config", put(put_config))
        .route("/v1/components/{name}/handler", put(put_handler))
        .route("/v1/components/{name}/versions", get(versions))
        .route("/v1/components/{name}/versions/{n}", get(version))
        .route("/v1/components/{name}/versions/{n}/diff", get(version_diff))
        .route("/v1/components/{name}/rollback", post(rollback))
        .route("/v1/batch", post(batch))
        .route("/v1/events", get(events))
        .route("/v1/events/stream", get(stream))
        .route("/v1/stats", get(stats))
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route(
            "/ui/",
            get(|| async { page("text/html; charset=utf-8", UI_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { page("text/javascript; charset=utf-8", UI_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { page("text/css; charset=utf-8", UI_CSS) }),
        )
}

// The web page, embedded in the binary: no build step of its own.
const UI_HTML: &str = include_str!("ui/index.html");
const UI_JS: &str = include_str!("ui/app.js");
const UI_CSS: &str = include_str!("ui/style.css");

/// One file of the page, under a policy that runs only this server's own
/// script and lets no other site frame it.
fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

type Answer = Result<Response, ApiError>;

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready once every component of the manifest has a configuration in
/// force. Answers without the token (a probe holds none), so it names no
/// component: only how many are loaded.
async fn readyz(State(s): State<AppState>) -> Response {
    let loaded = s.runtime.component_names();
    let ready = s.expected.iter().filter(|n| loaded.contains(n)).count();
    let body = json!({
        "ready": ready == s.expected.len(),
        "loaded": ready,
        "expected": s.expected.len(),
    });
    if ready == s.expected.len() {
        axum::Json(body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    // Each component's standing, as of its last event (never waits).
    s.metrics.refresh(&s.runtime.components().await);
    if let Some(source) = &s.source {
        s.metrics.refresh_source(&source.report());
    }
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.metrics.openmetrics(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            s.metrics.classic(),
        )
            .into_response()
    }
}

/// A component as the API shows it.
fn view(s: &AppState, info: ComponentInfo) -> Value {
    let last = s.metrics.last_event(&info.name);
    json!({
        "name": info.name,
        "version": info.version,
        "config": info.config,
        "effective": info.effective,
        "source": info.source,
        "support_level": info.support_level,
        "handler_hash": info.handler_hash,
        "pending": info.pending,
        "degraded": info.degraded,
        "last_event": last,
    })
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

async fn list(State(s): State<AppState>) -> Response {
    let all: Vec<Value> = s
        .runtime
        .components()
        .await
        .into_iter()
        .map(|i| view(&s, i))
        .collect();
    let sources: Vec<_> = s.source.iter().map(|src| src.report()).collect();
    axum::Json(json!({ "components": all, "sources": sources })).into_response()
}

async fn one(State(s): State<AppState>, Path(name): Path<String>) -> Answer {
    let info = s.runtime.component(&name).await?;
    let version = info.version;
    let mut res = axum::Json(view(&s, info)).into_response();
    res.headers_mut().insert(header::ETAG, etag(version));
    Ok(res)
}

/// 404 for a component the daemon does not have.
fn known(s: &AppState, name: &str) -> Result<(), ApiError> {
    match s
        .runtime
        .component_names()
        .binary_search_by(|n| n.as_str().cmp(name))
    {
        Ok(_) => Ok(()),
        Err(_) => Err(hotreload::Error::UnknownComponent(name.to_owned()).into()),
    }
}

/// Reads a body up to `limit` bytes, within the request timeout.
async fn read_body(s: &AppState, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let timeout = Duration::from_millis(s.settings.request_timeout_ms.max(1));
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {}",
                humantime::format_duration(timeout)
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the {limit} byte limit"),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("reading the body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The status an event's outcome answers with.
fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Applied | Outcome::Unchanged => StatusCode::OK,
        Outcome::RestartRequired => StatusCode::CONFLICT,
        Outcome::Degraded => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn event_answer(event: &Event) -> Response {
    let mut res = (status_of(event.outcome), axum::Json(event)).into_response();
    res.headers_mut().insert(header::ETAG, etag(event.version));
    res
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Format::Json),
        "application/toml" | "text/toml" => Ok(Format::Toml),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(Format::Yaml),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {ct:?}: send application/json, application/toml or \
                 application/yaml"
            ),
        )
        .field("Content-Type")),
    }
}

/// `If-Match: "N"` (or `N`); `*` matches any version.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("If-Match {text:?}: give the version as its ETag says, e.g. \"3\""),
            )
            .field("If-Match")
        })
}

#[derive(Deserialize)]
struct DryRunQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn put_config(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DryRunQuery>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let format = format_of(&headers)?;
    let expected = if_match(&headers)?;
    // An unknown component is a 404 before its body is read.
    known(&s, &name)?;
    let bytes = read_body(&s, body, s.settings.max_body_bytes).await?;
    if q.dry_run {
        let input = format.decode(bytes.to_vec()).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message).field("body")
        })?;
        let event = s.runtime.dry_run(&name, input).await?;
        return Ok(event_answer(&event));
    }
    let change = Change {
        component: name,
        origin: Origin::Api,
        payload: Payload::Config {
            bytes: bytes.to_vec(),
            format,
        },
    };
    let event = match expected {
        Some(v) => s.runtime.apply_expecting(change, v).await?,
        None => s.runtime.apply(change).await?,
    };
    Ok(event_answer(&event))
}

#[derive(Deserialize)]
struct HandlerQuery {
    #[serde(default)]
    force: bool,
}

/// A new handler: tried first against the configuration in force and the
/// history (a shadow dry run); swapped only when it accepts them all, or
/// with `?force=true` when it accepts the configuration in force.
async fn put_handler(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HandlerQuery>,
    body: Body,
) -> Answer {
    known(&s, &name)?;
    let _upload =
        s.uploads.acquire().await.map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the admin API is stopping")
        })?;
    let wasm = read_body(&s, body, s.settings.max_handler_bytes).await?;
    let wasm: Arc<[u8]> = Arc::from(&wasm[..]);
    let check = s
        .runtime
        .dry_run_handler(&name, HandlerSource::Bytes(wasm.clone()))
        .await?;
    let in_force_ok = check.in_force.outcome == Outcome::Applied;
    if !(check.accepts_all() || (q.force && in_force_ok)) {
        let refused: Vec<Value> = check
            .history
            .iter()
            .filter(|(_, e)| {
                !matches!(
                    e.outcome,
                    Outcome::Applied | Outcome::Unchanged | Outcome::RestartRequired
                )
            })
            .map(|(v, e)| json!({ "version": v, "event": e }))
            .collect();
        let why = if in_force_ok {
            format!(
                "the new handler refuses {} configuration(s) of the history (add ?force=true \
                 to swap anyway)",
                refused.len()
            )
        } else {
            format!(
                "the new handler refuses the configuration in force: {}",
                check.in_force.summary()
            )
        };
        let body = json!({
            "error": why,
            "handler_hash": check.handler_hash,
            "in_force": check.in_force,
            "refused": refused,
        });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response());
    }
    let event = s
        .runtime
        .swap_handler(&name, HandlerSource::Bytes(wasm))
        .await?;
    Ok(event_answer(&event))
}

/// A revision as the API shows it: its configuration as JSON.
fn revision_view(r: &Revision) -> Value {
    let config: Value = serde_json::from_str(&r.config).unwrap_or(Value::String(r.config.clone()));
    json!({
        "component": r.component,
        "version": r.version,
        "timestamp": r.timestamp,
        "source": r.source,
        "handler_hash": r.handler_hash,
        "config": config,
        "effective": r.effective,
    })
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn versions(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> Answer {
    known(&s, &name)?;
    let history = s.runtime.history(&name, q.limit.unwrap_or(100)).await?;
    let all: Vec<Value> = history.iter().map(revision_view).collect();
    Ok(axum::Json(json!({ "component": name, "versions": all })).into_response())
}

async fn revision(s: &AppState, name: &str, version: u64) -> Result<Revision, ApiError> {
    let store = s
        .runtime
        .revisions()
        .cloned()
        .ok_or(hotreload::Error::NoHistory)?;
    let component = name.to_owned();
    let found = tokio::task::spawn_blocking(move || store.get(&component, version))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    found.ok_or_else(|| {
        hotreload::Error::NoRevision {
            component: name.to_owned(),
            version,
            kept: None,
        }
        .into()
    })
}

async fn version(State(s): State<AppState>, Path((name, n)): Path<(String, u64)>) -> Answer {
    known(&s, &name)?;
    let r = revision(&s, &name, n).await?;
    let mut res = axum::Json(revision_view(&r)).into_response();
    res.headers_mut().insert(header::ETAG, etag(n));
    Ok(res)
}

#[derive(Deserialize)]
struct Against {
    against: Option<u64>,
}

async fn version_diff(
    State(s): State<AppState>,
    Path((name, n)): Path<(String, u64)>,
    Query(q): Query<Against>,
) -> Answer {
    known(&s, &name)?;
    let against = q.against.unwrap_or(n.saturating_sub(1));
    let old = revision(&s, &name, against).await?;
    let new = revision(&s, &name, n).await?;
    let parse = |r: &Revision| serde_json::from_str::<Value>(&r.config).unwrap_or(Value::Null);
    let changes = hotreload::diff(&parse(&old), &parse(&new));
    Ok(axum::Json(json!({
        "component": name,
        "from": against,
        "to": n,
        "changes": changes,
    }))
    .into_response())
}

/// A POST's body must say it is JSON: a browser sends a form or text
/// without asking first, JSON only after asking (and being refused).
fn json_content(headers: &HeaderMap) -> Result<(), ApiError> {
    match format_of(headers) {
        Ok(Format::Json) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        )
        .field("Content-Type")),
    }
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON this endpoint takes: {e}"),
        )
        .field("body")
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    to_version: u64,
}

async fn rollback(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    json_content(&headers)?;
    let bytes = read_body(&s, body, s.settings.max_body_bytes).await?;
    let req: RollbackBody = json_body(&bytes)?;
    let event = s.runtime.rollback_to(&name, req.to_version).await?;
    Ok(event_answer(&event))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// Component name → its new configuration.
    components: BTreeMap<String, Value>,
}

async fn batch(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Answer {
    json_content(&headers)?;
    let bytes = read_body(&s, body, s.settings.max_body_bytes).await?;
    let req: BatchBody = json_body(&bytes)?;
    let names = s.runtime.component_names();
    if let Some(unknown) = req
        .components
        .keys()
        .find(|n| names.binary_search(n).is_err())
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown component {unknown:?}: nothing was applied"),
        )
        .field(format!("/components/{unknown}")));
    }
    let members = req
        .components
        .into_iter()
        .map(|(n, v)| (n, ConfigInput::Value(v)));
    let report = s.runtime.reload_batch(members).await?;
    let status = status_of(report.outcome);
    Ok((
        status,
        axum::Json(json!({
            "batch": report.id,
            "outcome": report.outcome,
            "events": report.events,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: u64,
    wait: Option<String>,
}

/// The events after `since`; with `wait`, waits up to that long (at most
/// 60 s) for the first one.
async fn events(State(s): State<AppState>, Query(q): Query<EventsQuery>) -> Answer {
    let wait = match &q.wait {
        None => Duration::ZERO,
        Some(w) => humantime::parse_duration(w)
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("wait={w:?}: {e}")).field("wait")
            })?
            .min(Duration::from_secs(60)),
    };
    let mut feed = Feed::after(&s.runtime, q.since);
    let mut items = feed.ready();
    if items.is_empty()
        && !wait.is_zero()
        && let Ok(Some(item)) = tokio::time::timeout(wait, feed.next()).await
    {
        items.push(item);
        items.extend(feed.ready());
    }
    let mut events = Vec::new();
    let mut missed = Vec::new();
    for item in items {
        match item {
            Item::Event(e) => events.push(e),
            Item::Missed(a, b) => missed.push([a, b]),
        }
    }
    Ok(axum::Json(json!({
        "events": events,
        "missed": missed,
        "last_id": feed.last(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct StreamQuery {
    since: Option<u64>,
}

/// Server-sent events: `id:` is the event id; a client that comes back
/// with `Last-Event-ID` (or `?since=`) gets what it missed from the ring,
/// and an `event: missed` for what already left it.
async fn stream(
    State(s): State<AppState>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.since);
    let feed = match resume {
        Some(id) => Feed::after(&s.runtime, id),
        None => Feed::live(&s.runtime),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        let sse = match item {
            Item::Event(e) => SseEvent::default()
                .id(e.id.to_string())
                .event("reload")
                .json_data(&*e)
                .unwrap_or_else(|_| SseEvent::default().comment("unencodable event")),
            Item::Missed(a, b) => SseEvent::default()
                .event("missed")
                .data(json!({ "from": a, "to": b }).to_string()),
        };
        Some((Ok(sse), feed))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn stats(State(s): State<AppState>) -> Response {
    axum::Json(s.runtime.stats()).into_response()
}
