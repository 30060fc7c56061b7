//! Where the host's log lines go: to stderr, in batches, from a thread of their own. A thread
//! that logs (a request's line, on a connection thread) appends the line to a buffer of its own
//! and goes on; the writer thread, woken by the first line of a batch, lets lines gather for
//! [`BATCH_WINDOW`] and writes every thread's in one `write`. Written one by one, each line
//! cost a `write` to stderr under a lock all threads share: about half of what a request's log
//! line costs the server (docs/TUNING.md, session 13). Per-thread buffers matter: one buffer
//! shared by all threads under a mutex saved next to nothing.
//!
//! Nothing is dropped, and each thread's lines keep their order; lines of different threads
//! logged within one batch window are written thread by thread. A line waits at most a batch
//! window plus a write; [`LogGuard`] writes what is left when dropped, after which each line is
//! written by the thread that logs it; a thread with more than [`MAX_WAITING`] bytes waiting
//! (stderr slower than the lines come) writes them itself.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread lets lines gather after the first one of a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Bytes waiting in one thread's buffer beyond which that thread writes them itself.
const MAX_WAITING: usize = 1 << 20;

/// The log subscriber's side: where each line is appended.
pub struct LogWriter<W> {
    shared: Arc<Shared<W>>,
}

/// Keeps the writer thread; dropping it writes the lines still waiting and ends the thread.
pub struct LogGuard<W> {
    shared: Arc<Shared<W>>,
    thread: Option<JoinHandle<()>>,
}

/// One thread's lines not written yet.
type Lines = Arc<Mutex<Vec<u8>>>;

struct Shared<W> {
    /// Tells this writer's buffers apart in each thread's [`BUFFERS`].
    id: u64,
    /// Every thread's buffer; one whose thread ended is dropped once written.
    threads: Mutex<Vec<Lines>>,
    /// Set by the first line of a batch; cleared by the writer thread as it takes the batch.
    pending: AtomicBool,
    /// The guard was dropped: no writer thread any more.
    stopped: AtomicBool,
    /// The writer thread waits here while neither `pending` nor `stopped` is set; whoever sets
    /// one takes the lock before telling it, so the news cannot fall between its check and
    /// its wait.
    idle: Mutex<()>,
    wake: Condvar,
    /// The destination. Whoever writes takes it before taking lines, so batches go out in the
    /// order they were taken.
    out: Mutex<W>,
}

thread_local! {
    /// This thread's buffer for each writer it logged through (one in the server).
    static BUFFERS: RefCell<Vec<(u64, Lines)>> = const { RefCell::new(Vec::new()) };
}

/// The stderr writer [`stderr`] started, for [`write_stderr_now`].
static STDERR: std::sync::OnceLock<Arc<Shared<io::Stderr>>> = std::sync::OnceLock::new();

/// Lines written to stderr in batches by a thread named `boson-log`.
pub fn stderr() -> io::Result<(LogWriter<io::Stderr>, LogGuard<io::Stderr>)> {
    let (writer, guard) = start(io::stderr())?;
    let _ = STDERR.set(writer.shared.clone());
    Ok((writer, guard))
}

/// Writes the log lines waiting now, for a process about to exit without dropping its guard.
pub fn write_stderr_now() {
    if let Some(shared) = STDERR.get() {
        shared.write_all_threads();
    }
}

/// Lines written to `out` in batches by a thread of their own.
pub fn start<W: Write + Send + 'static>(out: W) -> io::Result<(LogWriter<W>, LogGuard<W>)> {
    static IDS: AtomicU64 = AtomicU64::new(0);
    let shared = Arc::new(Shared {
        id: IDS.fetch_add(1, Ordering::Relaxed),
        threads: Mutex::default(),
        pending: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        idle: Mutex::new(()),
        wake: Condvar::new(),
        out: Mutex::new(out),
    });
    let thread = std::thread::Builder::new()
        .name("boson-log".into())
        .spawn({
            let shared = shared.clone();
            move || shared.write_batches()
        })?;
    Ok((
        LogWriter {
            shared: shared.clone(),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// A poisoned lock only means a thread panicked while holding it; the bytes are still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W> Shared<W> {
    /// Wakes the writer thread after `pending` or `stopped` was set.
    fn tell_writer(&self) {
        drop(lock(&self.idle));
        self.wake.notify_one();
    }
}

impl<W: Write> Shared<W> {
    /// The writer thread: sleeps until a line arrives, lets the batch gather, writes it.
    fn write_batches(&self) {
        loop {
            let mut idle = lock(&self.idle);
            while !self.pending.load(Ordering::Acquire) && !self.stopped.load(Ordering::Acquire) {
                idle = self.wake.wait(idle).unwrap_or_else(PoisonError::into_inner);
            }
            drop(idle);
            let stopped = self.stopped.load(Ordering::Acquire);
            if !stopped {
                std::thread::sleep(BATCH_WINDOW);
            }
            // Cleared before the batch is taken: a line that comes after wakes the thread again.
            self.pending.store(false, Ordering::Release);
            self.write_all_threads();
            if stopped {
                return;
            }
        }
    }

    /// Writes every thread's waiting lines, and forgets the buffers of threads that ended.
    /// An error (stderr closed) has nowhere to be reported.
    fn write_all_threads(&self) {
        let mut out = lock(&self.out);
        let mut batch = Vec::new();
        lock(&self.threads).retain(|lines| {
            batch.append(&mut lock(lines));
            Arc::strong_count(lines) > 1
        });
        if !batch.is_empty() {
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }

    /// Writes this thread's waiting lines.
    fn write_own(&self, lines: &Lines) {
        let mut out = lock(&self.out);
        let own = std::mem::take(&mut *lock(lines));
        let _ = out.write_all(&own);
        let _ = out.flush();
    }

    /// Appends one line to this thread's buffer; wakes the writer thread for the first line of
    /// a batch, or writes the thread's lines here when too much waits or no writer thread is
    /// left.
    fn append(&self, line: &[u8]) {
        // Whether this thread wrote its lines itself; an error if its buffer is gone.
        let written_here = BUFFERS.try_with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            let at = match buffers.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    // Buffers of writers that are gone (their tests ended) go with them.
                    buffers.retain(|(_, lines)| Arc::strong_count(lines) > 1);
                    let lines = Lines::default();
                    lock(&self.threads).push(lines.clone());
                    buffers.push((self.id, lines));
                    buffers.len() - 1
                }
            };
            let lines = &buffers[at].1;
            let waiting = {
                let mut waiting = lock(lines);
                waiting.extend_from_slice(line);
                waiting.len()
            };
            let write_here = self.stopped.load(Ordering::Acquire) || waiting > MAX_WAITING;
            if write_here {
                self.write_own(lines);
            }
            write_here
        });
        match written_here {
            // A thread that logs while it ends (a value dropped after its buffer) writes the
            // line itself.
            Err(_) => {
                let _ = lock(&self.out).write_all(line);
            }
            Ok(false)
                if !self.pending.load(Ordering::Relaxed)
                    && !self.pending.swap(true, Ordering::AcqRel) =>
            {
                self.tell_writer();
            }
            Ok(_) => {}
        }
    }
}

impl<W> Drop for LogGuard<W> {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.tell_writer();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One log line on its way: `tracing_subscriber::fmt` formats an event whole, then writes it.
pub struct Line<'a, W>(&'a Shared<W>);

impl<W: Write> Write for Line<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for LogWriter<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A destination that records each `write` call, and can hold the writer inside its first
    /// one until told to go on.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        first_write: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    }

    impl Recorder {
        /// A recorder whose first write waits for the returned sender.
        fn held() -> (Self, mpsc::Sender<()>) {
            let (go_on, held) = mpsc::channel();
            let recorder = Self::default();
            *lock(&recorder.first_write) = Some(held);
            (recorder, go_on)
        }

        fn text(&self) -> String {
            String::from_utf8(lock(&self.writes).concat()).unwrap()
        }
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let held = lock(&self.first_write).take();
            if let Some(go_on) = held {
                let _ = go_on.recv();
            }
            lock(&self.writes).push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(writer: &LogWriter<Recorder>, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    /// Waits until the writer thread took every waiting line (it is then held in its write).
    fn wait_until_taken(writer: &LogWriter<Recorder>) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&writer.shared.threads)
            .iter()
            .any(|lines| !lock(lines).is_empty())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the lines were never taken"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A writer whose thread took the line `first` and is held inside its write of it until
    /// told to go on.
    fn held_in_first_write() -> (
        Recorder,
        mpsc::Sender<()>,
        LogWriter<Recorder>,
        LogGuard<Recorder>,
    ) {
        let (recorder, go_on) = Recorder::held();
        let (writer, guard) = start(recorder.clone()).unwrap();
        log(&writer, "first\n");
        wait_until_taken(&writer);
        (recorder, go_on, writer, guard)
    }

    #[test]
    fn lines_of_several_threads_go_out_together_each_thread_in_order() {
        let (recorder, go_on, writer, guard) = held_in_first_write();
        std::thread::scope(|s| {
            for t in 0..3 {
                let writer = &writer;
                s.spawn(move || {
                    for i in 0..100 {
                        log(writer, &format!("thread {t} line {i}\n"));
                    }
                });
            }
        });
        go_on.send(()).unwrap();
        drop(guard);

        assert_eq!(
            lock(&recorder.writes).len(),
            2,
            "one write for the first line, one for the 300 that came while it was written"
        );
        let text = recorder.text();
        assert_eq!(text.lines().next(), Some("first"));
        for t in 0..3 {
            let own: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..100).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected);
        }

        // With the guard gone, a line is written by the thread that logs it.
        log(&writer, "late\n");
        assert_eq!(lock(&recorder.writes).last().unwrap(), b"late\n");
    }

    #[test]
    fn the_buffer_of_a_thread_that_ended_is_forgotten_once_written() {
        let recorder = Recorder::default();
        let (writer, guard) = start(recorder.clone()).unwrap();
        log(&writer, "a\n");
        std::thread::scope(|s| {
            // Joined explicitly: its buffer's last holder besides the writer, its thread-local,
            // is gone once the thread is.
            s.spawn(|| log(&writer, "b\n")).join().unwrap();
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            log(&writer, "c\n");
            if lock(&writer.shared.threads).len() == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the ended thread's buffer stayed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(guard);
        // Each thread's lines in its order; the two threads' within a batch in either order.
        let text = recorder.text();
        let count = |line: &str| text.lines().filter(|l| *l == line).count();
        assert_eq!((count("a"), count("b")), (1, 1), "{text}");
        assert!(
            count("c") >= 1 && text.lines().find(|l| *l != "b") == Some("a"),
            "{text}"
        );
    }

    #[test]
    fn a_line_past_the_limit_is_written_before_its_logging_thread_goes_on() {
        let (recorder, go_on, writer, guard) = held_in_first_write();
        // The writer thread is held: the line over the limit is written by its own thread,
        // which waits for the destination rather than letting its buffer grow.
        let big = format!("{}\n", "x".repeat(MAX_WAITING));
        let logging = std::thread::spawn({
            let shared = writer.shared.clone();
            let big = big.clone();
            move || shared.append(big.as_bytes())
        });
        go_on.send(()).unwrap();
        logging.join().unwrap();
        assert_eq!(
            *lock(&recorder.writes),
            [b"first\n".to_vec(), big.into_bytes()],
            "written by the time its logging thread went on"
        );
        drop(guard);
    }
}
