//! Host capabilities beyond WASI: each module here is one capability with the same three
//! parts — its section of the runtime config (resolved before the runtime starts), the host
//! implementation of its WIT interfaces (on [`HostState`]), and its linker registration below.
//!
//! The WIT is Boson's own, in `crates/boson/wit/` and `crates/boson/wit-p3/`, with Spin's
//! package, interface and type names so that components built with the Spin SDKs link unchanged.

pub mod key_value;
pub mod mqtt;
pub mod rdbms;
pub mod redis;
pub mod sqlite;
pub mod variables;

use wasmtime::component::{HasSelf, Linker};

use crate::host::HostState;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "boson:platform/capabilities",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::capability::key_value::StoreHandle,
            "wasi:keyvalue/store.bucket": crate::capability::key_value::StoreHandle,
            "wasi:keyvalue/atomics.cas": crate::capability::key_value::CasHandle,
            "fermyon:spin/sqlite.connection": crate::capability::sqlite::ConnectionHandle,
            "fermyon:spin/redis.connection": crate::capability::redis::ConnectionHandle,
            "fermyon:spin/mqtt.connection": crate::capability::mqtt::ConnectionHandle,
            "fermyon:spin/postgres.connection": crate::capability::rdbms::PgHandle,
            "fermyon:spin/mysql.connection": crate::capability::rdbms::MysqlHandle,
            "spin:postgres/postgres.connection": crate::capability::rdbms::PgHandle,
        },
    });
}

/// Spin's asynchronous 3.x interfaces (spin-sdk 5), generated from `crates/boson/wit-p3/`.
pub(crate) mod bindings_p3 {
    wasmtime::component::bindgen!({
        path: "wit-p3",
        world: "boson:platform-p3/capabilities",
        // 4.2.0's synchronous PostgreSQL calls wait for the network: async on the host, still
        // blocking for the guest.
        imports: {
            default: trappable,
            "spin:postgres/postgres.[static]connection.open": async | trappable,
            "spin:postgres/postgres.[method]connection.query": async | trappable,
            "spin:postgres/postgres.[method]connection.execute": async | trappable,
            "spin:postgres/postgres.[method]connection-builder.build": async | trappable,
        },
        with: {
            "spin:key-value/key-value.store": crate::capability::key_value::StoreHandle,
            "spin:redis/redis.connection": crate::capability::redis::ConnectionHandle,
            "spin:mqtt/mqtt.connection": crate::capability::mqtt::ConnectionHandle,
            "spin:sqlite/sqlite.connection": crate::capability::sqlite::ConnectionHandle,
            "spin:mysql/mysql.connection": crate::capability::rdbms::MysqlHandle,
            "spin:postgres/postgres.connection": crate::capability::rdbms::PgHandle,
            "spin:postgres/postgres.connection-builder": crate::capability::rdbms::PgBuilderHandle,
        },
    });
}

/// The `HasData` marker for the 3.x interfaces: their async functions reach [`HostState`]
/// through an `Accessor`.
pub struct SpinP3;

impl wasmtime::component::HasData for SpinP3 {
    type Data<'a> = &'a mut HostState;
}

/// Runs `f` on the instance's [`HostState`] from an asynchronous (3.x) host function. Never
/// hold the state across an await: take what is needed out, await, then come back.
pub(crate) fn with_state<U, R>(
    accessor: &wasmtime::component::Accessor<U, SpinP3>,
    f: impl FnOnce(&mut HostState) -> R,
) -> R {
    accessor.with(|mut access| f(access.get()))
}

/// Interfaces the capabilities provide, by exact import name (for start-up import checks).
pub const PROVIDED_INTERFACES: [&str; 20] = [
    "spin:postgres/postgres@3.0.0",
    "spin:postgres/postgres@4.2.0",
    "spin:mysql/mysql@3.0.0",
    "spin:redis/redis@3.0.0",
    "spin:mqtt/mqtt@3.0.0",
    "spin:sqlite/sqlite@3.1.0",
    "spin:key-value/key-value@3.0.0",
    "spin:variables/variables@3.0.0",
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/mqtt@2.0.0",
    "fermyon:spin/rdbms-types@2.0.0",
    "fermyon:spin/postgres@2.0.0",
    "fermyon:spin/mysql@2.0.0",
    "fermyon:spin/redis@2.0.0",
    "fermyon:spin/sqlite@2.0.0",
    "fermyon:spin/variables@2.0.0",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
    "wasi:config/store@0.2.0-draft-2024-09-27",
];

/// Adds every synchronous capability interface to `linker`, and with `concurrent` (an engine
/// with the component model's concurrency) the asynchronous ones too.
pub fn add_to_linker(linker: &mut Linker<HostState>, concurrent: bool) -> anyhow::Result<()> {
    bindings::Capabilities::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    if concurrent {
        bindings_p3::Capabilities::add_to_linker::<HostState, SpinP3>(linker, |s| s)?;
    }
    Ok(())
}
