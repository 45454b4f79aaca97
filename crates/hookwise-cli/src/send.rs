//! POSTing a signed delivery: a small HTTP/1.1 client for local endpoints.

use std::{fmt, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::error::CliError;

/// The most of an answer's body the tool reads and prints.
const ANSWER_LIMIT: usize = 4096;

/// An `http://` URL to POST deliveries to.
#[derive(Debug)]
pub(crate) struct Target {
    uri: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Target {
    /// Checks that `url` is an absolute `http://` URL.
    pub(crate) fn parse(url: &str) -> Result<Self, CliError> {
        let bad = |why| CliError::Url {
            url: url.to_owned(),
            why,
        };
        const EXPECTED: &str =
            "must be an http:// URL, e.g. http://127.0.0.1:3000/webhooks/hoursmith";
        let uri: Uri = url.parse().map_err(|_| bad(EXPECTED))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "https is not supported: this tool tests local endpoints over http://",
                ));
            }
            _ => return Err(bad(EXPECTED)),
        }
        if uri.host().is_none() {
            return Err(bad(EXPECTED));
        }
        Ok(Self {
            uri,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// POSTs `body` as JSON with `headers`, and reads the answer.
    pub(crate) async fn post(
        &self,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, CliError> {
        let failed = |why: String| CliError::Http {
            url: self.uri.to_string(),
            why,
        };
        let mut request = Request::post(self.uri.clone())
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        *request.headers_mut() = headers;
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| failed(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map(|body| body.to_bytes())
                .map_err(|e| failed(format!("reading the answer: {e}")))?;
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {} s", timeout.as_secs())))?
    }
}

/// A receiver's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    body: Bytes,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        let body = String::from_utf8_lossy(&self.body);
        let body = body.trim();
        if !body.is_empty() {
            write!(f, " {body}")?;
        }
        Ok(())
    }
}

/// The error and its causes on one line ("client error (Connect): tcp connect
/// error: Connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
