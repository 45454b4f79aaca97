//! Floods: many deliveries over a few keep-alive connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::Request;
use http_body_util::{BodyExt, Full};

use crate::{Delivery, connect};

/// What [`blast`] got back.
#[derive(Debug, Default)]
pub struct Blast {
    /// The final status of each delivery, by index.
    pub statuses: Vec<u16>,
    /// `503` answers that were retried (`retry`).
    pub retried_503: usize,
    /// `409` `in_progress` answers that were retried (`retry`).
    pub retried_409: usize,
}

impl Blast {
    /// How many deliveries ended with `status`.
    pub fn count(&self, status: u16) -> usize {
        self.statuses.iter().filter(|&&s| s == status).count()
    }
}

/// Sends deliveries `0..n` (made by `make`, on the fly, so they are never all in
/// memory at once) to `path` over `connections` keep-alive HTTP/1 connections; each
/// connection takes the next unsent index. With `retry`, a `503` (busy) or a `409`
/// (`in_progress`: another delivery of the event is not yet taken on) is sent again
/// after a short pause, as a sender honouring `Retry-After` would (sooner).
pub async fn blast<F>(
    addr: SocketAddr,
    path: &'static str,
    n: usize,
    connections: usize,
    retry: bool,
    make: F,
) -> Blast
where
    F: Fn(usize) -> Delivery + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (make, next) = (make.clone(), next.clone());
        workers.spawn(async move {
            let mut sender = connect(addr).await;
            let (mut statuses, mut retried) = (Vec::new(), (0, 0));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let delivery = make(i);
                let status = loop {
                    if sender.ready().await.is_err() {
                        // The server closed this connection (after a 4xx with an
                        // unread body, say): open another.
                        sender = connect(addr).await;
                    }
                    let mut request = Request::post(path)
                        .header(http::header::HOST, "localhost")
                        .body(Full::new(delivery.body.clone()))
                        .expect("request");
                    request.headers_mut().extend(delivery.headers.clone());
                    let status = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.into_body().collect().await;
                            status
                        }
                        Err(e) => panic!("delivery {i}: {e}"),
                    };
                    if retry && matches!(status, 503 | 409) {
                        if status == 503 {
                            retried.0 += 1;
                        } else {
                            retried.1 += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    break status;
                };
                statuses.push((i, status));
            }
            (statuses, retried)
        });
    }
    let mut blast = Blast {
        statuses: vec![0; n],
        retried_503: 0,
        retried_409: 0,
    };
    while let Some(worker) = workers.join_next().await {
        let (statuses, retried) = worker.expect("a sender task");
        for (i, status) in statuses {
            blast.statuses[i] = status;
        }
        blast.retried_503 += retried.0;
        blast.retried_409 += retried.1;
    }
    blast
}
