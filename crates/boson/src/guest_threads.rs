//! Where guests run. A guest runs in place, polled by the request (or trigger event) that
//! started it on that task's thread: a short request and its guest never change threads, which
//! saves thread hand-offs (on an idle machine most of a hello world's cost) and keeps the
//! guest's allocations freed on the thread that made them. A guest that proves busy — epoch
//! ticks interrupted it [`BUSY_TICKS`] times while it computed ([`epoch_yield`]) — moves to the
//! guest threads, a second tokio runtime, and its component's next guests start
//! there for [`BUSY_WINDOW`]: a crowd of busy guests, each yielding only every epoch tick, then
//! delays only other guests, while connections, timers, a deadline's 504 and the host's own
//! endpoints go on.
//!
//! On the guest threads a [`Gate`] decides which guest is polled next: guests woken by I/O
//! first, then the others in order of arrival.
//!
//! Busy is counted in ticks, not told by a clock. A short guest may run across one tick, and on
//! a loaded machine the OS may pause its thread for milliseconds in the middle of a guest of a few
//! microseconds; under load either happened several times a second, and each would send the
//! whole component's requests across threads for a [`BUSY_WINDOW`]. Only a guest that computes
//! through more than two tick periods is interrupted twice (the first tick a store reaches only
//! re-arms its deadline: `runtime::EpochTicks`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::{JoinError, JoinHandle};

/// A guest interrupted this many times by epoch ticks while it computed is busy.
pub const BUSY_TICKS: u32 = 2;

/// After a guest of a component proved busy, the component's guests start on the guest threads
/// for this long.
pub const BUSY_WINDOW: Duration = Duration::from_secs(1);

/// The guest threads, and how many guests compute on callers' threads now.
pub struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
    threads: Threads,
    /// Places for guests on callers' threads.
    inline: Arc<Inline>,
    /// The clock [`Placement`] counts in.
    started: Instant,
}

/// How many guests on callers' threads are computing: started or woken, and not yet answered,
/// finished, moved or waiting. At most one per core: a burst of requests to a component not
/// yet known to be busy cannot take every connection thread. A guest that waits (for an
/// outbound reply, its client, a timer) gives its place up, and takes one again when woken —
/// or, with none free, moves to the guest threads — so guests that mostly wait stay on their
/// request's thread however many wait at once.
struct Inline {
    computing: AtomicUsize,
    max: usize,
}

impl Inline {
    fn enter(self: &Arc<Self>) -> Option<InlineSlot> {
        self.computing
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(InlineSlot(self.clone()))
    }
}

/// Where a component's next guests start; one per component, shared by its instances.
#[derive(Clone, Default)]
pub struct Placement {
    /// Until when (ms on the [`GuestThreads`] clock) they start on the guest threads.
    busy_until_ms: Arc<AtomicU64>,
}

impl GuestThreads {
    pub fn new() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("boson-guest")
            .enable_all()
            .build()
            .context("starting the guest threads")?;
        Ok(Self {
            threads: Threads {
                handle: runtime.handle().clone(),
                gate: Arc::new(Gate::new(threads)),
            },
            runtime: Some(runtime),
            inline: Arc::new(Inline {
                computing: AtomicUsize::new(0),
                max: threads,
            }),
            started: Instant::now(),
        })
    }

    /// Starts `task`, a guest of the component whose placement is `placement`. While it stays
    /// short the returned [`Guest`] runs it in place, on the thread that awaits it, so a request
    /// and its guest never change threads; when the component is known to be busy, or enough
    /// guests already run on callers' threads, it runs on the guest threads from the start.
    pub fn start<F>(&self, placement: &Placement, task: F) -> Guest<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let busy = placement.busy_until_ms.load(Ordering::Relaxed) > ms_since(self.started);
        let slot = if busy { None } else { self.inline.enter() };
        let state = if let Some(slot) = slot {
            State::Here {
                task: Box::pin(task),
                ticks: 0,
                slot: Slot::Held { _place: slot },
                inline: self.inline.clone(),
                placement: placement.clone(),
                threads: self.threads.clone(),
                started: self.started,
            }
        } else {
            State::Moved(self.threads.spawn(Box::pin(task), Turn::Fresh))
        };
        Guest { state }
    }
}

/// Milliseconds since `start`: the clock [`Placement`] counts in.
fn ms_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's context must not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A guest started by [`GuestThreads::start`]: await it for its output; drop it to stop the
/// guest wherever it runs; [`Guest::detach`] it to let it finish on its own.
pub struct Guest<T> {
    state: State<T>,
}

enum State<T> {
    /// Polled by whoever awaits the guest.
    Here {
        task: Pin<Box<dyn Future<Output = T> + Send>>,
        /// Epoch ticks that interrupted it so far.
        ticks: u32,
        /// Its place among the guests computing on callers' threads.
        slot: Slot,
        inline: Arc<Inline>,
        placement: Placement,
        threads: Threads,
        started: Instant,
    },
    /// A task on the guest threads.
    Moved(AbortOnDrop<T>),
    /// Its output was taken.
    Done,
}

/// An in-place guest's place among those computing on callers' threads.
enum Slot {
    /// It computes (or was interrupted by an epoch tick while it did); the place is given back
    /// when this is dropped.
    Held { _place: InlineSlot },
    /// It waits; polled again, it takes a place or moves.
    Waiting,
    /// Nobody awaits it ([`Guest::detach`]): it mostly waits for its client, and counts no more.
    Detached,
}

impl<T: Send + 'static> Guest<T> {
    /// Whether the guest runs on the guest threads.
    #[cfg(test)]
    fn is_moved(&self) -> bool {
        matches!(self.state, State::Moved(_))
    }

    /// Lets the guest run to its end with nobody awaiting it (its response went out and its
    /// body is still streaming): as a task on the current runtime while it stays short, else
    /// on the guest threads. Its own deadline still bounds it. A detached guest mostly waits
    /// for its client to read, so it no longer counts against the guests on callers' threads.
    pub fn detach(mut self) {
        if let State::Here { slot, .. } = &mut self.state {
            *slot = Slot::Detached;
        }
        if !matches!(self.state, State::Done) {
            tokio::spawn(async move {
                let _ = self.await;
            });
        }
    }
}

impl<T: Send + 'static> Future for Guest<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Taken out to be polled (and put back, or moved); any other state stays where it is.
        if matches!(this.state, State::Here { .. })
            && let State::Here {
                mut task,
                mut ticks,
                slot,
                inline,
                placement,
                threads,
                started,
            } = std::mem::replace(&mut this.state, State::Done)
        {
            // A waiting guest, woken, takes a place again; with none free (as many guests
            // compute on callers' threads as there are cores) it goes on on the guest threads.
            let place = match slot {
                Slot::Waiting => inline.enter().map(|held| Slot::Held { _place: held }),
                other => Some(other),
            };
            match place {
                None => this.state = State::Moved(threads.spawn(task, Turn::Woken)),
                Some(mut slot) => {
                    EPOCH_YIELD.set(false);
                    let poll = task.as_mut().poll(cx);
                    let ticked = EPOCH_YIELD.replace(false);
                    ticks += u32::from(ticked);
                    match poll {
                        Poll::Ready(output) => return Poll::Ready(Ok(output)),
                        Poll::Pending if ticks < BUSY_TICKS => {
                            // Waiting, not interrupted while computing: its place goes.
                            if !ticked && matches!(slot, Slot::Held { .. }) {
                                slot = Slot::Waiting;
                            }
                            this.state = State::Here {
                                task,
                                ticks,
                                slot,
                                inline,
                                placement,
                                threads,
                                started,
                            };
                            return Poll::Pending;
                        }
                        Poll::Pending => {
                            // Proved busy: the rest runs on the guest threads, and so do the
                            // component's next guests for a while.
                            let until = ms_since(started) + BUSY_WINDOW.as_millis() as u64;
                            placement.busy_until_ms.store(until, Ordering::Relaxed);
                            this.state = State::Moved(threads.spawn(task, Turn::Ticked));
                        }
                    }
                }
            }
        }
        match &mut this.state {
            State::Moved(moved) => {
                let output = std::task::ready!(Pin::new(moved).poll(cx));
                this.state = State::Done;
                Poll::Ready(output)
            }
            // Polled again after it finished: nothing more will come.
            State::Here { .. } | State::Done => Poll::Pending,
        }
    }
}

thread_local! {
    /// Set while an in-place guest is polled, when an epoch tick interrupted it.
    static EPOCH_YIELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the guest being polled on this thread was interrupted by an epoch tick while it
/// computed and is yielding: it is busy. Called by the stores' epoch callback.
pub fn epoch_yield() {
    EPOCH_YIELD.set(true);
}

/// The guest threads' runtime and the [`Gate`] every guest on it passes.
#[derive(Clone)]
struct Threads {
    handle: tokio::runtime::Handle,
    gate: Arc<Gate>,
}

impl Threads {
    /// Runs `task` on the guest threads, its first turn taken as `turn`.
    fn spawn<T: Send + 'static>(
        &self,
        task: Pin<Box<dyn Future<Output = T> + Send>>,
        turn: Turn,
    ) -> AbortOnDrop<T> {
        AbortOnDrop(self.handle.spawn(Gated {
            task,
            gate: self.gate.clone(),
            turn,
            holds: Holds::Nothing,
        }))
    }
}

/// Why a guest on the guest threads asks for a turn to be polled.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Turn {
    /// It has not run yet.
    Fresh,
    /// An epoch tick interrupted it: it computes, and may compute for long.
    Ticked,
    /// What it waited for (its client taking a body chunk, an outbound reply) came: it has
    /// started, and a short run may finish it.
    Woken,
}

/// Hands out turns on the guest threads: at most one guest per thread is runnable at a time,
/// the others wait here, outside tokio's run queue. That queue is first-in first-out and would
/// put a guest woken because its client took the last body chunk behind every guest that has
/// not started yet — under load the half-finished requests would each wait for the whole
/// crowd twice. Woken guests get the next turn; fresh and ticked guests take theirs in order of
/// arrival, so a long computation shares the threads with new requests instead of starving them.
struct Gate {
    state: Mutex<GateState>,
}

struct GateState {
    /// Turns nobody holds.
    free: usize,
    /// Guests waiting for a turn: woken ones, then the rest in order of arrival.
    woken: VecDeque<Waiter>,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    /// Set (under the gate's lock) when the turn is handed to this guest.
    granted: Arc<AtomicBool>,
    waker: std::task::Waker,
}

/// What a gated guest holds.
enum Holds {
    Nothing,
    /// A place in one of the gate's queues.
    Place(Arc<AtomicBool>),
    /// A turn: it may be polled.
    Turn,
}

impl Gate {
    fn new(turns: usize) -> Self {
        Self {
            state: Mutex::new(GateState {
                free: turns,
                woken: Default::default(),
                waiting: Default::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The lock guards plain bookkeeping that no panic leaves half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a turn at once if one is free and nobody with a claim before `turn` waits;
    /// otherwise queues `cx`'s task and returns its place.
    fn take(&self, turn: Turn, cx: &Context<'_>) -> Holds {
        let mut state = self.lock();
        let ahead = match turn {
            Turn::Woken => state.woken.len(),
            Turn::Fresh | Turn::Ticked => state.woken.len() + state.waiting.len(),
        };
        if state.free > 0 && ahead == 0 {
            state.free -= 1;
            return Holds::Turn;
        }
        let granted = Arc::new(AtomicBool::new(false));
        let waiter = Waiter {
            granted: granted.clone(),
            waker: cx.waker().clone(),
        };
        match turn {
            Turn::Woken => state.woken.push_back(waiter),
            Turn::Fresh | Turn::Ticked => state.waiting.push_back(waiter),
        }
        Holds::Place(granted)
    }

    /// Whether the turn was handed to the holder of `place`; if not, its task is the one to
    /// wake when it is.
    fn granted(&self, place: &Arc<AtomicBool>, cx: &Context<'_>) -> bool {
        let mut state = self.lock();
        if place.load(Ordering::Relaxed) {
            return true;
        }
        let GateState { woken, waiting, .. } = &mut *state;
        if let Some(waiter) = woken
            .iter_mut()
            .chain(waiting.iter_mut())
            .find(|w| Arc::ptr_eq(&w.granted, place))
        {
            waiter.waker.clone_from(cx.waker());
        }
        false
    }

    /// Gives a turn back: to the first waiter, or to the free ones.
    fn give_back(&self) {
        let next = {
            let mut state = self.lock();
            match state
                .woken
                .pop_front()
                .or_else(|| state.waiting.pop_front())
            {
                Some(next) => {
                    next.granted.store(true, Ordering::Relaxed);
                    Some(next.waker)
                }
                None => {
                    state.free += 1;
                    None
                }
            }
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }

    /// Leaves the queue (a guest dropped while it waited), passing on a turn handed to it
    /// meanwhile.
    fn leave(&self, place: &Arc<AtomicBool>) {
        let handed = {
            let mut state = self.lock();
            let handed = place.load(Ordering::Relaxed);
            if !handed {
                state.woken.retain(|w| !Arc::ptr_eq(&w.granted, place));
                state.waiting.retain(|w| !Arc::ptr_eq(&w.granted, place));
            }
            handed
        };
        if handed {
            self.give_back();
        }
    }
}

/// A guest on the guest threads: polled only while it holds a turn of the [`Gate`], which it
/// gives back whenever it stops (finished, interrupted by a tick, or waiting).
struct Gated<T> {
    task: Pin<Box<dyn Future<Output = T> + Send>>,
    gate: Arc<Gate>,
    /// How it asks for its next turn.
    turn: Turn,
    holds: Holds,
}

impl<T> Future for Gated<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        match &this.holds {
            Holds::Nothing => this.holds = this.gate.take(this.turn, cx),
            Holds::Place(place) if this.gate.granted(place, cx) => this.holds = Holds::Turn,
            Holds::Place(_) | Holds::Turn => {}
        }
        if !matches!(this.holds, Holds::Turn) {
            return Poll::Pending;
        }
        EPOCH_YIELD.set(false);
        let poll = this.task.as_mut().poll(cx);
        this.turn = if EPOCH_YIELD.replace(false) {
            Turn::Ticked
        } else {
            Turn::Woken
        };
        this.holds = Holds::Nothing;
        this.gate.give_back();
        poll
    }
}

impl<T> Drop for Gated<T> {
    fn drop(&mut self) {
        match &self.holds {
            Holds::Nothing => {}
            Holds::Place(place) => self.gate.leave(place),
            // Only if its poll panicked.
            Holds::Turn => self.gate.give_back(),
        }
    }
}

/// Counts a guest as computing on a caller's thread until dropped.
struct InlineSlot(Arc<Inline>);

impl Drop for InlineSlot {
    fn drop(&mut self) {
        self.0.computing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A task on the guest threads that is aborted when its [`Guest`] is dropped (a deadline drops
/// it).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_for(d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// The guest's output; a guest that hangs fails the test instead of hanging it.
    async fn finish<T: Send + 'static>(guest: Guest<T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), guest)
            .await
            .expect("the guest finished within 5 s")
            .unwrap()
    }

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_guest_runs_on_the_callers_runtime_and_a_busy_one_moves() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();

        let caller = thread_name();
        let short = guests.start(&placement, async { thread_name() });
        assert!(!short.is_moved());
        assert_eq!(
            finish(short).await,
            caller,
            "polled in place, on the caller's thread"
        );

        // A guest that happened to run across one epoch tick stays.
        let ticked = guests.start(&placement, async {
            epoch_yield();
            tokio::task::yield_now().await;
            thread_name()
        });
        assert_eq!(finish(ticked).await, caller);

        // Interrupted by a second tick: the rest runs on a guest thread.
        let busy = guests.start(&placement, async {
            epoch_yield();
            tokio::task::yield_now().await;
            assert_ne!(thread_name(), "boson-guest", "one tick is not busy");
            epoch_yield();
            tokio::task::yield_now().await;
            thread_name()
        });
        assert_eq!(finish(busy).await, "boson-guest");

        // The component is now known to be busy: its next guest starts on the guest threads.
        let next = guests.start(&placement, async { thread_name() });
        assert!(next.is_moved());
        assert_eq!(finish(next).await, "boson-guest");

        // A long poll that then waits for I/O, with no epoch tick, is not busy: the thread may
        // just have been paused by the OS.
        let slow = guests.start(&Placement::default(), async {
            busy_for(Duration::from_millis(3));
            tokio::time::sleep(Duration::from_millis(1)).await;
            thread_name()
        });
        assert_eq!(finish(slow).await, caller);

        // Another component is not affected.
        let other = guests.start(&Placement::default(), async { thread_name() });
        assert!(!other.is_moved());
        finish(other).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guests_that_wait_stay_on_callers_threads_however_many() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();
        let (release, wait) = tokio::sync::watch::channel(false);
        let caller = thread_name();
        let mut waiting = Vec::new();
        for _ in 0..guests.inline.max + 3 {
            let mut wait = wait.clone();
            // Started and polled, as a request does: it waits, and gives its place up.
            let mut guest = guests.start(&placement, async move {
                let _ = wait.wait_for(|go| *go).await;
                thread_name()
            });
            assert!(futures::poll!(&mut guest).is_pending());
            waiting.push(guest);
        }
        assert!(waiting.iter().all(|guest| !guest.is_moved()));
        assert_eq!(guests.inline.computing.load(Ordering::Relaxed), 0);
        release.send(true).unwrap();
        for guest in waiting {
            assert_eq!(finish(guest).await, caller);
        }
        assert_eq!(guests.inline.computing.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guest_woken_while_every_place_computes_moves() {
        let guests = GuestThreads::new().unwrap();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let mut guest = guests.start(&Placement::default(), async move {
            let _ = wait.await;
            thread_name()
        });
        assert!(futures::poll!(&mut guest).is_pending());
        assert!(!guest.is_moved());
        // As many guests as cores compute on callers' threads (their places taken here).
        let taken: Vec<_> = (0..guests.inline.max)
            .map(|_| guests.inline.enter().expect("a free place"))
            .collect();
        assert!(guests.inline.enter().is_none());
        go.send(()).unwrap();
        assert_eq!(finish(guest).await, "boson-guest");
        drop(taken);
        assert_eq!(guests.inline.computing.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_one_guest_per_core_computes_on_callers_threads() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();
        // Guests interrupted by a tick while computing keep their place.
        let mut computing: Vec<_> = (0..guests.inline.max + 2)
            .map(|_| {
                guests.start(&placement, async {
                    epoch_yield();
                    tokio::task::yield_now().await;
                })
            })
            .collect();
        for guest in &mut computing {
            let _ = futures::poll!(&mut *guest);
        }
        let inline = computing.iter().filter(|t| !t.is_moved()).count();
        assert_eq!(inline, guests.inline.max);
        assert_eq!(
            guests.inline.computing.load(Ordering::Relaxed),
            guests.inline.max,
            "a guest interrupted while computing keeps its place"
        );
        for guest in computing {
            finish(guest).await;
        }
        assert_eq!(guests.inline.computing.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_detached_guest_runs_to_its_end() {
        let guests = GuestThreads::new().unwrap();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let guest = guests.start(&Placement::default(), async move {
            let _ = go_rx.await;
            let _ = done_tx.send(());
        });
        guest.detach();
        assert_eq!(
            guests.inline.computing.load(Ordering::Relaxed),
            0,
            "a detached guest no longer counts against callers' threads"
        );
        go_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .expect("the detached guest finished")
            .unwrap();
        let inline = guests.inline.clone();
        tokio::time::timeout(Duration::from_secs(5), async move {
            while inline.computing.load(Ordering::Relaxed) != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("its slot on the caller's threads was given back");
    }

    fn place(holds: Holds) -> Arc<AtomicBool> {
        match holds {
            Holds::Place(place) => place,
            Holds::Nothing | Holds::Turn => panic!("expected a place in the queue"),
        }
    }

    #[test]
    fn the_gate_hands_turns_to_woken_guests_first_then_in_order_of_arrival() {
        let gate = Gate::new(1);
        let cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(gate.take(Turn::Fresh, &cx), Holds::Turn));
        let fresh = place(gate.take(Turn::Fresh, &cx));
        let ticked = place(gate.take(Turn::Ticked, &cx));
        let woken = place(gate.take(Turn::Woken, &cx));
        let left = place(gate.take(Turn::Fresh, &cx));
        let last = place(gate.take(Turn::Fresh, &cx));
        gate.leave(&left);

        gate.give_back();
        assert!(gate.granted(&woken, &cx), "a woken guest goes first");
        assert!(!gate.granted(&fresh, &cx) && !gate.granted(&ticked, &cx));
        gate.give_back();
        assert!(gate.granted(&fresh, &cx), "then the one that came first");
        assert!(!gate.granted(&ticked, &cx));
        gate.give_back();
        assert!(gate.granted(&ticked, &cx));
        // A guest dropped after its turn was handed to it passes the turn on.
        gate.leave(&ticked);
        assert!(
            gate.granted(&last, &cx),
            "the guest that left is skipped, the next one served"
        );
        gate.give_back();
        assert_eq!(gate.lock().free, 1, "every turn is back");
        assert!(matches!(gate.take(Turn::Woken, &cx), Holds::Turn));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crowd_of_moved_guests_all_finish_and_give_every_turn_back() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();
        placement.busy_until_ms.store(u64::MAX, Ordering::Relaxed);
        let crowd: Vec<_> = (0..200u32)
            .map(|i| {
                guests.start(&placement, async move {
                    for round in 0..3 {
                        if (i + round) % 2 == 0 {
                            epoch_yield();
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    i
                })
            })
            .collect();
        // A second crowd that never ends is dropped, queued or not.
        let dropped: Vec<_> = (0..100)
            .map(|_| guests.start(&placement, std::future::pending::<()>()))
            .collect();
        for (i, guest) in crowd.into_iter().enumerate() {
            assert!(guest.is_moved());
            assert_eq!(finish(guest).await, i as u32);
        }
        drop(dropped);
        let gate = guests.threads.gate.clone();
        tokio::time::timeout(Duration::from_secs(5), async move {
            let settled = || {
                let state = gate.lock();
                state.free == guests.inline.max && state.waiting.is_empty()
            };
            while !settled() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("every turn was given back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_moved_guest_stops_it_on_the_guest_threads() {
        let guests = GuestThreads::new().unwrap();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        struct Signal(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Signal {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let signal = Signal(Some(dropped_tx));
        let (moved_tx, moved_rx) = tokio::sync::oneshot::channel::<()>();
        let mut task = guests.start(&Placement::default(), async move {
            let _signal = signal;
            let mut moved = Some(moved_tx);
            epoch_yield();
            tokio::task::yield_now().await;
            epoch_yield();
            loop {
                tokio::task::yield_now().await;
                if thread_name() == "boson-guest"
                    && let Some(tx) = moved.take()
                {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        // Awaited here until it has moved; then dropped.
        tokio::select! {
            _ = &mut task => panic!("the guest never ends"),
            moved = tokio::time::timeout(Duration::from_secs(5), moved_rx) => {
                moved.expect("the guest moved to the guest threads").unwrap();
            }
        }
        assert!(task.is_moved());
        drop(task);
        tokio::time::timeout(Duration::from_secs(5), dropped_rx)
            .await
            .expect("the guest was dropped")
            .unwrap();
    }
}
