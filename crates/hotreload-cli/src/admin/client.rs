//! A small HTTP/1.1 client (plain `http://`): the CLI clients of a running
//! daemon and the webhook sender use it.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as Legacy;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer: status and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON, or its text as a JSON string.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&self.body).into_owned())
        })
    }
}

/// A client of one base URL.
#[derive(Clone)]
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: Legacy<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client of `base` (`http://HOST:PORT`), sending `token` as a
    /// bearer token when given.
    pub(crate) fn new(base: impl Into<String>, token: Option<String>) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        Client {
            base: base.into(),
            token,
            http: Legacy::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// One request; `timeout` bounds the whole exchange, body included.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| format!("{url}: {e}"))?;
        let exchange = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{url}: reading the answer: {e}"))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            format!(
                "{url}: no answer within {}",
                humantime::format_duration(timeout)
            )
        })?
    }
}

/// An error and its sources on one line ("client error (Connect): tcp
/// connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
