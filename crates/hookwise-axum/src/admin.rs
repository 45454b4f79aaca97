//! [`dead_letter_router`]: list, show, replay and delete dead letters over HTTP.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hookwise_runtime::{DeadLetterError, DeadLetterFilter, DeadLetterRecord, DeadLetterStore};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// A page's size when none is asked for.
const DEFAULT_LIMIT: usize = 50;

/// How many dead letters one `POST /replay` replays when no limit is asked for.
const DEFAULT_REPLAY: usize = 100;

/// The largest page, and the most one `POST /replay` replays.
const MAX_LIMIT: usize = 500;

/// The longest filter value or cursor taken.
const MAX_PARAMETER: usize = 256;

/// What `Retry-After` says when a replay finds no room.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// A router to administer a runtime's dead letters, with relative routes only, to
/// [`nest`](Router::nest) where you want it **behind your own authentication**: it
/// has no credentials of its own and no default mount point, and it can replay
/// events and read their bodies.
///
/// Get the store from
/// [`Webhooks::dead_letter_store`](hookwise_runtime::Webhooks::dead_letter_store):
/// the in-memory list, or the durable queue's dead letters (Redis, Postgres).
///
/// | route | answer |
/// | --- | --- |
/// | `GET /` | a page, newest first: `{"letters":[{"id","provider","handler","key","event_type","attempts","error","dead_at"}],"next":cursor}`; `?limit=` (1 to 500, default 50), `?cursor=` (the previous page's `next`), and the filters `?handler=`, `?event_type=` and `?error=` (a part of the last error) |
/// | `GET /{id}` | one dead letter, as in a page (no body) |
/// | `GET /{id}/body` | its raw body as the sender signed it, `application/octet-stream` with `X-Content-Type-Options: nosniff` |
/// | `POST /{id}/replay` | `202 {"status":"replayed"}`: handed back to its handler (same retries and timeout) and taken out of the store in one step; a second replay is a `404` |
/// | `POST /replay` | replays the dead letters the filters take (the same three), newest first, at most `?limit=` (1 to 500, default 100): `{"replayed":n,"more":bool}`; call again while `more` |
/// | `DELETE /{id}` | `{"status":"deleted"}`: gone, its event never run |
///
/// `/` is the nest point itself: nested at `/admin/dead-letters`, a page is
/// `GET /admin/dead-letters?limit=10` (axum matches no trailing slash there).
///
/// Errors are JSON too: `400 {"error":"bad_request","detail":..}` for a bad
/// parameter, id or cursor; `404 {"error":"not_found"}`; `503
/// {"error":"queue_full"}` with `Retry-After` when the handler's backlog (or the
/// processor) has no room for a replay, the dead letter kept;
/// `503 {"error":"store_unavailable"}` when the backend fails. A replayed event
/// keeps its committed dedupe claim: the sender's redelivery stays a duplicate.
/// Replays and deletes are logged with the id; bodies never are.
///
/// ```no_run
/// use axum::{Router, body::Body, http::Request, http::StatusCode, response::IntoResponse};
/// use hookwise_axum::dead_letter_router;
/// use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// use hookwise_runtime::Webhooks;
/// use subtle::ConstantTimeEq;
/// use tower_http::validate_request::ValidateRequestHeaderLayer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
/// let expected = format!("Bearer {}", std::env::var("ADMIN_TOKEN")?);
/// let admin = dead_letter_router(webhooks.dead_letter_store().ok_or("no dead letters kept")?)
///     // Your authentication: here a bearer token, compared in constant time.
///     .layer(ValidateRequestHeaderLayer::custom(move |request: &mut Request<Body>| {
///         let given = request.headers().get("authorization").map(|v| v.as_bytes());
///         match given.is_some_and(|given| bool::from(given.ct_eq(expected.as_bytes()))) {
///             true => Ok(()),
///             false => Err(StatusCode::UNAUTHORIZED.into_response()),
///         }
///     }));
/// let app: Router = Router::new().nest("/admin/dead-letters", admin);
/// # Ok(()) }
/// ```
pub fn dead_letter_router<S>(store: Arc<dyn DeadLetterStore>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(list))
        .route("/replay", post(replay_matching))
        .route("/{id}", get(show).delete(delete))
        .route("/{id}/body", get(body))
        .route("/{id}/replay", post(replay))
        .with_state(store)
}

type Store = State<Arc<dyn DeadLetterStore>>;

/// The query parameters of `GET /` and `POST /replay`, as given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    limit: Option<String>,
    cursor: Option<String>,
    handler: Option<String>,
    event_type: Option<String>,
    error: Option<String>,
}

/// The parameters, checked.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    limit: usize,
    cursor: Option<String>,
    filter: DeadLetterFilter,
}

impl Params {
    /// Checks every parameter; `default` is the limit when none is given. A cursor
    /// is given to `GET /` only.
    fn check(self, default: usize, takes_cursor: bool) -> Result<Checked, Problem> {
        let limit = match self.limit.as_deref() {
            None | Some("") => default,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(Problem::Bad(
                    "limit must be a whole number from 1 to 500".into(),
                ))?,
        };
        if !takes_cursor && self.cursor.is_some() {
            return Err(Problem::Bad("a replay takes no cursor".into()));
        }
        let mut filter = DeadLetterFilter::default();
        filter.handler = given("handler", self.handler)?;
        filter.event_type = given("event_type", self.event_type)?;
        filter.error = given("error", self.error)?;
        Ok(Checked {
            limit,
            cursor: given("cursor", self.cursor)?,
            filter,
        })
    }
}

/// A text parameter: `None` when empty, refused when too long.
fn given(name: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    match value {
        Some(value) if value.len() > MAX_PARAMETER => Err(Problem::Bad(format!(
            "{name} is longer than {MAX_PARAMETER} bytes"
        ))),
        Some(value) if value.is_empty() => Ok(None),
        value => Ok(value),
    }
}

/// The parameters of a request, or its `400`.
fn checked(
    query: Result<Query<Params>, QueryRejection>,
    default: usize,
    takes_cursor: bool,
) -> Result<Checked, Problem> {
    let Query(params) = query.map_err(|rejection| Problem::Bad(rejection.body_text()))?;
    params.check(default, takes_cursor)
}

/// One dead letter as the router shows it: the record without its body.
#[derive(Serialize)]
struct Letter<'a> {
    id: &'a str,
    provider: &'a str,
    handler: Option<&'a str>,
    key: &'a str,
    event_type: Option<&'a str>,
    attempts: u32,
    error: &'a str,
    dead_at: u64,
}

impl<'a> From<&'a DeadLetterRecord> for Letter<'a> {
    fn from(record: &'a DeadLetterRecord) -> Self {
        Self {
            id: &record.id,
            provider: &record.provider,
            handler: record.handler.as_deref(),
            key: &record.key,
            event_type: record.event_type.as_deref(),
            attempts: record.attempts,
            error: &record.error,
            dead_at: record.dead_at,
        }
    }
}

#[derive(Serialize)]
struct Page<'a> {
    letters: Vec<Letter<'a>>,
    next: Option<&'a str>,
}

#[derive(Serialize)]
struct Replayed {
    replayed: usize,
    more: bool,
}

async fn list(State(store): Store, query: Result<Query<Params>, QueryRejection>) -> Response {
    let checked = match checked(query, DEFAULT_LIMIT, true) {
        Ok(checked) => checked,
        Err(problem) => return problem.into_response(),
    };
    let page = store
        .list(&checked.filter, checked.limit, checked.cursor.as_deref())
        .await;
    match page {
        Ok(page) => Json(Page {
            letters: page.letters.iter().map(Letter::from).collect(),
            next: page.next.as_deref(),
        })
        .into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn show(State(store): Store, Path(id): Path<String>) -> Response {
    match store.show(&id, false).await {
        Ok(Some(record)) => Json(Letter::from(&record)).into_response(),
        Ok(None) => Problem::NotFound.into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn body(State(store): Store, Path(id): Path<String>) -> Response {
    match store.show(&id, true).await {
        Ok(Some(DeadLetterRecord {
            body: Some(body), ..
        })) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            body,
        )
            .into_response(),
        Ok(_) => Problem::NotFound.into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn replay(State(store): Store, Path(id): Path<String>) -> Response {
    match store.replay(&id).await {
        Ok(false) => Problem::NotFound.into_response(),
        Ok(true) => {
            tracing::info!(id, "dead letter replayed by an admin");
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"status": "replayed"})),
            )
                .into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn replay_matching(
    State(store): Store,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let checked = match checked(query, DEFAULT_REPLAY, false) {
        Ok(checked) => checked,
        Err(problem) => return problem.into_response(),
    };
    match store.replay_matching(&checked.filter, checked.limit).await {
        Ok(report) => {
            tracing::info!(
                replayed = report.replayed,
                more = report.more,
                "dead letters replayed by an admin"
            );
            Json(Replayed {
                replayed: report.replayed,
                more: report.more,
            })
            .into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn delete(State(store): Store, Path(id): Path<String>) -> Response {
    match store.delete(&id).await {
        Ok(false) => Problem::NotFound.into_response(),
        Ok(true) => {
            tracing::info!(id, "dead letter deleted by an admin");
            Json(serde_json::json!({"status": "deleted"})).into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

/// A request the router could not serve, as its JSON answer.
#[derive(Debug, PartialEq, Eq)]
enum Problem {
    /// `400`, with what was wrong.
    Bad(String),
    /// `404`.
    NotFound,
    /// `503` with `Retry-After`: no room to replay.
    Full,
    /// `503`: the backend failed.
    Unavailable,
}

impl From<DeadLetterError> for Problem {
    fn from(error: DeadLetterError) -> Self {
        match error {
            DeadLetterError::BadId(_) => Self::Bad(error.to_string()),
            DeadLetterError::Full(_) => Self::Full,
            error => {
                tracing::warn!(%error, "dead-letter admin: the store failed");
                Self::Unavailable
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let json = |status, code: &str| (status, Json(serde_json::json!({ "error": code })));
        match self {
            Self::Bad(detail) => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "bad_request", "detail": detail})),
            )
                .into_response(),
            Self::NotFound => json(StatusCode::NOT_FOUND, "not_found").into_response(),
            Self::Full => (
                [(header::RETRY_AFTER, RETRY_AFTER.as_secs().to_string())],
                json(StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
            )
                .into_response(),
            Self::Unavailable => {
                json(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Result<Query<Params>, QueryRejection> {
        let uri: http::Uri = format!("/?{query}").parse().expect("a URI");
        Query::try_from_uri(&uri)
    }

    fn list_params(query: &str) -> Result<Checked, Problem> {
        checked(params(query), DEFAULT_LIMIT, true)
    }

    fn bad(result: Result<Checked, Problem>) -> String {
        match result {
            Err(Problem::Bad(detail)) => detail,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn no_parameter_is_the_default_page_of_everything() {
        let checked = list_params("").expect("valid");
        assert_eq!(
            checked,
            Checked {
                limit: DEFAULT_LIMIT,
                cursor: None,
                filter: DeadLetterFilter::default(),
            }
        );
    }

    #[test]
    fn every_parameter_is_taken() {
        let checked =
            list_params("limit=7&cursor=12&handler=hook&event_type=task.created&error=time%20out")
                .expect("valid");
        assert_eq!(checked.limit, 7);
        assert_eq!(checked.cursor.as_deref(), Some("12"));
        assert_eq!(checked.filter.handler.as_deref(), Some("hook"));
        assert_eq!(checked.filter.event_type.as_deref(), Some("task.created"));
        assert_eq!(checked.filter.error.as_deref(), Some("time out"));
        let empty = list_params("handler=&cursor=").expect("valid");
        assert_eq!((empty.filter.handler, empty.cursor), (None, None));
    }

    #[test]
    fn a_bad_limit_is_a_400() {
        for limit in ["0", "501", "-1", "ten", "1.5", "99999999999999999999999"] {
            let detail = bad(list_params(&format!("limit={limit}")));
            assert!(detail.contains("from 1 to 500"), "{limit}: {detail}");
        }
        assert_eq!(list_params("limit=500").expect("the largest").limit, 500);
        assert_eq!(list_params("limit=1").expect("the smallest").limit, 1);
    }

    #[test]
    fn an_unknown_parameter_a_long_value_or_a_cursor_given_to_a_replay_is_a_400() {
        let detail = bad(list_params("limt=5"));
        assert!(detail.contains("limt"), "{detail}");
        let long = "x".repeat(MAX_PARAMETER + 1);
        let detail = bad(list_params(&format!("error={long}")));
        assert!(detail.starts_with("error is longer"), "{detail}");
        let detail = bad(checked(params("cursor=5"), DEFAULT_REPLAY, false));
        assert!(detail.contains("no cursor"), "{detail}");
        let replay = checked(params(""), DEFAULT_REPLAY, false).expect("valid");
        assert_eq!(replay.limit, DEFAULT_REPLAY);
    }

    #[test]
    fn store_errors_have_their_status() {
        let status = |error| Problem::from(error).into_response().status();
        assert_eq!(
            status(DeadLetterError::BadId("a number")),
            StatusCode::BAD_REQUEST
        );
        let full = Problem::from(DeadLetterError::Full(hookwise_core::StoreError::full(
            "full",
        )))
        .into_response();
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.headers()[header::RETRY_AFTER], "10");
        assert_eq!(
            status(DeadLetterError::Unavailable(
                hookwise_core::StoreError::new("down")
            )),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
