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
//! Busy is counted in ticks, not told by a clock. A short guest may run across one tick, and on
//! a loaded machine the OS may pause its thread for milliseconds in the middle of a guest of a few
//! microseconds; under load either happened several times a second, and each would send the
//! whole component's requests across threads for a [`BUSY_WINDOW`]. Only a guest that computes
//! through more than one tick period is interrupted twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::{JoinError, JoinHandle};

/// A guest interrupted this many times by epoch ticks while it computed is busy.
pub const BUSY_TICKS: u32 = 2;

/// After a guest of a component proved busy, the component's guests start on the guest threads
/// for this long.
pub const BUSY_WINDOW: Duration = Duration::from_secs(1);

/// The guest threads, and how many guests run on callers' threads now.
pub struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Guests started on a caller's thread that have not answered, finished or moved yet.
    inline: Arc<AtomicUsize>,
    /// At most this many of them at once (one per core): a burst of requests to a component not
    /// yet known to be busy cannot take every connection thread.
    max_inline: usize,
    /// The clock [`Placement`] counts in.
    started: Instant,
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
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            inline: Default::default(),
            max_inline: threads,
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
        let state = if !busy && self.enter_inline() {
            State::Here {
                task: Box::pin(task),
                ticks: 0,
                slot: Some(InlineSlot(self.inline.clone())),
                placement: placement.clone(),
                guests: self.handle.clone(),
                started: self.started,
            }
        } else {
            State::Moved(AbortOnDrop(self.handle.spawn(task)))
        };
        Guest { state }
    }

    fn enter_inline(&self) -> bool {
        self.inline
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max_inline).then_some(n + 1)
            })
            .is_ok()
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
        /// Held until the guest answers (is detached), finishes or moves.
        slot: Option<InlineSlot>,
        placement: Placement,
        guests: tokio::runtime::Handle,
        started: Instant,
    },
    /// A task on the guest threads.
    Moved(AbortOnDrop<T>),
    /// Its output was taken.
    Done,
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
            *slot = None;
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
                placement,
                guests,
                started,
            } = std::mem::replace(&mut this.state, State::Done)
        {
            EPOCH_YIELD.set(false);
            let poll = task.as_mut().poll(cx);
            ticks += u32::from(EPOCH_YIELD.replace(false));
            let busy = ticks >= BUSY_TICKS;
            match poll {
                Poll::Ready(output) => return Poll::Ready(Ok(output)),
                Poll::Pending if !busy => {
                    this.state = State::Here {
                        task,
                        ticks,
                        slot,
                        placement,
                        guests,
                        started,
                    };
                    return Poll::Pending;
                }
                Poll::Pending => {
                    // Proved busy: the rest runs on the guest threads, and so do the
                    // component's next guests for a while.
                    let until = ms_since(started) + BUSY_WINDOW.as_millis() as u64;
                    placement.busy_until_ms.store(until, Ordering::Relaxed);
                    this.state = State::Moved(AbortOnDrop(guests.spawn(task)));
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

/// Counts a guest as running on a caller's thread until dropped.
struct InlineSlot(Arc<AtomicUsize>);

impl Drop for InlineSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
    async fn at_most_one_guest_per_core_waits_on_callers_threads() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();
        let (release, wait) = tokio::sync::watch::channel(false);
        let waiting: Vec<_> = (0..guests.max_inline + 3)
            .map(|_| {
                let mut wait = wait.clone();
                guests.start(&placement, async move {
                    let _ = wait.wait_for(|go| *go).await;
                })
            })
            .collect();
        let inline = waiting.iter().filter(|t| !t.is_moved()).count();
        assert_eq!(inline, guests.max_inline);
        release.send(true).unwrap();
        for task in waiting {
            finish(task).await;
        }
        assert_eq!(guests.inline.load(Ordering::Relaxed), 0);
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
            guests.inline.load(Ordering::Relaxed),
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
            while inline.load(Ordering::Relaxed) != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("its slot on the caller's threads was given back");
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
