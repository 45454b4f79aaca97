//! Buffering a request body within the limit and the read timeout.

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{Rejection, RejectionKind};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// A boxed error, as bodies and services report them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the whole body, holding at most `limit` bytes: a body crossing the limit is
/// refused (`413`) as soon as it does, whether or not it declared its length, and a
/// body that does not arrive within `timeout` is refused with `408`.
pub(crate) async fn read<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            Err(Rejection::new(RejectionKind::PayloadTooLarge)
                .with_detail(format!("body crossed the limit of {limit} bytes")))
        }
        Ok(Err(e)) => Err(Rejection::new(RejectionKind::BodyUnreadable).with_detail(e.to_string())),
        Err(_) => Err(Rejection::new(RejectionKind::BodyTimeout)
            .with_detail(format!("body not received within {timeout:?}"))),
    }
}
