//! Instances built ahead of their request. Once a connection thread has written a response of
//! a `wasi:http/incoming-handler@0.2` component, it builds the next instance of that component
//! — a fresh store and instance, never called — and keeps it, one per thread. The next request
//! for the component on that thread takes it, its deadline started then, and skips the store's
//! setup and the instantiation: a third of a compiled hello's in-process cost, and of the
//! Python hello's, whose instantiation runs its start functions (docs/BENCHMARKS.md, "Where it
//! goes"). The work moves off a request's path into the moment its client reads the answer; a
//! saturated server does the same work as before.
//!
//! Every request still gets an instance no request used before: a ready instance is taken by
//! one request at most, and dropped unused if its component was replaced. The pool holds
//! slots for ready instances beyond admission's (`EngineOptions::ready_instances`), so they
//! never take a slot a running request needs.

use std::cell::RefCell;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::host::HostState;
use crate::runtime::{HandlerPre, LoadedComponent};

/// Ready instances an engine's pool holds slots for: one per connection thread (tokio's
/// workers, one per core).
pub fn per_process() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// A fresh instance of a component, built before its request.
struct Ready {
    component: Arc<LoadedComponent>,
    store: Store<HostState>,
    proxy: Proxy,
    _slot: ReadySlot,
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
    /// This thread's ready instance.
    static READY: RefCell<Option<Ready>> = const { RefCell::new(None) };
}

/// Takes this thread's ready instance if it is one of `component`, its deadline started now.
/// The caller holds the admission slot it runs under.
pub fn take(component: &Arc<LoadedComponent>) -> Option<(Store<HostState>, Proxy)> {
    let Ready {
        mut store, proxy, ..
    } = READY
        .with_borrow_mut(|ready| ready.take_if(|ready| Arc::ptr_eq(&ready.component, component)))?;
    component.arm(&mut store);
    Some((store, proxy))
}

/// After this thread answered a request with an instance of `component`: builds the next one,
/// unless the thread keeps one of another component that still serves. An instantiation that
/// fails or would wait (I/O, an epoch tick's yield) is given up; the request will instantiate
/// and report it.
pub fn prepare(component: &Arc<LoadedComponent>) {
    let Some(HandlerPre::P2(pre)) = &component.http else {
        return;
    };
    // A replaced component's instance goes; only this thread still holds the component.
    let replaced = READY
        .with_borrow_mut(|ready| ready.take_if(|ready| Arc::strong_count(&ready.component) == 1));
    // Dropped outside the borrow: a store's drop runs host code.
    drop(replaced);
    if READY.with_borrow(Option::is_some) {
        return;
    }
    let Some(slot) = ReadySlot::take(&component.ready_slots) else {
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
            Poll::Ready(Ok(proxy)) => proxy,
            Poll::Ready(Err(_)) | Poll::Pending => return,
        }
    };
    READY.set(Some(Ready {
        component: component.clone(),
        store,
        proxy,
        _slot: slot,
    }));
}
