//! Where guests run. A guest starts on the thread that asked for it (the connection's or the
//! trigger's runtime), which for a short request saves two thread hand-offs: on an idle machine
//! that is most of a hello world's cost. A guest that proves busy — it has run for more than
//! [`BUSY`] when it yields — moves to the guest threads, a second tokio runtime, and its
//! component's next guests start there for [`BUSY_WINDOW`]: a crowd of busy guests, each
//! yielding only every epoch tick, then delays only other guests, while connections, timers,
//! a deadline's 504 and the host's own endpoints go on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::{JoinError, JoinHandle};

/// A guest that has run this long when it yields leaves the caller's thread.
pub const BUSY: Duration = Duration::from_millis(1);

/// After a guest of a component proved busy, the component's guests start on the guest threads
/// for this long.
pub const BUSY_WINDOW: Duration = Duration::from_secs(1);

/// The guest threads, and how many guests run on callers' threads now.
pub struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Guests started on a caller's thread and not finished or moved yet.
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

    /// Runs `task`, a guest of the component whose placement is `placement`: on the calling
    /// runtime while it stays short, else (or at once, when the component is known to be busy
    /// or enough guests already run on callers' threads) on the guest threads.
    pub fn spawn<F>(&self, placement: &Placement, task: F) -> GuestTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let busy = placement.busy_until_ms.load(Ordering::Relaxed) > ms_since(self.started);
        let here = match tokio::runtime::Handle::try_current() {
            Ok(here) if !busy && self.enter_inline() => here,
            _ => return GuestTask::Moved(self.handle.spawn(task)),
        };
        let inline = InlineSlot(self.inline.clone());
        let guests = self.handle.clone();
        let placement = placement.clone();
        let started = self.started;
        GuestTask::Inline(here.spawn(async move {
            let mut task = Box::pin(task);
            let mut ran = Duration::ZERO;
            let finished = std::future::poll_fn(|cx| {
                let start = Instant::now();
                let poll = task.as_mut().poll(cx);
                ran += start.elapsed();
                match poll {
                    Poll::Ready(output) => Poll::Ready(Some(output)),
                    Poll::Pending if ran >= BUSY => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if ran >= BUSY {
                let until = ms_since(started) + BUSY_WINDOW.as_millis() as u64;
                placement.busy_until_ms.store(until, Ordering::Relaxed);
            }
            drop(inline);
            match finished {
                Some(output) => Ok(output),
                None => AbortOnDrop(guests.spawn(task)).await,
            }
        }))
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

/// A guest started by [`GuestThreads::spawn`]; await it for its output, or abort it.
pub enum GuestTask<T> {
    /// Running on the guest threads from the start.
    Moved(JoinHandle<T>),
    /// Started on the caller's runtime; it awaits the guest threads' task if it moved there.
    Inline(JoinHandle<Result<T, JoinError>>),
}

impl<T> GuestTask<T> {
    /// Stops the guest wherever it runs (a moved guest's task is aborted with its caller's).
    pub fn abort(&self) {
        match self {
            GuestTask::Moved(handle) => handle.abort(),
            GuestTask::Inline(handle) => handle.abort(),
        }
    }
}

impl<T> Future for GuestTask<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            GuestTask::Moved(handle) => Pin::new(handle).poll(cx),
            GuestTask::Inline(handle) => Pin::new(handle).poll(cx).map(|r| r.and_then(|r| r)),
        }
    }
}

/// Counts a guest as running on a caller's thread until dropped.
struct InlineSlot(Arc<AtomicUsize>);

impl Drop for InlineSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A task on the guest threads that is aborted when its awaiting caller is dropped (a deadline
/// aborts the caller's task).
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

        let short = guests.spawn(&placement, async { thread_name() });
        assert!(matches!(short, GuestTask::Inline(_)));
        assert_ne!(short.await.unwrap(), "boson-guest");

        // Busy past BUSY, then yielding: the rest runs on a guest thread.
        let busy = guests.spawn(&placement, async {
            busy_for(BUSY * 3);
            tokio::task::yield_now().await;
            thread_name()
        });
        assert_eq!(busy.await.unwrap(), "boson-guest");

        // The component is now known to be busy: its next guest starts on the guest threads.
        let next = guests.spawn(&placement, async { thread_name() });
        assert!(matches!(next, GuestTask::Moved(_)));
        assert_eq!(next.await.unwrap(), "boson-guest");

        // Another component is not affected.
        let other = guests.spawn(&Placement::default(), async { thread_name() });
        assert!(matches!(other, GuestTask::Inline(_)));
        other.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_one_guest_per_core_waits_on_callers_threads() {
        let guests = GuestThreads::new().unwrap();
        let placement = Placement::default();
        let (release, wait) = tokio::sync::watch::channel(false);
        let waiting: Vec<_> = (0..guests.max_inline + 3)
            .map(|_| {
                let mut wait = wait.clone();
                guests.spawn(&placement, async move {
                    let _ = wait.wait_for(|go| *go).await;
                })
            })
            .collect();
        let inline = waiting
            .iter()
            .filter(|t| matches!(t, GuestTask::Inline(_)))
            .count();
        assert_eq!(inline, guests.max_inline);
        release.send(true).unwrap();
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(guests.inline.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborting_a_moved_guest_stops_it_on_the_guest_threads() {
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
        let task = guests.spawn(&Placement::default(), async move {
            let _signal = signal;
            let mut moved = Some(moved_tx);
            busy_for(BUSY * 3);
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
        tokio::time::timeout(Duration::from_secs(5), moved_rx)
            .await
            .expect("the guest moved to the guest threads")
            .unwrap();
        task.abort();
        tokio::time::timeout(Duration::from_secs(5), dropped_rx)
            .await
            .expect("the guest was dropped")
            .unwrap();
    }
}
