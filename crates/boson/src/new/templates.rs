//! The templates built into the binary: one [`Template`] per folder of `crates/boson/templates/`,
//! each file embedded with `include_str!`.
//!
//! A template folder holds the component's own files (source, build files, README, `gitignore`
//! written as `.gitignore`) and `component.toml`: its `[[trigger.*]]` and `[component.<id>]`
//! tables, build section included, which `boson new` puts under the `[application]` of
//! `templates/spin.toml` and `boson add` appends to an existing manifest. Text files may use the
//! placeholders listed in `super::Placeholders`.

/// The WASI 0.2 WIT packages (`WASI_0_2_12`, `WASI_0_2_10`), collected by `build.rs` from the
/// `wasmtime-wasi-http` crate.
mod wasi_wit {
    include!(concat!(env!("OUT_DIR"), "/wasi_wit.rs"));
}

/// What starts the component, as `boson new --list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Http,
    Redis,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Http => "http",
            TriggerKind::Redis => "redis",
        }
    }
}

/// Files a template needs that Boson writes from what it was built with, not from the template
/// folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wasi {
    /// `wit/deps/*.wit`: WASI 0.2.12, the version Boson's runtime implements, and
    /// `adapter/wasi_snapshot_preview1.proxy.wasm`, which turns a wasip1 core module into a
    /// `wasi:http` proxy component (C and Zig via `wit-bindgen c`).
    WitAndAdapter0_2_12,
    /// `wit/deps/*.wit` at WASI 0.2.10, the version componentize-js 0.23's engine exports.
    Wit0_2_10,
}

impl Wasi {
    /// `(path in the component's folder, contents)` of every file this writes.
    pub fn files(self) -> Vec<(String, &'static [u8])> {
        let (wit, adapter) = match self {
            Wasi::WitAndAdapter0_2_12 => (wasi_wit::WASI_0_2_12, true),
            Wasi::Wit0_2_10 => (wasi_wit::WASI_0_2_10, false),
        };
        let mut files: Vec<(String, &'static [u8])> = wit
            .iter()
            .map(|(name, text)| (format!("wit/deps/{name}"), text.as_bytes()))
            .collect();
        if adapter {
            files.push((
                "adapter/wasi_snapshot_preview1.proxy.wasm".into(),
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
            ));
        }
        files
    }
}

/// One built-in template.
#[derive(Debug)]
pub struct Template {
    /// What `boson new <id>` takes: `<trigger>-<language>`, as Spin names its templates.
    pub id: &'static str,
    /// One line for `boson new --list` and the new app's `description`.
    pub summary: &'static str,
    pub trigger: TriggerKind,
    /// `component.toml`: the trigger and component tables.
    pub component_toml: &'static str,
    /// `(path in the component's folder, contents)`; text, with placeholders.
    pub files: &'static [(&'static str, &'static str)],
    pub wasi: Option<Wasi>,
}

/// The application header of a new app's `spin.toml`.
pub const MANIFEST_HEAD: &str = include_str!("../../templates/spin.toml");

// One line per file: the table reads as the list of what each template writes.
#[rustfmt::skip]
pub static TEMPLATES: &[Template] = &[
    Template {
        id: "http-c",
        summary: "HTTP handler in C (wasi:http; wit-bindgen, clang, wasm-tools)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-c/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-c/README.md")),
            (".gitignore", include_str!("../../templates/http-c/gitignore")),
            ("src/handler.c", include_str!("../../templates/http-c/src/handler.c")),
            ("wit/world.wit", include_str!("../../templates/http-c/wit/world.wit")),
        ],
        wasi: Some(Wasi::WitAndAdapter0_2_12),
    },
    Template {
        id: "http-js",
        summary: "HTTP handler in JavaScript (fetch event; npm, esbuild, componentize-js)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-js/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-js/README.md")),
            (".gitignore", include_str!("../../templates/http-js/gitignore")),
            ("package.json", include_str!("../../templates/http-js/package.json")),
            ("src/index.js", include_str!("../../templates/http-js/src/index.js")),
            ("wit/world.wit", include_str!("../../templates/http-js/wit/world.wit")),
        ],
        wasi: Some(Wasi::Wit0_2_10),
    },
    Template {
        id: "http-python",
        summary: "HTTP handler in Python (Spin Python SDK 5; componentize-py)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-python/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-python/README.md")),
            (".gitignore", include_str!("../../templates/http-python/gitignore")),
            ("app.py", include_str!("../../templates/http-python/app.py")),
            ("requirements.txt", include_str!("../../templates/http-python/requirements.txt")),
        ],
        wasi: None,
    },
    Template {
        id: "http-rust",
        summary: "HTTP handler in Rust (wasi:http via the `wasi` crate; cargo, wasm32-wasip2)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-rust/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-rust/README.md")),
            (".gitignore", include_str!("../../templates/http-rust/gitignore")),
            ("Cargo.toml", include_str!("../../templates/http-rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../../templates/http-rust/src/lib.rs")),
        ],
        wasi: None,
    },
    Template {
        id: "http-ts",
        summary: "HTTP handler in TypeScript (fetch event; npm, tsc, esbuild, componentize-js)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-ts/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-ts/README.md")),
            (".gitignore", include_str!("../../templates/http-ts/gitignore")),
            ("package.json", include_str!("../../templates/http-ts/package.json")),
            ("tsconfig.json", include_str!("../../templates/http-ts/tsconfig.json")),
            ("src/index.ts", include_str!("../../templates/http-ts/src/index.ts")),
            ("src/fetch-event.d.ts", include_str!("../../templates/http-ts/src/fetch-event.d.ts")),
            ("wit/world.wit", include_str!("../../templates/http-ts/wit/world.wit")),
        ],
        wasi: Some(Wasi::Wit0_2_10),
    },
    Template {
        id: "http-zig",
        summary: "HTTP handler in Zig (wasi:http; wit-bindgen, zig, wasm-tools)",
        trigger: TriggerKind::Http,
        component_toml: include_str!("../../templates/http-zig/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/http-zig/README.md")),
            (".gitignore", include_str!("../../templates/http-zig/gitignore")),
            ("src/main.zig", include_str!("../../templates/http-zig/src/main.zig")),
            ("wit/world.wit", include_str!("../../templates/http-zig/wit/world.wit")),
        ],
        wasi: Some(Wasi::WitAndAdapter0_2_12),
    },
    Template {
        id: "redis-python",
        summary: "Redis message handler in Python (Spin Python SDK 5; componentize-py)",
        trigger: TriggerKind::Redis,
        component_toml: include_str!("../../templates/redis-python/component.toml"),
        files: &[
            ("README.md", include_str!("../../templates/redis-python/README.md")),
            (".gitignore", include_str!("../../templates/redis-python/gitignore")),
            ("app.py", include_str!("../../templates/redis-python/app.py")),
            ("requirements.txt", include_str!("../../templates/redis-python/requirements.txt")),
        ],
        wasi: None,
    },
];

/// The template called `id`.
pub fn find(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}
