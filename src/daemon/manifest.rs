//! The daemon's manifest (TOML): `[runtime]` settings and `[[component]]`s.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::manager::HandlerSource;
use crate::settings::{LimitOverrides, Settings};
use crate::sources::Format;

/// The largest manifest read (a thousand components take about 100 KiB).
const MANIFEST_LIMIT: u64 = 16 << 20;

/// One component of a manifest, with paths resolved against the manifest's directory.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// The component's name.
    pub name: String,
    /// Its handler: a file (watched for hot swaps) or `bundled:NAME`.
    pub handler: HandlerSource,
    /// Where its configuration comes from: a file, or an etcd key.
    pub config: ConfigRef,
    /// Its limits, where they differ from the runtime's.
    pub limits: LimitOverrides,
    /// Its group: components of one group whose files change within one
    /// debounce window reload as one all-or-nothing batch.
    pub group: Option<String>,
}

/// Where a component's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRef {
    /// A file (watched), its format taken from its extension.
    File(PathBuf),
    /// A key under `[source.etcd] prefix` (`config = "etcd:KEY"`), written
    /// in `format`.
    Etcd {
        /// The key, relative to the prefix.
        key: String,
        /// How its value is read (`format = "json|toml|yaml"`, default JSON).
        format: Format,
    },
}

impl ConfigRef {
    /// The file, when the configuration comes from one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ConfigRef::File(p) => Some(p),
            ConfigRef::Etcd { .. } => None,
        }
    }
}

impl std::fmt::Display for ConfigRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigRef::File(p) => write!(f, "{}", p.display()),
            ConfigRef::Etcd { key, .. } => write!(f, "etcd:{key}"),
        }
    }
}

/// `[source.etcd]`: the etcd cluster a fleet's configurations live in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSettings {
    /// `http://HOST:PORT` of each member (any one is enough to work).
    pub endpoints: Vec<String>,
    /// Every key of the fleet is under it: configurations at
    /// `PREFIX/KEY`, acknowledgements at `PREFIX/status/NODE/COMPONENT`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// A user, when etcd's authentication is on.
    pub user: Option<String>,
    /// A file holding that user's password.
    pub password_file: Option<PathBuf>,
    /// The CA (PEM) that signed etcd's certificate: needed for `https://`
    /// endpoints.
    pub ca_file: Option<PathBuf>,
    /// This node's client certificate (PEM), when etcd checks clients'
    /// certificates (`--client-cert-auth`); with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// How long connecting (and the first read at a start) may take, ms;
    /// beyond it the node starts on its last committed configuration.
    #[serde(default = "default_etcd_connect")]
    pub connect_timeout_ms: u64,
    /// The time to live of the node's lease, seconds: its acknowledgements
    /// disappear this long after it dies.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_s: i64,
}

fn default_prefix() -> String {
    "/hotreload".into()
}
fn default_etcd_connect() -> u64 {
    2000
}
fn default_lease_ttl() -> i64 {
    10
}

/// `[node]`: this machine within the fleet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// The node's name in the fleet (default: the host name).
    #[serde(default = "default_node_id")]
    pub id: String,
    /// A canary applies a new revision at once; the other nodes wait until
    /// every live canary applied it, and never take one a canary refused.
    #[serde(default)]
    pub canary: bool,
}

impl Default for NodeSettings {
    fn default() -> NodeSettings {
        NodeSettings {
            id: default_node_id(),
            canary: false,
        }
    }
}

/// The host name, made a valid node name.
fn default_node_id() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if crate::manager::valid_name(&id) {
        id
    } else {
        "node".into()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Sources {
    etcd: Option<EtcdSettings>,
}

/// The first segments of keys under the prefix that the fleet itself uses.
pub(crate) const RESERVED_KEYS: [&str; 4] = ["status", "nodes", "members", "canary"];

/// `[admin]`: the admin HTTP API the `hotreload` binary serves. Never
/// part of a reloadable configuration: no reload can lock the operator out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `IP:PORT` to listen on (default `127.0.0.1:7070`; port 0 picks a
    /// free one, written to `STATE_DIR/admin.addr`), or `off`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the bearer token every endpoint but `/healthz` and
    /// `/readyz` needs. Required when `listen` is not a loopback address.
    pub token_file: Option<PathBuf>,
    /// `/metrics` answers without the token too (for scrapers that find
    /// targets by annotations and hold no secret).
    #[serde(default)]
    pub public_metrics: bool,
    /// Host names (besides the listen address, `localhost` and IP
    /// literals) a request's `Host` may name, e.g. a Kubernetes service.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The largest configuration or batch body, bytes (413 beyond).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// The largest handler `.wasm` body, bytes (413 beyond).
    #[serde(default = "default_handler_body")]
    pub max_handler_bytes: usize,
    /// A request (headers and body) must arrive within this many
    /// milliseconds, or the connection is closed (slow clients).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
}

fn default_listen() -> String {
    "127.0.0.1:7070".into()
}
fn default_body() -> usize {
    4 << 20
}
fn default_handler_body() -> usize {
    128 << 20
}
fn default_request_timeout() -> u64 {
    10_000
}

impl Default for AdminSettings {
    fn default() -> AdminSettings {
        AdminSettings {
            listen: default_listen(),
            token_file: None,
            public_metrics: false,
            allowed_hosts: Vec::new(),
            max_body_bytes: default_body(),
            max_handler_bytes: default_handler_body(),
            request_timeout_ms: default_request_timeout(),
        }
    }
}

impl AdminSettings {
    /// The address to listen on; `None` when the API is off.
    ///
    /// # Errors
    /// When `listen` is neither `off` nor `IP:PORT`.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen == "off" {
            return Ok(None);
        }
        let listen = self.listen.replacen("localhost:", "127.0.0.1:", 1);
        listen.parse().map(Some).map_err(|_| {
            format!(
                "[admin] listen = {:?}: use IP:PORT (\"127.0.0.1:7070\") or \"off\"",
                self.listen
            )
        })
    }
}

/// `[notify]`: a webhook told of failed reloads (and, if asked, of
/// successful ones), with retries and a bounded queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// `http://HOST:PORT/PATH` receiving one JSON event per POST.
    pub url: String,
    /// Also send applied, unchanged and restart-required events.
    #[serde(default)]
    pub include_success: bool,
    /// Events waiting to be sent; beyond it the oldest are dropped (and
    /// counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Tries after the first for one event (1 s, 2 s, 4 s... apart, at
    /// most 30 s).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// How long one try may take, milliseconds.
    #[serde(default = "default_notify_timeout")]
    pub timeout_ms: u64,
}

fn default_queue() -> usize {
    1000
}
fn default_retries() -> u32 {
    5
}
fn default_notify_timeout() -> u64 {
    5000
}

/// A loaded manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// The runtime settings; `state_dir` resolved (default `.hotreload`
    /// beside the manifest).
    pub settings: Settings,
    /// The components, in manifest order.
    pub components: Vec<ComponentDecl>,
    /// The admin API; `token_file` resolved against the manifest's directory.
    pub admin: AdminSettings,
    /// The webhook for failed reloads, if any.
    pub notify: Option<NotifySettings>,
    /// The etcd cluster, when a component's configuration lives there.
    pub etcd: Option<EtcdSettings>,
    /// This node within the fleet.
    pub node: NodeSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    runtime: Settings,
    #[serde(default, rename = "component")]
    components: Vec<Entry>,
    #[serde(default)]
    admin: AdminSettings,
    notify: Option<NotifySettings>,
    #[serde(default)]
    source: Sources,
    #[serde(default)]
    node: NodeSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    handler: String,
    config: String,
    format: Option<String>,
    fuel: Option<u64>,
    memory_mib: Option<u64>,
    validation_timeout_ms: Option<u64>,
    reload_timeout_ms: Option<u64>,
    max_retries: Option<u32>,
    retry_interval_ms: Option<u64>,
    group: Option<String>,
}

impl Manifest {
    /// Reads and checks a manifest: unknown keys, duplicate names and
    /// missing handler files are errors that name what is wrong.
    /// Configuration files are not required to exist yet (the daemon may
    /// start on a last-known-good one).
    ///
    /// # Errors
    /// [`Error::Manifest`] naming the manifest and the problem.
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        let bad = |reason: String| Error::Manifest {
            path: path.to_owned(),
            reason,
        };
        // A regular file only (a FIFO would hang the start), and bounded.
        let bytes = crate::sources::read_regular(path, MANIFEST_LIMIT)
            .map_err(|e| bad(format!("cannot read the manifest: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
        Manifest::parse(path, &text)
    }

    /// As [`Manifest::load`], from text.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, Error> {
        let bad = |reason: String| Error::Manifest {
            path: path.to_owned(),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().into()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut settings = file.runtime;
        settings.state_dir =
            Some(dir.join(settings.state_dir.unwrap_or_else(|| ".hotreload".into())));
        settings.config_roots = settings.config_roots.iter().map(|r| dir.join(r)).collect();
        if file.components.is_empty() {
            return Err(bad("no [[component]] is declared".into()));
        }
        let etcd = file.source.etcd;
        if let Some(etcd) = &etcd {
            check_etcd(etcd).map_err(&bad)?;
        }
        if !crate::manager::valid_name(&file.node.id) {
            return Err(bad(format!(
                "[node] id = {:?}: use 1 to 64 ASCII letters, digits, '-', '_' or '.'",
                file.node.id
            )));
        }
        let mut components: Vec<ComponentDecl> = Vec::new();
        for e in file.components {
            if !crate::manager::valid_name(&e.name) {
                return Err(bad(format!(
                    "component {:?}: not a valid name: use 1 to 64 ASCII letters, digits, '-', \
                     '_' or '.', not starting with '.'",
                    e.name
                )));
            }
            if components.iter().any(|c| c.name == e.name) {
                return Err(bad(format!("component {:?} is declared twice", e.name)));
            }
            let handler = match e.handler.strip_prefix("bundled:") {
                Some(name) => HandlerSource::Bundled(name.to_owned()),
                None => {
                    let p = dir.join(&e.handler);
                    if let Err(why) = crate::sources::check_regular(&p) {
                        return Err(bad(format!("component {:?}: handler {why}", e.name)));
                    }
                    HandlerSource::Path(p)
                }
            };
            let config = match e.config.strip_prefix("etcd:") {
                Some(key) => {
                    if etcd.is_none() {
                        return Err(bad(format!(
                            "component {:?}: config = {:?} needs a [source.etcd] section",
                            e.name, e.config
                        )));
                    }
                    check_key(key).map_err(|why| bad(format!("component {:?}: {why}", e.name)))?;
                    let format = match e.format.as_deref() {
                        None | Some("json") => Format::Json,
                        Some("toml") => Format::Toml,
                        Some("yaml") => Format::Yaml,
                        Some(other) => {
                            return Err(bad(format!(
                                "component {:?}: format = {other:?}: use \"json\", \"toml\" \
                                 or \"yaml\"",
                                e.name
                            )));
                        }
                    };
                    ConfigRef::Etcd {
                        key: key.to_owned(),
                        format,
                    }
                }
                None => {
                    if e.format.is_some() {
                        return Err(bad(format!(
                            "component {:?}: format is for etcd keys; a file's format comes \
                             from its extension",
                            e.name
                        )));
                    }
                    ConfigRef::File(dir.join(e.config))
                }
            };
            components.push(ComponentDecl {
                name: e.name,
                handler,
                config,
                limits: LimitOverrides {
                    fuel: e.fuel,
                    memory_mib: e.memory_mib,
                    validation_timeout_ms: e.validation_timeout_ms,
                    reload_timeout_ms: e.reload_timeout_ms,
                    max_retries: e.max_retries,
                    retry_interval_ms: e.retry_interval_ms,
                },
                group: e.group,
            });
        }
        let mut admin = file.admin;
        admin.token_file = admin.token_file.map(|t| dir.join(t));
        if let Some(addr) = admin.address().map_err(&bad)?
            && !loopback(addr.ip())
            && admin.token_file.is_none()
        {
            return Err(bad(format!(
                "[admin] listen = {:?} is not a loopback address: anyone who can reach it \
                 could change every configuration. Set [admin] token_file, or listen on \
                 127.0.0.1",
                admin.listen
            )));
        }
        if let Some(n) = &file.notify
            && !n.url.starts_with("http://")
        {
            return Err(bad(format!(
                "[notify] url = {:?}: only http:// URLs are supported (send to a local relay \
                 for https)",
                n.url
            )));
        }
        let etcd = etcd.map(|mut e| {
            e.password_file = e.password_file.map(|p| dir.join(p));
            e.ca_file = e.ca_file.map(|p| dir.join(p));
            e.cert_file = e.cert_file.map(|p| dir.join(p));
            e.key_file = e.key_file.map(|p| dir.join(p));
            e.prefix = e.prefix.trim_end_matches('/').to_owned();
            e
        });
        Ok(Manifest {
            path: path.to_owned(),
            settings,
            components,
            admin,
            notify: file.notify,
            etcd,
            node: file.node,
        })
    }

    /// The components whose configuration lives in etcd.
    pub fn etcd_components(&self) -> impl Iterator<Item = (&ComponentDecl, &str, Format)> {
        self.components.iter().filter_map(|c| match &c.config {
            ConfigRef::Etcd { key, format } => Some((c, key.as_str(), *format)),
            ConfigRef::File(_) => None,
        })
    }
}

fn check_etcd(etcd: &EtcdSettings) -> Result<(), String> {
    if !cfg!(feature = "etcd") {
        return Err("[source.etcd]: this build has no etcd support (the `etcd` feature)".into());
    }
    if etcd.endpoints.is_empty() {
        return Err("[source.etcd] endpoints is empty: name at least one member".into());
    }
    let tls = etcd.ca_file.is_some();
    for e in &etcd.endpoints {
        match (e.strip_prefix("https://"), e.strip_prefix("http://")) {
            (Some(_), _) if !tls => {
                return Err(format!(
                    "[source.etcd] endpoint {e:?} is https: set ca_file to the CA that signed \
                     etcd's certificate"
                ));
            }
            (None, Some(_)) if tls => {
                return Err(format!(
                    "[source.etcd] endpoint {e:?} is plain http, but ca_file is set: use \
                     https://HOST:PORT for every endpoint"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "[source.etcd] endpoint {e:?}: use http://HOST:PORT or https://HOST:PORT"
                ));
            }
            _ => {}
        }
    }
    if etcd.cert_file.is_some() != etcd.key_file.is_some() {
        return Err("[source.etcd]: cert_file and key_file go together".into());
    }
    if etcd.cert_file.is_some() && !tls {
        return Err("[source.etcd]: a client certificate needs ca_file and https endpoints".into());
    }
    if !etcd.prefix.starts_with('/') || etcd.prefix.trim_end_matches('/').is_empty() {
        return Err(format!(
            "[source.etcd] prefix = {:?}: use an absolute key prefix such as \"/hotreload/web\"",
            etcd.prefix
        ));
    }
    if etcd.user.is_some() != etcd.password_file.is_some() {
        return Err("[source.etcd]: user and password_file go together".into());
    }
    if !(2..=3600).contains(&etcd.lease_ttl_s) {
        return Err(format!(
            "[source.etcd] lease_ttl_s = {}: use 2 to 3600 seconds",
            etcd.lease_ttl_s
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    let first = key.split('/').next().unwrap_or_default();
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains("//") {
        return Err(format!(
            "config = \"etcd:{key}\": name a key relative to the prefix, such as \"etcd:logging\""
        ));
    }
    if RESERVED_KEYS.contains(&first) {
        return Err(format!(
            "config = \"etcd:{key}\": keys under {first}/ are the fleet's own (status, nodes, \
             members, canary)"
        ));
    }
    Ok(())
}

/// Loopback, or an IPv4-mapped loopback.
fn loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("m/hotreload.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_settings_components_and_overrides() {
        let m = parse(
            r#"
            [runtime]
            debounce_ms = 50
            state_dir = "state"
            [[component]]
            name = "logging"
            handler = "bundled:logging"
            config = "conf/logging.yaml"
            fuel = 1000
            "#,
        )
        .unwrap();
        assert_eq!(m.settings.debounce_ms, 50);
        assert_eq!(m.settings.state_dir, Some(PathBuf::from("m/state")));
        let c = &m.components[0];
        assert!(matches!(&c.handler, HandlerSource::Bundled(n) if n == "logging"));
        assert_eq!(c.config.file(), Some(Path::new("m/conf/logging.yaml")));
        assert_eq!(c.limits.fuel, Some(1000));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[runtime]\ndebounce = 5\n").unwrap_err();
        assert!(e.contains("unknown field `debounce`"), "{e}");
        let e = parse(
            "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"c\"\nfeul = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown field `feul`"), "{e}");
    }

    #[test]
    fn missing_handler_and_duplicates_are_named() {
        let e = parse("[[component]]\nname = \"a\"\nhandler = \"nope.wasm\"\nconfig = \"c\"\n")
            .unwrap_err();
        assert!(e.contains("handler m/nope.wasm does not exist"), "{e}");
        let two = "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"c\"\n";
        let e = parse(&format!("{two}{two}")).unwrap_err();
        assert!(e.contains("declared twice"), "{e}");
        assert!(parse("").unwrap_err().contains("no [[component]]"));
    }

    const ONE: &str = "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"c\"\n";

    #[test]
    fn admin_defaults_to_loopback_and_needs_a_token_elsewhere() {
        let m = parse(ONE).unwrap();
        assert_eq!(
            m.admin.address().unwrap(),
            Some("127.0.0.1:7070".parse().unwrap())
        );
        let m = parse(&format!("[admin]\nlisten = \"off\"\n{ONE}")).unwrap();
        assert_eq!(m.admin.address().unwrap(), None);
        let e = parse(&format!("[admin]\nlisten = \"0.0.0.0:7070\"\n{ONE}")).unwrap_err();
        assert!(
            e.contains("not a loopback address") && e.contains("token_file"),
            "{e}"
        );
        let m = parse(&format!(
            "[admin]\nlisten = \"0.0.0.0:7070\"\ntoken_file = \"t\"\n{ONE}"
        ))
        .unwrap();
        assert_eq!(m.admin.token_file, Some(PathBuf::from("m/t")));
        let e = parse(&format!("[admin]\nlisten = \"nowhere\"\n{ONE}")).unwrap_err();
        assert!(e.contains("use IP:PORT"), "{e}");
        let e = parse(&format!("[notify]\nurl = \"https://x\"\n{ONE}")).unwrap_err();
        assert!(e.contains("only http://"), "{e}");
    }

    #[test]
    fn etcd_keys_need_the_source_and_are_checked() {
        let etcd = "[source.etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\nprefix = \"/web/\"\n";
        let comp = |config: &str, extra: &str| {
            format!(
                "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"{config}\"\n{extra}"
            )
        };
        let m = parse(&format!(
            "{etcd}[node]\nid = \"n1\"\ncanary = true\n{}",
            comp("etcd:app/log", "format = \"yaml\"\n")
        ))
        .unwrap();
        assert_eq!(
            m.components[0].config,
            ConfigRef::Etcd {
                key: "app/log".into(),
                format: Format::Yaml
            }
        );
        let e = m.etcd.unwrap();
        assert_eq!((e.prefix.as_str(), e.lease_ttl_s), ("/web", 10));
        assert_eq!((m.node.id.as_str(), m.node.canary), ("n1", true));
        let e = parse(&comp("etcd:log", "")).unwrap_err();
        assert!(e.contains("needs a [source.etcd] section"), "{e}");
        let e = parse(&format!("{etcd}{}", comp("etcd:status/x", ""))).unwrap_err();
        assert!(e.contains("the fleet's own"), "{e}");
        let e = parse(&format!("{etcd}{}", comp("etcd:/abs", ""))).unwrap_err();
        assert!(e.contains("relative to the prefix"), "{e}");
        let e = parse(&format!("{etcd}{}", comp("etcd:log", "format = \"ini\"\n"))).unwrap_err();
        assert!(e.contains("format = \"ini\""), "{e}");
        let e = parse(&comp("log.json", "format = \"json\"\n")).unwrap_err();
        assert!(e.contains("format is for etcd keys"), "{e}");
        let e = parse(&format!(
            "[source.etcd]\nendpoints = [\"https://x:2379\"]\n{}",
            comp("etcd:log", "")
        ))
        .unwrap_err();
        assert!(e.contains("set ca_file"), "{e}");
        let e = parse(&format!(
            "[source.etcd]\nendpoints = [\"http://x:2379\"]\nca_file = \"ca.pem\"\n{}",
            comp("etcd:log", "")
        ))
        .unwrap_err();
        assert!(e.contains("use https://"), "{e}");
        let e = parse(&format!(
            "[source.etcd]\nendpoints = [\"https://x:2379\"]\nca_file = \"ca.pem\"\n\
             cert_file = \"c.pem\"\n{}",
            comp("etcd:log", "")
        ))
        .unwrap_err();
        assert!(e.contains("cert_file and key_file go together"), "{e}");
        let m = parse(&format!(
            "[source.etcd]\nendpoints = [\"https://x:2379\"]\nca_file = \"ca.pem\"\n{}",
            comp("etcd:log", "")
        ))
        .unwrap();
        assert_eq!(m.etcd.unwrap().ca_file, Some(PathBuf::from("m/ca.pem")));
        let e = parse(&format!("{etcd}[node]\nid = \"a/b\"\n{ONE}")).unwrap_err();
        assert!(e.contains("[node] id"), "{e}");
        // The default node id is the host name, made a valid name.
        assert!(crate::manager::valid_name(&parse(ONE).unwrap().node.id));
    }
}
