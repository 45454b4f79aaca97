//! Buffering a request body within the limit and the read timeout.

use std::{
    future::{Future, poll_fn},
    pin::pin,
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use hookwise_core::{Rejection, RejectionKind};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::BoxError;

/// Reads the whole body, holding at most `limit` bytes: a body crossing the limit is
/// refused (`413`) as soon as it does, whether or not it declared its length, and a
/// body that does not arrive within `timeout` is refused with `408`.
pub(crate) async fn read<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut collect = pin!(Limited::new(body, limit).collect());
    // A body that is already complete (most are, by the time the request reaches the
    // runtime) is taken on the first poll, without reading the clock or arming a timer;
    // one that is not is then given the whole timeout.
    let first = poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(collected) => Ok(collected),
        Poll::Pending => tokio::time::timeout(timeout, collect).await,
    };
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if crossed_a_limit(e.as_ref()) => {
            Err(Rejection::new(RejectionKind::PayloadTooLarge)
                .with_detail(format!("body crossed the limit of {limit} bytes, or one the body carried (axum's DefaultBodyLimit)")))
        }
        Ok(Err(e)) => Err(Rejection::new(RejectionKind::BodyUnreadable).with_detail(e.to_string())),
        Err(_) => Err(Rejection::new(RejectionKind::BodyTimeout)
            .with_detail(format!("body not received within {timeout:?}"))),
    }
}

/// Whether a body error is a length limit, ours or one the body carried in (axum
/// wraps its `DefaultBodyLimit` error in its own error type).
fn crossed_a_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
