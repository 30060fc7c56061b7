//! Key-value and variables, through real guests (Spin Python SDK and C), against embedded SQLite
//! and the real Redis on this machine.

use std::time::Duration;

use crate::harness::*;

fn kv_manifest(wasm: &std::path::Path) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "kv"
[variables]
greeting = {{ default = "hello" }}
token = {{ required = true, secret = true }}
unused = {{ default = "x" }}
[[trigger.http]]
route = "/..."
component = "guest"
[component.guest]
source = "{}"
key_value_stores = ["default", "cache"]
variables = {{ message = "{{{{ greeting }}}}, world", token = "{{{{ token }}}}" }}
"#,
        wasm.display()
    )
}

const REDIS_CACHE: &str =
    "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/14\"\n";

/// The kv app with extra `allowed_outbound_hosts` entries and the Redis `cache` store.
fn start_kv_app_granting(lang: &str, guest_name: &str, grants: &[&str]) -> (AppDir, Boson) {
    let list: Vec<String> = grants.iter().map(|g| format!("\"{g}\"")).collect();
    let manifest = kv_manifest(&guest(lang, guest_name)).replace(
        "key_value_stores = [\"default\", \"cache\"]",
        &format!(
            "key_value_stores = [\"default\", \"cache\"]\nallowed_outbound_hosts = [{}]",
            list.join(", ")
        ),
    );
    start_app(manifest, REDIS_CACHE)
}

fn start_kv_app(lang: &str, runtime_config: &str) -> (AppDir, Boson) {
    start_app(kv_manifest(&guest(lang, "kv")), runtime_config)
}

fn start_app(manifest: String, runtime_config: &str) -> (AppDir, Boson) {
    let app = AppDir::new(&manifest);
    app.write("runtime-config.toml", runtime_config);
    let rc = app.path().join("runtime-config.toml");
    let boson = Boson::start(
        app.path(),
        &[
            "--runtime-config-file",
            rc.to_str().unwrap(),
            "--variable",
            "token=s3cr3t-value",
        ],
    );
    (app, boson)
}

/// Every function of the key-value interface, on one label.
fn exercise_store(boson: &Boson, label: &str, lang: &str) {
    let key = unique("k");
    let put = |k: &str, v: &str| {
        request(
            boson.addr,
            "PUT",
            &format!("/kv/{label}/set/{k}"),
            &[],
            v.as_bytes(),
        )
    };
    assert_eq!(
        boson.get(&format!("/kv/{label}/get/{key}")).status,
        404,
        "{lang} {label}"
    );
    assert_eq!(
        boson.get(&format!("/kv/{label}/exists/{key}")).text(),
        "false",
        "{lang} {label}"
    );
    assert_eq!(put(&key, "first value").status, 200, "{lang} {label}");
    let r = boson.get(&format!("/kv/{label}/get/{key}"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "first value"),
        "{lang} {label}"
    );
    assert_eq!(put(&key, "second").status, 200);
    assert_eq!(
        boson.get(&format!("/kv/{label}/get/{key}")).text(),
        "second",
        "{lang} {label}"
    );
    assert_eq!(
        boson.get(&format!("/kv/{label}/exists/{key}")).text(),
        "true",
        "{lang} {label}"
    );
    let keys = boson.get(&format!("/kv/{label}/keys")).json();
    assert!(
        keys.as_array().unwrap().iter().any(|k| k == key.as_str()),
        "{lang} {label}: {keys}"
    );
    let r = request(
        boson.addr,
        "DELETE",
        &format!("/kv/{label}/delete/{key}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{lang} {label}");
    assert_eq!(
        boson.get(&format!("/kv/{label}/get/{key}")).status,
        404,
        "{lang} {label}"
    );
}

/// `guest_name` is `kv` (Spin SDK 3 / C, `fermyon:spin@2.0.0`) or `kv5` (Spin SDK 5,
/// `spin:key-value@3.0.0` and `spin:variables@3.0.0`).
fn key_value_and_variables(lang: &str, guest_name: &str) {
    let (_app, boson) = start_app(kv_manifest(&guest(lang, guest_name)), REDIS_CACHE);
    exercise_store(&boson, "default", lang);
    exercise_store(&boson, "cache", lang);

    // Labels not granted are denied, whether or not a backend exists.
    let r = boson.get("/kv/secret-store/get/x");
    assert_eq!(
        (r.status, r.text().trim()),
        (403, "access-denied"),
        "{lang}"
    );

    // Variables: the component's own, rendered from the app's.
    assert_eq!(boson.get("/var/message").text(), "hello, world", "{lang}");
    assert_eq!(boson.get("/var/token").text(), "s3cr3t-value", "{lang}");
    let r = boson.get("/var/unused");
    assert_eq!(
        (r.status, r.text().trim()),
        (404, "undefined"),
        "{lang}: app variables not listed by the component stay hidden"
    );
    assert_eq!(boson.get("/var/Not-A-Name").status, 400, "{lang}");
    assert!(
        !boson.stderr().contains("s3cr3t-value"),
        "{lang}: a secret reached the log"
    );
}

#[test]
fn python_spin_sdk_key_value_and_variables() {
    key_value_and_variables("python", "kv");
}

#[test]
fn python_spin_sdk_5_async_key_value_and_variables() {
    key_value_and_variables("python", "kv5");
}

#[test]
fn c_key_value_and_variables() {
    key_value_and_variables("c", "kv");
}

#[test]
fn c_wasi_keyvalue_atomics_batch_and_config() {
    let (_app, boson) = start_kv_app("c", REDIS_CACHE);
    assert_eq!(boson.get("/config/message").text(), "hello, world");
    assert_eq!(boson.get("/config/nope").status, 404);
    let all = boson.get("/config-all").json();
    assert_eq!(all["message"], "hello, world");

    for label in ["default", "cache"] {
        let k = unique("counter");
        let r = request(
            boson.addr,
            "POST",
            &format!("/atomic/{label}/incr/{k}?by=5"),
            &[],
            b"",
        );
        assert_eq!((r.status, r.text().trim()), (200, "5"), "{label}");
        let r = request(
            boson.addr,
            "POST",
            &format!("/atomic/{label}/incr/{k}?by=-2"),
            &[],
            b"",
        );
        assert_eq!(r.text().trim(), "3", "{label}");

        let (a, b) = (unique("a"), unique("b"));
        let body = format!("{a}=1&{b}=2");
        assert_eq!(
            request(
                boson.addr,
                "PUT",
                &format!("/batch/{label}"),
                &[],
                body.as_bytes()
            )
            .status,
            200
        );
        let got = boson
            .get(&format!(
                "/batch/{label}?keys={a},{b},{}",
                unique("missing")
            ))
            .json();
        assert_eq!(
            (got[&a].as_str(), got[&b].as_str()),
            (Some("1"), Some("2")),
            "{label}: {got}"
        );
        assert_eq!(got.as_object().unwrap().len(), 2, "{label}: {got}");
        let r = request(
            boson.addr,
            "DELETE",
            &format!("/batch/{label}?keys={a},{b}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            boson.get(&format!("/kv/{label}/exists/{a}")).text(),
            "false"
        );
    }
    let r = request(boson.addr, "POST", "/atomic/not-granted/incr/x", &[], b"");
    assert_eq!((r.status, r.text().trim()), (403, "access-denied"));
}

#[test]
fn the_same_guest_runs_on_sqlite_and_redis_by_runtime_config_alone() {
    for config in [
        "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n".to_string(),
        format!(
            "{REDIS_CACHE}[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/13\"\n"
        ),
    ] {
        let (_app, boson) = start_kv_app("python", &config);
        exercise_store(&boson, "default", "python");
        exercise_store(&boson, "cache", "python");
    }
}

#[test]
fn concurrent_increments_are_exact() {
    for label in ["default", "cache"] {
        let (_app, boson) = start_kv_app("c", REDIS_CACHE);
        let key = unique("hits");
        let addr = boson.addr;
        let threads: Vec<_> = (0..200)
            .map(|_| {
                let path = format!("/atomic/{label}/incr/{key}");
                std::thread::spawn(move || request(addr, "POST", &path, &[], b"").status)
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 200, "{label}");
        }
        assert_eq!(
            boson.get(&format!("/kv/{label}/get/{key}")).text(),
            "200",
            "{label}"
        );
    }
}

#[test]
fn start_fails_for_missing_backends_and_required_variables() {
    let app = AppDir::new(&kv_manifest(&guest("c", "kv")));
    let err = start_failure(app.path(), &["--variable", "token=x"]);
    assert!(
        err.contains("`cache`")
            && err.contains("`guest`")
            && err.contains("[key_value_store.cache]"),
        "{err}"
    );

    app.write("runtime-config.toml", REDIS_CACHE);
    let rc = app.path().join("runtime-config.toml");
    let err = start_failure(app.path(), &["--runtime-config-file", rc.to_str().unwrap()]);
    assert!(
        err.contains("`token` is required") && err.contains("BOSON_VARIABLE_TOKEN"),
        "{err}"
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    for round in 0..3 {
        let app = AppDir::new(&kv_manifest(&guest("c", "kv")));
        app.write("runtime-config.toml", REDIS_CACHE);
        let rc = app.path().join("runtime-config.toml");
        let args = [
            "--runtime-config-file",
            rc.to_str().unwrap(),
            "--variable",
            "token=x",
        ];
        let boson = Boson::start(app.path(), &args);
        let addr = boson.addr;
        let writer = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0..100_000 {
                let key = format!("key-{i}");
                let value = format!("value-{i}-{}", "x".repeat(i % 64));
                match std::panic::catch_unwind(|| {
                    request(
                        addr,
                        "PUT",
                        &format!("/kv/default/set/{key}"),
                        &[],
                        value.as_bytes(),
                    )
                }) {
                    Ok(r) if r.status == 200 => acknowledged.push((key, value)),
                    _ => break,
                }
            }
            acknowledged
        });
        // Kill at a moment that varies by round, while writes are in flight.
        std::thread::sleep(Duration::from_millis(300 + 170 * round));
        boson.signal(9);
        let acknowledged = writer.join().unwrap();
        drop(boson);
        assert!(
            !acknowledged.is_empty(),
            "round {round}: no write was acknowledged"
        );

        let db = app.path().join(".boson/key_value/default.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);

        let boson = Boson::start(app.path(), &args);
        for (key, value) in &acknowledged {
            let r = boson.get(&format!("/kv/default/get/{key}"));
            assert_eq!(
                (r.status, r.text()),
                (200, value.clone()),
                "round {round}: {key} lost"
            );
        }
    }
}

fn sql(boson: &Boson, label: &str, statement: &str, params: serde_json::Value) -> Response {
    let body = serde_json::json!({ "statement": statement, "params": params }).to_string();
    request(
        boson.addr,
        "POST",
        &format!("/sql/{label}"),
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn sqlite_round_trip(lang: &str, guest_name: &str) {
    let app = AppDir::new(&kv_manifest(&guest(lang, guest_name)).replace(
        "key_value_stores = [\"default\", \"cache\"]",
        "key_value_stores = [\"default\", \"cache\"]\nsqlite_databases = [\"default\", \"reports\"]",
    ));
    app.write(
        "runtime-config.toml",
        &format!(
            "{REDIS_CACHE}[sqlite_database.reports]\ntype = \"spin\"\npath = \"data/reports.db\"\n"
        ),
    );
    app.write(
        "seed.sql",
        "CREATE TABLE seeded (name TEXT); INSERT INTO seeded VALUES ('from-file');",
    );
    let rc = app.path().join("runtime-config.toml");
    let seed = format!("@{}", app.path().join("seed.sql").display());
    let boson = Boson::start(
        app.path(),
        &[
            "--runtime-config-file",
            rc.to_str().unwrap(),
            "--variable",
            "token=x",
            "--sqlite",
            "CREATE TABLE IF NOT EXISTS greetings (word TEXT)",
            "--sqlite",
            &seed,
            "--key-value",
            "seeded-key=seeded value",
        ],
    );
    assert_eq!(
        boson.get("/kv/default/get/seeded-key").text(),
        "seeded value",
        "{lang}"
    );
    let r = sql(
        &boson,
        "default",
        "SELECT name FROM seeded",
        serde_json::json!([]),
    );
    assert_eq!(
        r.json()["rows"],
        serde_json::json!([[{"text": "from-file"}]]),
        "{lang}"
    );

    for label in ["default", "reports"] {
        let r = sql(
            &boson,
            label,
            "CREATE TABLE IF NOT EXISTS t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
            serde_json::json!([]),
        );
        assert_eq!(r.status, 200, "{lang} {label}: {}", r.text());
        let params = serde_json::json!([
            {"integer": -9007199254740993i64}, {"real": 2.5}, {"text": "héllo \"quoted\""}, {"blob": "00ff10"}, {"null": true}
        ]);
        let r = sql(
            &boson,
            label,
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            params.clone(),
        );
        assert_eq!(r.status, 200, "{lang} {label}: {}", r.text());
        let r = sql(
            &boson,
            label,
            "SELECT i, r, s, b, n FROM t",
            serde_json::json!([]),
        );
        let result = r.json();
        assert_eq!(
            result["columns"],
            serde_json::json!(["i", "r", "s", "b", "n"]),
            "{lang} {label}"
        );
        assert_eq!(
            result["rows"],
            serde_json::json!([params]),
            "{lang} {label}"
        );
        let r = sql(&boson, label, "SELEC nonsense", serde_json::json!([]));
        assert_eq!(r.status, 400, "{lang} {label}");
        assert!(
            r.text().contains("syntax error"),
            "{lang} {label}: {}",
            r.text()
        );
    }
    assert!(app.path().join("data/reports.db").is_file());
    let r = sql(&boson, "elsewhere", "SELECT 1", serde_json::json!([]));
    assert_eq!(
        (r.status, r.text().trim()),
        (403, "access-denied"),
        "{lang}"
    );
}

#[test]
fn python_spin_sdk_sqlite() {
    sqlite_round_trip("python", "kv");
}

#[test]
fn python_spin_sdk_5_sqlite() {
    sqlite_round_trip("python", "kv5");
}

#[test]
fn c_sqlite() {
    sqlite_round_trip("c", "kv");
}

fn outbound_redis(lang: &str, guest_name: &str) {
    let (_app, boson) = start_kv_app_granting(
        lang,
        guest_name,
        &["redis://127.0.0.1:6379", "redis://*:6390"],
    );
    let addr = "redis%3A%2F%2F127.0.0.1%3A6379%2F12";
    let call = |method: &str, path: &str, body: &str| {
        request(
            boson.addr,
            method,
            &format!("{path}?addr={addr}"),
            &[],
            body.as_bytes(),
        )
    };
    let key = unique("rk");
    assert_eq!(
        call("GET", &format!("/redis/get/{key}"), "").status,
        404,
        "{lang}"
    );
    assert_eq!(
        call("PUT", &format!("/redis/set/{key}"), "stored").status,
        200,
        "{lang}"
    );
    assert_eq!(
        call("GET", &format!("/redis/get/{key}"), "").text(),
        "stored",
        "{lang}"
    );
    let n = unique("rn");
    assert_eq!(
        call("POST", &format!("/redis/incr/{n}"), "").text().trim(),
        "1",
        "{lang}"
    );
    assert_eq!(
        call("POST", &format!("/redis/incr/{n}"), "").text().trim(),
        "2",
        "{lang}"
    );
    assert_eq!(
        call("DELETE", &format!("/redis/del/{n}"), "").text().trim(),
        "1",
        "{lang}"
    );
    let set = unique("rs");
    assert_eq!(
        call("POST", &format!("/redis/sadd/{set}"), "a,b,c")
            .text()
            .trim(),
        "3",
        "{lang}"
    );
    assert_eq!(
        call("POST", &format!("/redis/srem/{set}"), "b")
            .text()
            .trim(),
        "1",
        "{lang}"
    );
    assert_eq!(
        call("GET", &format!("/redis/smembers/{set}"), "").json(),
        serde_json::json!(["a", "c"]),
        "{lang}"
    );
    let r = call(
        "POST",
        "/redis/execute",
        &serde_json::json!(["SET", key, "via-execute"]).to_string(),
    );
    assert_eq!(
        r.json(),
        serde_json::json!([{"status": "OK"}]),
        "{lang}: {}",
        r.text()
    );
    let r = call(
        "POST",
        "/redis/execute",
        &serde_json::json!(["GET", key]).to_string(),
    );
    assert_eq!(
        r.json(),
        serde_json::json!([{"binary": "via-execute"}]),
        "{lang}"
    );

    // Publish reaches a real subscriber.
    let channel = unique("chan");
    let client = redis::Client::open("redis://127.0.0.1:6379/12").unwrap();
    let mut sub = client.get_connection().unwrap();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe(&channel).unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        call(
            "POST",
            &format!("/redis/publish/{channel}"),
            "hello subscribers"
        )
        .status,
        200,
        "{lang}"
    );
    let msg = pubsub.get_message().unwrap();
    assert_eq!(
        msg.get_payload::<String>().unwrap(),
        "hello subscribers",
        "{lang}"
    );

    // Not granted, and a wildcard that does not name the loopback address: both denied.
    for denied in [
        "redis%3A%2F%2F127.0.0.1%3A6380",
        "redis%3A%2F%2Flocalhost%3A6390",
    ] {
        let r = request(
            boson.addr,
            "GET",
            &format!("/redis/get/x?addr={denied}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 500, "{lang}: {denied} was allowed: {}", r.text());
        assert!(r.text().contains("error: other"), "{lang}: {}", r.text());
    }
}

#[test]
fn python_spin_sdk_outbound_redis() {
    outbound_redis("python", "kv");
}

#[test]
fn python_spin_sdk_5_outbound_redis() {
    outbound_redis("python", "kv5");
}

#[test]
fn c_outbound_redis() {
    outbound_redis("c", "kv");
}

fn rdbms(lang: &str, guest_name: &str, kind: &str, addr: &str, grant: &str) {
    let (_app, boson) = start_kv_app_granting(lang, guest_name, &[grant]);
    let encoded: String = addr
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let call = |op: &str, statement: &str, params: serde_json::Value| {
        let body = serde_json::json!({ "statement": statement, "params": params }).to_string();
        request(
            boson.addr,
            "POST",
            &format!("/{kind}/{op}?addr={encoded}"),
            &[],
            body.as_bytes(),
        )
    };
    let table = unique("t").replace('-', "_");
    let r = call(
        "execute",
        &format!(
            "CREATE TABLE {table} (i INTEGER, b BIGINT, f DOUBLE PRECISION, s VARCHAR(100), bin {}, flag BOOLEAN)",
            if kind == "pg" {
                "BYTEA"
            } else {
                "VARBINARY(100)"
            }
        ),
        serde_json::json!([]),
    );
    assert_eq!(r.status, 200, "{lang} {kind}: {}", r.text());
    let placeholders = if kind == "pg" {
        "$1, $2, $3, $4, $5, $6"
    } else {
        "?, ?, ?, ?, ?, ?"
    };
    let r = call(
        "execute",
        &format!("INSERT INTO {table} VALUES ({placeholders})"),
        serde_json::json!([{"int32": -7}, {"int64": 9007199254740993i64}, {"floating64": 2.5}, {"str": "héllo"}, {"binary": "00ff"}, {"boolean": true}]),
    );
    assert_eq!(r.status, 200, "{lang} {kind}: {}", r.text());
    let r = call(
        "query",
        &format!("SELECT i, b, f, s, bin FROM {table}"),
        serde_json::json!([]),
    );
    assert_eq!(r.status, 200, "{lang} {kind}: {}", r.text());
    let rows = &r.json()["rows"];
    assert_eq!(
        rows,
        &serde_json::json!([[{"int32": -7}, {"int64": 9007199254740993i64}, {"floating64": 2.5}, {"str": "héllo"}, {"binary": "00ff"}]]),
        "{lang} {kind}"
    );
    let r = call(
        "query",
        "SELECT * FROM no_such_table_here",
        serde_json::json!([]),
    );
    assert_eq!(r.status, 400, "{lang} {kind}");
    assert!(
        r.text().contains("query-failed"),
        "{lang} {kind}: {}",
        r.text()
    );
    call(
        "execute",
        &format!("DROP TABLE {table}"),
        serde_json::json!([]),
    );

    // The same database under another port is not granted: refused before connecting.
    let other = encoded
        .replace("%3A5432", "%3A5433")
        .replace("%3A3306", "%3A3307");
    let r = request(
        boson.addr,
        "POST",
        &format!("/{kind}/query?addr={other}"),
        &[],
        br#"{"statement":"SELECT 1","params":[]}"#,
    );
    assert_eq!(r.status, 400, "{lang} {kind}: {}", r.text());
    assert!(
        r.text().contains("allowed_outbound_hosts"),
        "{lang} {kind}: {}",
        r.text()
    );
}

#[test]
fn postgres_from_python_and_c() {
    for lang in ["python", "c"] {
        rdbms(
            lang,
            "kv",
            "pg",
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://127.0.0.1:5432",
        );
    }
}

#[test]
fn mysql_from_spin_sdk_3_and_5_and_c() {
    for (lang, guest_name) in [("python", "kv"), ("python", "kv5"), ("c", "kv")] {
        rdbms(
            lang,
            guest_name,
            "mysql",
            "mysql://root@127.0.0.1:3306/test",
            "mysql://127.0.0.1:3306",
        );
    }
}

#[test]
fn outbound_mqtt_from_spin_sdk_3_and_5_and_c() {
    for (lang, guest_name) in [("python", "kv"), ("python", "kv5"), ("c", "kv")] {
        let (_app, boson) = start_kv_app_granting(lang, guest_name, &["mqtt://127.0.0.1:1883"]);
        let topic = format!("boson/test/{}", unique(guest_name));
        // A real subscriber on the real broker.
        let mut options = rumqttc::MqttOptions::new(unique("sub"), "127.0.0.1", 1883);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = rumqttc::Client::new(options, 16);
        client.subscribe(&topic, rumqttc::QoS::AtLeastOnce).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = tx.send(None);
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(Some(p.payload.to_vec()));
                    }
                    Err(_) => break,
                    _ => {}
                }
            }
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            None,
            "{lang}: no SUBACK"
        );
        let encoded = topic.replace('/', "%2F");
        let addr = "mqtt%3A%2F%2F127.0.0.1%3A1883";
        let r = request(
            boson.addr,
            "POST",
            &format!("/mqtt/publish/{encoded}?addr={addr}&qos=1"),
            &[],
            b"hello over mqtt",
        );
        assert_eq!(r.status, 200, "{lang}: {}", r.text());
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got.as_deref(), Some(&b"hello over mqtt"[..]), "{lang}");

        // Another port is not granted.
        let r = request(
            boson.addr,
            "POST",
            &format!("/mqtt/publish/{encoded}?addr=mqtt%3A%2F%2F127.0.0.1%3A1884&qos=0"),
            &[],
            b"x",
        );
        assert_eq!(r.status, 400, "{lang}: {}", r.text());
        assert!(
            r.text().contains("allowed_outbound_hosts"),
            "{lang}: {}",
            r.text()
        );
        let _ = client.disconnect();
    }
}

#[test]
fn outbound_connection_limits_come_from_the_runtime_config() {
    let manifest = kv_manifest(&guest("c", "kv")).replace(
        "key_value_stores = [\"default\", \"cache\"]",
        "key_value_stores = [\"default\", \"cache\"]\nallowed_outbound_hosts = [\"redis://127.0.0.1:6379\"]",
    );
    let (_app, boson) = start_app(
        manifest,
        &format!("{REDIS_CACHE}[outbound_connections]\nmax_addresses = 1\n"),
    );
    let get = |db: u8| {
        let addr = format!("redis%3A%2F%2F127.0.0.1%3A6379%2F{db}");
        request(
            boson.addr,
            "GET",
            &format!("/redis/get/nothing?addr={addr}"),
            &[],
            b"",
        )
    };
    assert_eq!(get(12).status, 404, "the first address is within the limit");
    assert_eq!(get(12).status, 404, "the same address is reused");
    let r = get(11);
    assert_eq!(
        (r.status, r.text().trim()),
        (503, "error: too-many-connections")
    );
}
