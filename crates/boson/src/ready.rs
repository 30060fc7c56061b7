//! Instances built ahead of their request. Once a connection thread has written a response of
//! a `wasi:http/incoming-handler@0.2` component, it builds the next instance of that component
//! — a fresh store and instance, never called — and keeps it: one per component, for up to
//! [`PER_THREAD`] components per thread. The next request for the component on that thread
//! takes it, its deadline started then, and skips the store's setup and the instantiation: a
//! third of a compiled hello's in-process cost, and of the Python hello's, whose instantiation
//! runs its start functions (docs/BENCHMARKS.md, "Where it goes"). The work moves off a
//! request's path into the moment its client reads the answer; a saturated server does the
//! same work as before.
//!
//! An instance is built in one poll, without waiting: a build that would wait or fails is
//! given up, and after `GIVE_UP_AFTER` (3) in a row the component is no longer built ahead.
//!
//! Every request still gets an instance no request used before: a ready instance is taken by
//! one request at most, and dropped unused if its component was replaced or it gave its place
//! up; each such drop is counted, on the route whose answer built it
//! ([`TriggerMetrics::ready_unused`]), so the work done for nothing shows. The pool holds
//! slots for ready instances beyond admission's (`EngineOptions::ready_instances`), so they
//! never take a slot a running request needs.

use std::cell::RefCell;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::host::HostState;
use crate::metrics::TriggerMetrics;
use crate::runtime::{HandlerPre, LoadedComponent};

/// Components a connection thread keeps an instance ready for, at most.
pub const PER_THREAD: usize = 4;

/// How long a ready instance nobody took keeps its place from another component's: a thread
/// that keeps [`PER_THREAD`] instances drops one older than this to build the one it needs.
/// Components that all serve often keep theirs; an idle one gives its place up.
const IDLE: Duration = Duration::from_secs(1);

/// Builds given up in a row (the instantiation failed or would have waited) after which a
/// component's instances are no longer built ahead, until it is loaded again. Start functions
/// that wait (on a file, or on stdout, which the host writes asynchronously) wait every time,
/// and each attempt would cost a partial instantiation after every answer.
const GIVE_UP_AFTER: u32 = 3;

/// Ready instances an engine's pool holds slots for: [`PER_THREAD`] for each connection
/// thread (tokio's workers, one per core).
pub fn per_process() -> u32 {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(threads.saturating_mul(PER_THREAD)).unwrap_or(u32::MAX)
}

/// A fresh instance of a component, built before its request.
struct Ready {
    component: Arc<LoadedComponent>,
    store: Store<HostState>,
    proxy: Proxy,
    built: Instant,
    /// The counters of the route whose answer built it, told if it is dropped unused.
    counters: Arc<TriggerMetrics>,
    _slot: ReadySlot,
}

impl Ready {
    /// Drops an instance no request took, and counts it.
    fn discard(self) {
        self.counters.ready_unused();
    }
}

/// A component's side of building its instances ahead: its engine's free pool slots for ready
/// instances, and how many of its builds in a row were given up.
pub struct ReadyState {
    slots: Arc<AtomicUsize>,
    given_up: AtomicU32,
}

impl ReadyState {
    pub fn new(slots: Arc<AtomicUsize>) -> Self {
        Self {
            slots,
            given_up: AtomicU32::new(0),
        }
    }

    /// Whether the component's builds were given up [`GIVE_UP_AFTER`] times in a row.
    fn stopped(&self) -> bool {
        self.given_up.load(Ordering::Relaxed) >= GIVE_UP_AFTER
    }
}

/// One of the engine's pool slots for ready instances, given back when dropped.
struct ReadySlot(Arc<AtomicUsize>);

impl ReadySlot {
    fn take(free: &Arc<AtomicUsize>) -> Option<Self> {
        free.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()?;
        Some(Self(free.clone()))
    }
}

impl Drop for ReadySlot {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// This thread's ready instances, one per component at most.
    static READY: RefCell<Vec<Ready>> = const { RefCell::new(Vec::new()) };
}

/// Takes this thread's ready instance of `component`, if it keeps one, its deadline started
/// now. The caller holds the admission slot it runs under.
pub fn take(component: &Arc<LoadedComponent>) -> Option<(Store<HostState>, Proxy)> {
    let Ready {
        mut store, proxy, ..
    } = READY.with_borrow_mut(|ready| {
        let at = ready
            .iter()
            .position(|ready| Arc::ptr_eq(&ready.component, component))?;
        Some(ready.swap_remove(at))
    })?;
    component.arm(&mut store);
    Some((store, proxy))
}

/// After this thread answered a request with an instance of `component`, on the route that
/// `counters` count: builds the next one, unless the thread keeps one already, or keeps
/// [`PER_THREAD`] of other components that still serve and none of them has waited longer than
/// [`IDLE`]. An instantiation that fails or would wait (I/O, an epoch tick's yield) is given
/// up; the request will instantiate and report it.
pub fn prepare(component: &Arc<LoadedComponent>, counters: &Arc<TriggerMetrics>) {
    let Some(HandlerPre::P2(pre)) = &component.http else {
        return;
    };
    if component.ready.stopped() {
        return;
    }
    let now = Instant::now();
    let (needed, dropped) = READY.with_borrow_mut(|ready| {
        // A replaced component's instance goes: only this thread still holds the component.
        let mut dropped: Vec<Ready> = ready
            .extract_if(.., |ready| Arc::strong_count(&ready.component) == 1)
            .collect();
        if ready
            .iter()
            .any(|ready| Arc::ptr_eq(&ready.component, component))
        {
            return (false, dropped);
        }
        if ready.len() >= PER_THREAD {
            let Some(idle) = ready
                .iter()
                .position(|ready| now.duration_since(ready.built) > IDLE)
            else {
                return (false, dropped);
            };
            dropped.push(ready.swap_remove(idle));
        }
        (true, dropped)
    });
    // Dropped outside the borrow: a store's drop runs host code.
    dropped.into_iter().for_each(Ready::discard);
    if !needed {
        return;
    }
    let Some(slot) = ReadySlot::take(&component.ready.slots) else {
        return;
    };
    let Ok(mut store) = component.new_store() else {
        return;
    };
    let proxy = {
        let mut instantiate = pin!(pre.instantiate_async(&mut store));
        match instantiate
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(proxy)) => {
                component.ready.given_up.store(0, Ordering::Relaxed);
                proxy
            }
            Poll::Ready(Err(_)) => return give_up(component, "failed"),
            Poll::Pending => return give_up(component, "would have waited"),
        }
    };
    READY.with_borrow_mut(|ready| {
        ready.push(Ready {
            component: component.clone(),
            store,
            proxy,
            built: now,
            counters: counters.clone(),
            _slot: slot,
        })
    });
}

/// Counts a build given up; the last one allowed says so once.
fn give_up(component: &LoadedComponent, why: &str) {
    let id = &component.spec.id;
    let in_a_row = component.ready.given_up.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::debug!(component = %id, "instance not built ahead: its instantiation {why}");
    if in_a_row == GIVE_UP_AFTER {
        tracing::info!(
            component = %id,
            "instances are no longer built ahead: the instantiation {why}, {in_a_row} times in a row (start functions that wait or fail); requests instantiate it"
        );
    }
}
