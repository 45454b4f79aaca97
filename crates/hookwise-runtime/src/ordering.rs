//! Per-resource ordering: the lines of ordered events, and what was applied.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use hookwise_core::{Delivery, Provider, ordering::OrderKey};
use tokio::sync::watch;

/// How many resources' last applied times [`Ordering`] remembers by default.
pub const DEFAULT_REMEMBERED_RESOURCES: u64 = 100_000;

/// A function that says which resource an event is about.
type KeyFn<E> = Arc<dyn Fn(&E) -> Option<OrderKey> + Send + Sync>;

/// The events of one resource run one after another, in the order they were
/// taken, and those of different resources in parallel. Opt in with
/// [`WebhooksBuilder::ordering`](crate::WebhooksBuilder::ordering). Each accepted
/// event gets an [`OrderKey`] (the resource it is about, and when the provider made
/// it) from the provider ([`Ordering::by_resource`]) or from your function
/// ([`Ordering::by`]). An event without one runs unordered.
///
/// - **One at a time per resource.** An event takes its place in its resource's line
///   when it is accepted, and runs when the events before it are done: processed,
///   dead-lettered, or dropped by a shutdown. A failing event holds its line through
///   its retries (that is what "in order" means); its dead letter lets the line go on.
/// - **Stale events, opt-in** ([`Ordering::skip_stale`]). Senders retry late: an
///   `invoice.sent` may come back after the `invoice.paid` was applied. With
///   `skip_stale(true)`, an event whose provider time is older than the last one
///   applied for its resource is acknowledged and not run, and counted
///   ([`StatsSnapshot::stale`](crate::StatsSnapshot::stale),
///   `hookwise_stale_events_total`). Equal times run.
/// - **Bounded.** A line exists only while it holds events, and those are bounded by
///   the processor's concurrency and queue. The last applied time is remembered for
///   at most [`Ordering::remembered`] resources (least recently used forgotten
///   first); a forgotten resource's next event is never skipped.
///
/// The order is kept in this process. Events of one resource handed to different
/// named handlers are in different lines (each handler applies its own), and so are
/// those of different tenants. A dead letter's replay is an operator's explicit
/// request and runs outside the line.
///
/// Behind a durable queue, the queue stores each event with its line
/// ([`Enqueue::line`](crate::Enqueue::line)), and what holds depends on it:
///
/// - **Postgres** (`PgQueue`) keeps the order across instances: a reader never takes
///   a row while an earlier row of its line is still queued (running, waiting, or
///   left by a dead worker until it is taken over), so one resource's events run
///   one at a time in the order stored, whichever instance reads them. A dead letter
///   lets the line go on; its replay joins no line.
/// - **Redis** (`RedisQueue`) keeps it per instance only: an instance's readers run
///   one event of a resource at a time, but the events read together start in no
///   set order, and instances do not coordinate. A consumer group hands entries out
///   without regard to what they hold, so a shared order would need each line's
///   progress kept in Redis beside the stream, with entries parked and taken over
///   in line order; that is not built.
///
/// Either way, stale events are judged by what this instance applied (the times are
/// kept in its memory): behind Redis, rely on `skip_stale` rather than on the order
/// of runs, and know that an instance that never saw a resource's newer event runs
/// its older one.
///
/// ```
/// use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// use hookwise_runtime::{Ordering, Webhooks};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
/// let webhooks = Webhooks::builder(receiver)
///     // One invoice's events one after another; a late, older one is skipped.
///     .ordering(Ordering::by_resource().skip_stale(true))
///     .build()?;
/// # let _ = webhooks;
/// # Ok(()) }
/// ```
pub struct Ordering<E> {
    key: Option<KeyFn<E>>,
    skip_stale: bool,
    remembered: u64,
}

impl<E> Ordering<E> {
    /// Orders by the resource the provider names
    /// ([`Provider::order_key`](hookwise_core::Provider::order_key): Hoursmith's
    /// invoice or task, Stripe's `data.object.id`, a GitHub issue, ...).
    pub fn by_resource() -> Self {
        Self {
            key: None,
            skip_stale: false,
            remembered: DEFAULT_REMEMBERED_RESOURCES,
        }
    }

    /// Orders by the key `key` gives; `None` leaves an event unordered.
    ///
    /// ```
    /// use hookwise_core::{ordering::OrderKey, stripe::Event};
    /// use hookwise_runtime::Ordering;
    ///
    /// // One customer's events in order, whatever object they are about.
    /// let ordering = Ordering::by(|event: &Event| {
    ///     let customer = event.object().get("customer")?.as_str()?;
    ///     Some(OrderKey::new(customer).at(event.created()))
    /// });
    /// # let _ = ordering;
    /// ```
    pub fn by<F>(key: F) -> Self
    where
        F: Fn(&E) -> Option<OrderKey> + Send + Sync + 'static,
    {
        Self {
            key: Some(Arc::new(key)),
            ..Self::by_resource()
        }
    }

    /// Acknowledges without running an event older than the last one applied for
    /// its resource (by the provider's time; off by default).
    #[must_use]
    pub fn skip_stale(mut self, on: bool) -> Self {
        self.skip_stale = on;
        self
    }

    /// How many resources' last applied times are remembered for
    /// [`skip_stale`](Self::skip_stale)
    /// ([`DEFAULT_REMEMBERED_RESOURCES`], 100,000; at least 1).
    #[must_use]
    pub fn remembered(mut self, resources: u64) -> Self {
        self.remembered = resources.max(1);
        self
    }
}

impl<E> fmt::Debug for Ordering<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ordering")
            .field(
                "key",
                &if self.key.is_some() {
                    "custom"
                } else {
                    "provider"
                },
            )
            .field("skip_stale", &self.skip_stale)
            .field("remembered", &self.remembered)
            .finish()
    }
}

/// The lines of a runtime's ordered events, and the last applied time per resource.
pub(crate) struct Sequencer<E> {
    key: Option<KeyFn<E>>,
    skip_stale: bool,
    lines: Arc<Mutex<HashMap<Arc<str>, Line>>>,
    applied: moka::sync::Cache<Arc<str>, i64>,
}

/// One resource's line: tickets are handed out in order and served in order.
struct Line {
    /// The next ticket to hand out.
    next: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets given up before their turn (their runs were dropped), skipped.
    abandoned: BTreeSet<u64>,
    /// Tells the waiting places whose turn it is.
    turn: watch::Sender<u64>,
}

impl<E> Sequencer<E> {
    pub(crate) fn new(ordering: Ordering<E>) -> Self {
        Self {
            key: ordering.key,
            skip_stale: ordering.skip_stale,
            lines: Arc::default(),
            applied: moka::sync::Cache::new(ordering.remembered),
        }
    }

    /// The name of `delivery`'s line for the handler `lane` (the handler, the tenant
    /// and the resource), with the provider's time for the event; `None` for an
    /// event without a key.
    pub(crate) fn line<P>(
        &self,
        provider: &P,
        lane: &str,
        delivery: &Delivery<E>,
    ) -> Option<(Arc<str>, Option<i64>)>
    where
        P: Provider<Event = E>,
    {
        let key = match &self.key {
            Some(key) => key(delivery.event()),
            None => provider.order_key(delivery.event()),
        }?;
        let tenant = delivery.tenant().map_or("", |tenant| tenant.as_str());
        // The unit separator cannot appear in a handler name or a tenant id.
        let line = format!("{lane}\u{1f}{tenant}\u{1f}{}", key.resource());
        Some((line.into(), key.time()))
    }

    /// Takes `delivery`'s place in its resource's line for the handler `lane`, now:
    /// the order of these calls is the order of the runs. `None` for an event
    /// without a key.
    pub(crate) fn place<P>(&self, provider: &P, lane: &str, delivery: &Delivery<E>) -> Option<Place>
    where
        P: Provider<Event = E>,
    {
        let (line, time) = self.line(provider, lane, delivery)?;
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = lines.entry(line.clone()).or_insert_with(|| Line {
            next: 0,
            serving: 0,
            abandoned: BTreeSet::new(),
            turn: watch::Sender::new(0),
        });
        let ticket = entry.next;
        entry.next += 1;
        Some(Place {
            lines: self.lines.clone(),
            served: entry.turn.subscribe(),
            line,
            ticket,
            time,
        })
    }

    /// Waits for `place`'s turn; `None` when its event is stale (then the place is
    /// given up, and the line goes on).
    pub(crate) async fn turn(&self, mut place: Place) -> Option<Turn<'_, E>> {
        place.turn().await;
        match self.is_stale(&place) {
            true => None,
            false => Some(Turn(Some((self, place)))),
        }
    }

    /// Whether `place`'s event is older than the last one applied for its resource,
    /// with stale events skipped. Asked in its turn, so that no other event of the
    /// resource is applied meanwhile.
    fn is_stale(&self, place: &Place) -> bool {
        match (self.skip_stale, place.time) {
            (true, Some(time)) => self
                .applied
                .get(&place.line)
                .is_some_and(|last| time < last),
            _ => false,
        }
    }

    /// Records that `place`'s event was applied: later, older ones are stale.
    fn applied(&self, place: &Place) {
        if let (true, Some(time)) = (self.skip_stale, place.time) {
            let last = self.applied.get(&place.line).unwrap_or(i64::MIN);
            self.applied.insert(place.line.clone(), last.max(time));
        }
    }

    /// How many lines hold events now.
    #[cfg(test)]
    fn lines(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<E> fmt::Debug for Sequencer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequencer")
            .field("skip_stale", &self.skip_stale)
            .finish_non_exhaustive()
    }
}

/// An event's turn in its resource's line, held while it runs: [`done`](Self::done)
/// records a success and lets the line go on. An unordered event's turn holds
/// nothing.
pub(crate) struct Turn<'a, E>(Option<(&'a Sequencer<E>, Place)>);

impl<E> Turn<'_, E> {
    /// The turn of an event that is not ordered.
    pub(crate) fn unordered() -> Self {
        Self(None)
    }

    /// Ends the turn after its run: a success is recorded as applied (later, older
    /// events are stale); either way the next event of the line goes on.
    pub(crate) fn done<T, F>(self, result: &Result<T, F>) {
        if let (Some((sequencer, place)), true) = (&self.0, result.is_ok()) {
            sequencer.applied(place);
        }
    }
}

/// An event's place in its resource's line. [`turn`](Self::turn) waits until the
/// events before it are done; dropped, in its turn or before, it lets the line go on.
pub(crate) struct Place {
    lines: Arc<Mutex<HashMap<Arc<str>, Line>>>,
    line: Arc<str>,
    ticket: u64,
    time: Option<i64>,
    served: watch::Receiver<u64>,
}

impl Place {
    /// Waits for this event's turn.
    pub(crate) async fn turn(&mut self) {
        let ticket = self.ticket;
        // The sender lives in the line while this place holds a ticket in it, so
        // the wait ends in this turn, never with an error.
        let _ = self.served.wait_for(|serving| *serving >= ticket).await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(line) = lines.get_mut(&self.line) else {
            return;
        };
        if line.serving != self.ticket {
            // Not its turn yet: skipped when it comes.
            line.abandoned.insert(self.ticket);
            return;
        }
        line.serving += 1;
        while line.abandoned.remove(&line.serving) {
            line.serving += 1;
        }
        if line.serving == line.next {
            // Nobody holds or waits for a ticket: the line goes.
            lines.remove(&self.line);
        } else {
            line.turn.send_replace(line.serving);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hookwise_core::{Hoursmith, MemoryStore, Outcome, Receiver};

    use super::*;

    type Event = hookwise_core::hoursmith::Event;

    async fn delivery(id: &str, invoice: &str, created: i64) -> Delivery<Event> {
        let provider = Hoursmith::new(hookwise_test_support::HOURSMITH_SECRET).expect("secret");
        let receiver = Receiver::new(provider, MemoryStore::new()).expect("config");
        let body = bytes::Bytes::from(format!(
            r#"{{"id":"{id}","type":"invoice.sent","created":{created},"orgId":"o","livemode":true,"data":{{"invoice":{{"id":"{invoice}"}}}}}}"#
        ));
        let signed = hookwise_test_support::hoursmith_signed(body, hookwise_test_support::now());
        match receiver.receive(&signed.headers, signed.body).await {
            Ok(Outcome::Accepted { delivery, .. }) => delivery,
            other => panic!("accepted, not {other:?}"),
        }
    }

    fn sequencer(skip_stale: bool) -> Sequencer<Event> {
        Sequencer::new(Ordering::by_resource().skip_stale(skip_stale).remembered(2))
    }

    fn place(sequencer: &Sequencer<Event>, delivery: &Delivery<Event>) -> Place {
        let provider = Hoursmith::new(hookwise_test_support::HOURSMITH_SECRET).expect("secret");
        sequencer
            .place(&provider, "h", delivery)
            .expect("an invoice event has a key")
    }

    #[tokio::test]
    async fn a_later_place_waits_for_the_earlier_and_an_abandoned_one_is_skipped() {
        let sequencer = sequencer(false);
        let (a, b, c) = (
            delivery("e1", "in_1", 1).await,
            delivery("e2", "in_1", 2).await,
            delivery("e3", "in_1", 3).await,
        );
        let mut first = place(&sequencer, &a);
        let second = place(&sequencer, &b);
        let mut third = place(&sequencer, &c);
        first.turn().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), third.turn()).await;
        assert!(
            waiting.is_err(),
            "the third waits while the first holds the line"
        );
        drop(second); // dropped before its turn, e.g. by a shutdown
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), third.turn())
            .await
            .expect("the third's turn comes once the first is done and the second gave up");
        assert_eq!(sequencer.lines(), 1);
        drop(third);
        assert_eq!(sequencer.lines(), 0, "an empty line is removed");
    }

    #[tokio::test]
    async fn other_resources_do_not_wait() {
        let sequencer = sequencer(false);
        let (a, b) = (
            delivery("e1", "in_1", 1).await,
            delivery("e2", "in_2", 1).await,
        );
        let mut first = place(&sequencer, &a);
        let mut other = place(&sequencer, &b);
        first.turn().await;
        tokio::time::timeout(Duration::from_secs(5), other.turn())
            .await
            .expect("another invoice runs in parallel");
    }

    #[tokio::test]
    async fn an_older_event_is_stale_once_a_newer_one_was_applied_and_only_with_skip_stale() {
        for skip_stale in [true, false] {
            let sequencer = sequencer(skip_stale);
            let (newer, older, same) = (
                delivery("e2", "in_1", 20).await,
                delivery("e1", "in_1", 10).await,
                delivery("e3", "in_1", 20).await,
            );
            let mut place_newer = place(&sequencer, &newer);
            place_newer.turn().await;
            assert!(!sequencer.is_stale(&place_newer));
            sequencer.applied(&place_newer);
            drop(place_newer);
            let mut place_older = place(&sequencer, &older);
            place_older.turn().await;
            assert_eq!(sequencer.is_stale(&place_older), skip_stale);
            drop(place_older);
            let mut place_same = place(&sequencer, &same);
            place_same.turn().await;
            assert!(!sequencer.is_stale(&place_same), "an equal time runs");
        }
    }

    #[tokio::test]
    async fn the_remembered_times_are_bounded() {
        let sequencer = sequencer(true);
        for i in 0..50 {
            let event = delivery(&format!("e{i}"), &format!("in_{i}"), 10).await;
            let mut placed = place(&sequencer, &event);
            placed.turn().await;
            sequencer.applied(&placed);
        }
        sequencer.applied.run_pending_tasks();
        assert!(sequencer.applied.entry_count() <= 2);
        assert_eq!(sequencer.lines(), 0);
    }
}
