//! Outbound PostgreSQL for spin-sdk 5 (`spin:postgres@3.0.0` and `@4.2.0`) through the real
//! guest `python/pg5`, against the real PostgreSQL on this machine (127.0.0.1:5432, database
//! `test`). Every test uses its own table. The 2.0 interface is tested in `capabilities.rs`.

use serde_json::{Value, json};

use crate::harness::*;

const ADDRESS: &str = "postgres://postgres@127.0.0.1:5432/test";
const GRANT: &str = "postgres://127.0.0.1:5432";

/// A table name no other test (or run) uses.
fn table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

fn start_pg5(grants: &[&str]) -> (AppDir, Boson) {
    let list: Vec<String> = grants.iter().map(|g| format!("\"{g}\"")).collect();
    let app = AppDir::new(&single_component_manifest(
        &guest("python", "pg5"),
        &format!("allowed_outbound_hosts = [{}]", list.join(", ")),
    ));
    let boson = Boson::start(app.path(), &[]);
    (app, boson)
}

/// `POST /pg/<version>/<op>` with `body` plus the address (unless the body names one).
fn call(boson: &Boson, version: &str, op: &str, mut body: Value) -> Response {
    if body.get("address").is_none() {
        body["address"] = json!(ADDRESS);
    }
    request(
        boson.addr,
        "POST",
        &format!("/pg/{version}/{op}"),
        &[],
        body.to_string().as_bytes(),
    )
}

/// A call that must succeed; returns its JSON answer.
fn ok(boson: &Boson, version: &str, op: &str, body: Value) -> Value {
    let r = call(boson, version, op, body.clone());
    assert_eq!(r.status, 200, "{version} {op} {body}: {}", r.text());
    r.json()
}

/// A call that must fail with a WIT error; returns the error object.
fn failure(boson: &Boson, version: &str, op: &str, body: Value) -> Value {
    let r = call(boson, version, op, body.clone());
    assert_eq!(r.status, 400, "{version} {op} {body}: {}", r.text());
    r.json()
}

/// Every 4.2.0 column type, the value sent for it and the value PostgreSQL gives back.
fn every_type() -> Vec<(&'static str, &'static str, Value, Value, &'static str)> {
    // (column, SQL type, parameter, value read back, WIT column type)
    let same = |v: Value| (v.clone(), v);
    let rows = vec![
        ("b", "boolean", same(json!({"boolean": true})), "boolean"),
        ("c", "\"char\"", same(json!({"int8": -5})), "int8"),
        ("i2", "smallint", same(json!({"int16": -32768})), "int16"),
        ("i4", "integer", same(json!({"int32": 2147483647})), "int32"),
        ("i8", "bigint", same(json!({"int64": i64::MIN})), "int64"),
        ("f4", "real", same(json!({"floating32": 1.5})), "floating32"),
        (
            "f8",
            "double precision",
            same(json!({"floating64": 6.02214076e23})),
            "floating64",
        ),
        (
            "s",
            "text",
            same(json!({"str": "héllo \"wörld\" ✓"})),
            "str",
        ),
        ("bin", "bytea", same(json!({"binary": "00ff10"})), "binary"),
        ("d", "date", same(json!({"date": [2024, 2, 29]})), "date"),
        (
            "t",
            "time",
            same(json!({"time": [23, 59, 58, 123456000]})),
            "time",
        ),
        (
            "dt",
            "timestamp",
            same(json!({"datetime": [1999, 12, 31, 23, 59, 59, 999999000]})),
            "datetime",
        ),
        (
            "tz",
            "timestamptz",
            same(json!({"datetime": [2024, 6, 1, 12, 30, 0, 500000000]})),
            "datetime",
        ),
        (
            "ts",
            "timestamptz",
            (
                json!({"timestamp": 1700000000}),
                json!({"datetime": [2023, 11, 14, 22, 13, 20, 0]}),
            ),
            "datetime",
        ),
        (
            "u",
            "uuid",
            (
                json!({"uuid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}),
                json!({"uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}),
            ),
            "uuid",
        ),
        (
            "j",
            "jsonb",
            (
                json!({"jsonb": "{\"b\": [1, 2.5, \"x\"], \"a\": null}"}),
                json!({"jsonb": "{\"a\":null,\"b\":[1,2.5,\"x\"]}"}),
            ),
            "jsonb",
        ),
        (
            "n",
            "numeric",
            same(json!({"decimal": "-12345678901234567890.000000000000000000010"})),
            "decimal",
        ),
        (
            "r4",
            "int4range",
            same(json!({"range-int32": [[1, "inclusive"], [10, "exclusive"]]})),
            "range-int32",
        ),
        (
            "r8",
            "int8range",
            same(json!({"range-int64": [null, [5000000000i64, "exclusive"]]})),
            "range-int64",
        ),
        (
            "rn",
            "numrange",
            same(json!({"range-decimal": [["1.5", "exclusive"], ["2.25", "inclusive"]]})),
            "range-decimal",
        ),
        (
            "a4",
            "integer[]",
            same(json!({"array-int32": [1, null, -3]})),
            "array-int32",
        ),
        (
            "a8",
            "bigint[]",
            same(json!({"array-int64": [9007199254740993i64, null]})),
            "array-int64",
        ),
        (
            "an",
            "numeric[]",
            same(json!({"array-decimal": ["1.10", null, "NaN"]})),
            "array-decimal",
        ),
        (
            "astr",
            "text[]",
            same(json!({"array-str": ["a", null, "ü"]})),
            "array-str",
        ),
        (
            "iv",
            "interval",
            same(json!({"interval": {"micros": 3723000001i64, "days": 4, "months": 14}})),
            "interval",
        ),
    ];
    rows.into_iter()
        .map(|(c, sql, (sent, back), ty)| (c, sql, sent, back, ty))
        .collect()
}

#[test]
fn postgres_4_2_every_value_type_round_trips() {
    let (_app, boson) = start_pg5(&[GRANT]);
    let t = table("pg42");
    let types = every_type();
    let columns: Vec<String> = types
        .iter()
        .map(|(c, sql, ..)| format!("{c} {sql}"))
        .collect();
    let create = format!("CREATE TABLE {t} ({})", columns.join(", "));
    assert_eq!(
        ok(&boson, "4", "execute", json!({"statement": create})),
        json!({"affected": 0})
    );

    let placeholders: Vec<String> = (1..=types.len()).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO {t} VALUES ({})", placeholders.join(", "));
    let sent: Vec<Value> = types.iter().map(|(_, _, sent, ..)| sent.clone()).collect();
    let nulls: Vec<Value> = types.iter().map(|_| json!({"db-null": true})).collect();
    let r = ok(
        &boson,
        "4",
        "execute",
        json!({"statement": insert, "params": sent}),
    );
    assert_eq!(r, json!({"affected": 1}));
    // Every type takes NULL too (through the asynchronous call).
    let r = ok(
        &boson,
        "4",
        "execute-async",
        json!({"statement": insert, "params": nulls}),
    );
    assert_eq!(r, json!({"affected": 1}));

    let expected_columns: Vec<Value> = types
        .iter()
        .map(|(c, _, _, _, ty)| json!({"name": c, "type": ty}))
        .collect();
    let back: Vec<Value> = types
        .iter()
        .map(|(_, _, _, back, _)| back.clone())
        .collect();
    let expected = json!({"columns": expected_columns, "rows": [back, nulls]});
    let select = format!("SELECT * FROM {t} ORDER BY i4 NULLS LAST");
    // The same rows through every way of connecting and querying.
    for (op, open) in [
        ("query", "open"),
        ("query-async", "open-async"),
        ("query", "builder"),
        ("query-async", "builder-async"),
        ("query-async", "sdk"),
    ] {
        let got = ok(&boson, "4", op, json!({"statement": select, "open": open}));
        assert_eq!(got, expected, "{op} via {open}");
    }

    // Each value read back, sent as a parameter, finds its row again.
    for (c, _, _, back, _) in &types {
        let statement = format!("SELECT count(*)::int4 AS n FROM {t} WHERE {c} = $1");
        let got = ok(
            &boson,
            "4",
            "query",
            json!({"statement": statement, "params": [back]}),
        );
        assert_eq!(got["rows"], json!([[{"int32": 1}]]), "{c}");
    }

    let r = ok(
        &boson,
        "4",
        "execute-async",
        json!({"statement": format!("UPDATE {t} SET s = $1 WHERE i4 IS NULL"), "params": [{"str": "was null"}], "open": "sdk"}),
    );
    assert_eq!(r, json!({"affected": 1}));
    ok(
        &boson,
        "4",
        "execute",
        json!({"statement": format!("DROP TABLE {t}")}),
    );
}

#[test]
fn postgres_4_2_values_without_a_column() {
    let (_app, boson) = start_pg5(&[GRANT]);
    let got = ok(
        &boson,
        "4",
        "query",
        json!({"statement": "SELECT 'empty'::int4range AS e4, numrange(3, 3) AS en, \
            'NaN'::numeric AS nan, '-Infinity'::numeric AS ninf, 0.000100::numeric AS small, \
            point(1, 2) AS p, '{}'::int4[] AS none, NULL::uuid AS missing"}),
    );
    assert_eq!(
        got,
        json!({
            "columns": [
                {"name": "e4", "type": "range-int32"}, {"name": "en", "type": "range-decimal"},
                {"name": "nan", "type": "decimal"}, {"name": "ninf", "type": "decimal"},
                {"name": "small", "type": "decimal"}, {"name": "p", "type": "other:point"},
                {"name": "none", "type": "array-int32"}, {"name": "missing", "type": "uuid"},
            ],
            "rows": [[
                {"range-int32": [[0, "inclusive"], [0, "exclusive"]]},
                {"range-decimal": [["0", "inclusive"], ["0", "exclusive"]]},
                {"decimal": "NaN"}, {"decimal": "-Infinity"}, {"decimal": "0.000100"},
                // a point is two big-endian doubles, passed on as PostgreSQL sent them
                {"unsupported": "3ff00000000000004000000000000000"},
                {"array-int32": []}, {"db-null": true},
            ]],
        })
    );
    // An empty range sent as [0, 0) is empty; PostgreSQL normalizes discrete ranges.
    let got = ok(
        &boson,
        "4",
        "query",
        json!({"statement": "SELECT $1::int4range = 'empty'::int4range AS e, $2::int8range AS r",
            "params": [{"range-int32": [[0, "inclusive"], [0, "exclusive"]]},
                       {"range-int64": [[1, "inclusive"], [5, "inclusive"]]}]}),
    );
    assert_eq!(
        got["rows"],
        json!([[{"boolean": true}, {"range-int64": [[1, "inclusive"], [6, "exclusive"]]}]])
    );
    // Values the WIT cannot hold are error values, not traps.
    for (sql, column) in [
        ("SELECT 'infinity'::timestamp AS v", "v"),
        ("SELECT 'infinity'::date AS v", "v"),
        ("SELECT '{{1,2},{3,4}}'::int4[] AS v", "v"),
    ] {
        for op in ["query", "query-async"] {
            let e = failure(&boson, "4", op, json!({"statement": sql}));
            assert_eq!(e["error"], "value-conversion-failed", "{sql}: {e}");
            let message = e["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("column \"{column}\": ")),
                "{sql}: {e}"
            );
        }
    }
    // Integers go into any integer or numeric placeholder they fit.
    let got = ok(
        &boson,
        "4",
        "query",
        json!({"statement": "SELECT $1::int8 AS a, $2::int2 AS b, $3::numeric AS c",
            "params": [{"int8": 7}, {"int64": -300}, {"int32": 12}]}),
    );
    assert_eq!(
        got["rows"],
        json!([[{"int64": 7}, {"int16": -300}, {"decimal": "12"}]])
    );
}

#[test]
fn postgres_4_2_bad_parameters_and_server_errors_are_error_values() {
    let (_app, boson) = start_pg5(&[GRANT]);
    let t = table("pg42err");
    ok(
        &boson,
        "4",
        "execute",
        json!({"statement": format!("CREATE TABLE {t} (k integer PRIMARY KEY, small smallint, u uuid, n numeric, j jsonb, d date)")}),
    );
    let insert = |column: &str, param: Value| {
        failure(
            &boson,
            "4",
            "execute",
            json!({"statement": format!("INSERT INTO {t} (k, {column}) VALUES (1, $1)"), "params": [param]}),
        )
    };
    for (column, param, message) in [
        (
            "small",
            json!({"str": "x"}),
            "parameter $1: a str value cannot be sent as int2",
        ),
        (
            "small",
            json!({"int64": 40000}),
            "parameter $1: the int64 value 40000 does not fit int2",
        ),
        (
            "u",
            json!({"int32": 1}),
            "parameter $1: a int32 value cannot be sent as uuid",
        ),
        (
            "u",
            json!({"uuid": "nope"}),
            "parameter $1: \"nope\" is not a UUID",
        ),
        (
            "n",
            json!({"decimal": "1.2.3"}),
            "parameter $1: \"1.2.3\" is not a decimal number",
        ),
        (
            "n",
            json!({"floating64": 1.5}),
            "parameter $1: a floating64 value cannot be sent as numeric",
        ),
        (
            "j",
            json!({"jsonb": "{"}),
            "parameter $1: the jsonb value is not JSON",
        ),
        (
            "d",
            json!({"date": [2023, 2, 29]}),
            "parameter $1: (2023, 2, 29) is not a valid date",
        ),
    ] {
        let e = insert(column, param.clone());
        assert_eq!(e["error"], "bad-parameter", "{param}: {e}");
        let got = e["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{param}: {got}");
    }
    let e = failure(
        &boson,
        "4",
        "query",
        json!({"statement": "SELECT $1::int4"}),
    );
    assert_eq!(
        e,
        json!({"error": "bad-parameter", "message": "the statement has 1 placeholder(s) but 0 parameter(s) were given"})
    );

    // Server errors keep their structure.
    let e = failure(
        &boson,
        "4",
        "query",
        json!({"statement": "SELECT * FROM no_such_table_here"}),
    );
    let db = &e["db-error"];
    assert_eq!(e["error"], "query-failed", "{e}");
    assert_eq!(
        (&db["severity"], &db["code"], &db["message"], &db["detail"]),
        (
            &json!("ERROR"),
            &json!("42P01"),
            &json!("relation \"no_such_table_here\" does not exist"),
            &Value::Null
        ),
        "{e}"
    );
    assert!(
        db["extras"]
            .as_array()
            .unwrap()
            .contains(&json!(["position", "15"])),
        "{e}"
    );
    assert!(
        db["as-text"]
            .as_str()
            .unwrap()
            .contains("no_such_table_here"),
        "{e}"
    );

    let insert_key =
        json!({"statement": format!("INSERT INTO {t} (k) VALUES ($1)"), "params": [{"int32": 1}]});
    ok(&boson, "4", "execute-async", insert_key.clone());
    let e = failure(&boson, "4", "execute-async", insert_key);
    let db = &e["db-error"];
    assert_eq!(
        (&db["code"], &db["detail"]),
        (&json!("23505"), &json!("Key (k)=(1) already exists.")),
        "{e}"
    );
    let extras = db["extras"].as_array().unwrap();
    assert!(extras.contains(&json!(["table", t])), "{e}");
    assert!(
        extras.contains(&json!(["constraint", format!("{t}_pkey")])),
        "{e}"
    );
    ok(
        &boson,
        "4",
        "execute",
        json!({"statement": format!("DROP TABLE {t}")}),
    );
}

#[test]
fn postgres_3_0_round_trips_and_errors() {
    let (_app, boson) = start_pg5(&[GRANT]);
    let t = table("pg30");
    let create = format!(
        "CREATE TABLE {t} (b boolean, c \"char\", i2 smallint, i4 integer, i8 bigint, f4 real, \
         f8 double precision, s varchar(50), bin bytea, d date, tm time, dt timestamp, \
         ts timestamptz, u uuid)"
    );
    assert_eq!(
        ok(&boson, "3", "execute", json!({"statement": create})),
        json!({"affected": 0})
    );
    let insert = format!(
        "INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')"
    );
    let params = json!([
        {"boolean": false}, {"int8": 7}, {"int16": 300}, {"int32": -7}, {"int64": 9007199254740993i64},
        {"floating32": 0.25}, {"floating64": -2.5}, {"str": "héllo"}, {"binary": "cafe"},
        {"date": [1970, 1, 1]}, {"time": [0, 0, 1, 5000]}, {"datetime": [2000, 2, 29, 1, 2, 3, 0]},
        {"timestamp": 86400},
    ]);
    let r = ok(
        &boson,
        "3",
        "execute",
        json!({"statement": insert, "params": params}),
    );
    assert_eq!(r, json!({"affected": 1}));
    let got = ok(
        &boson,
        "3",
        "query",
        json!({"statement": format!("SELECT * FROM {t}")}),
    );
    let types = [
        ("b", "boolean"),
        ("c", "int8"),
        ("i2", "int16"),
        ("i4", "int32"),
        ("i8", "int64"),
        ("f4", "floating32"),
        ("f8", "floating64"),
        ("s", "str"),
        ("bin", "binary"),
        ("d", "date"),
        ("tm", "time"),
        ("dt", "datetime"),
        ("ts", "datetime"),
        ("u", "other"),
    ];
    let columns: Vec<Value> = types
        .iter()
        .map(|(n, ty)| json!({"name": n, "type": ty}))
        .collect();
    assert_eq!(
        got,
        json!({"columns": columns, "rows": [[
            {"boolean": false}, {"int8": 7}, {"int16": 300}, {"int32": -7},
            {"int64": 9007199254740993i64}, {"floating32": 0.25}, {"floating64": -2.5},
            {"str": "héllo"}, {"binary": "cafe"}, {"date": [1970, 1, 1]},
            {"time": [0, 0, 1, 5000]}, {"datetime": [2000, 2, 29, 1, 2, 3, 0]},
            {"datetime": [1970, 1, 2, 0, 0, 0, 0]}, {"unsupported": true},
        ]]})
    );
    let e = failure(
        &boson,
        "3",
        "execute",
        json!({"statement": format!("UPDATE {t} SET i4 = $1"), "params": [{"boolean": true}]}),
    );
    assert_eq!(
        e,
        json!({"error": "bad-parameter", "message": "parameter $1: a boolean value cannot be sent as int4"})
    );
    let e = failure(
        &boson,
        "3",
        "query",
        json!({"statement": "SELECT * FROM no_such_table_here"}),
    );
    assert_eq!(
        e,
        json!({"error": "query-failed", "message": "relation \"no_such_table_here\" does not exist"})
    );
    let r = ok(
        &boson,
        "3",
        "execute",
        json!({"statement": format!("DELETE FROM {t}")}),
    );
    assert_eq!(r, json!({"affected": 1}));
    ok(
        &boson,
        "3",
        "execute",
        json!({"statement": format!("DROP TABLE {t}")}),
    );
}

#[test]
fn postgres_spin_sdk_5_reaches_only_granted_addresses() {
    let (_app, boson) = start_pg5(&[GRANT]);
    let one = json!({"columns": [{"name": "one", "type": "int32"}], "rows": [[{"int32": 1}]]});
    let select = |address: &str, version: &str, open: &str| {
        call(
            &boson,
            version,
            if open == "open-async" {
                "query-async"
            } else {
                "query"
            },
            json!({"address": address, "open": open, "statement": "SELECT 1::int4 AS one"}),
        )
    };
    for (version, open) in [
        ("3", "open"),
        ("4", "open"),
        ("4", "open-async"),
        ("4", "builder-async"),
    ] {
        let r = select(ADDRESS, version, open);
        assert_eq!((r.status, r.json()), (200, one.clone()), "{version} {open}");
        for denied in [
            "postgres://postgres@127.0.0.1:5433/test",
            "postgres://postgres@localhost:5432/test",
        ] {
            let r = select(denied, version, open);
            assert_eq!(r.status, 400, "{version} {open} {denied}: {}", r.text());
            let e = r.json();
            assert_eq!(e["error"], "connection-failed", "{e}");
            assert!(
                e["message"]
                    .as_str()
                    .unwrap()
                    .contains("allowed_outbound_hosts"),
                "{version} {open} {denied}: {e}"
            );
        }
    }
}

/// The connection builder's CA against the real server's TLS certificate (Debian's snakeoil
/// certificate, issued to `localhost`).
#[test]
fn postgres_connection_builder_trusts_its_ca_root() {
    let Ok(ca) = std::fs::read_to_string("/etc/ssl/certs/ssl-cert-snakeoil.pem") else {
        eprintln!(
            "no /etc/ssl/certs/ssl-cert-snakeoil.pem: the TLS test needs the server's certificate"
        );
        return;
    };
    let (_app, boson) = start_pg5(&["postgres://localhost:5432"]);
    let base = "postgres://postgres@localhost:5432/test";
    let is_tls = |sslmode: &str, open: &str, ca: Option<&str>| {
        let mut body = json!({"address": format!("{base}?sslmode={sslmode}"), "open": open,
            "statement": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"});
        if let Some(ca) = ca {
            body["ca"] = json!(ca);
        }
        call(&boson, "4", "query", body)
    };
    let tls = |r: Response| {
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["rows"][0][0]["boolean"].as_bool().unwrap()
    };
    assert!(tls(is_tls("require", "builder", Some(&ca))));
    assert!(tls(is_tls("require", "builder-async", Some(&ca))));
    assert!(
        tls(is_tls("prefer", "builder", Some(&ca))),
        "a CA makes `prefer` use TLS"
    );
    assert!(
        !tls(is_tls("prefer", "builder", None)),
        "plain without a CA, as before"
    );
    assert!(!tls(is_tls("disable", "builder", Some(&ca))));
    // Without the CA the server's certificate is not trusted.
    let r = is_tls("require", "open", None);
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"], "connection-failed", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("certificate"),
        "{e}"
    );
    // Something that is not a certificate is refused by set-ca-root.
    let r = is_tls("require", "builder", Some("not a certificate"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "other", "{}", r.text());
}
