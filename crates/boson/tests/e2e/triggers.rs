//! Message and schedule triggers against real brokers: Redis pub/sub, MQTT (Mosquitto), NATS and
//! cron. Guests in C and Python record what they receive in the machine's Redis
//! (`RPUSH <record_key> <payload>`), so every test reads back exactly what arrived, in order.
//! Tests that restart a broker start a private one of their own on a free loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const RECORDS: &str = "redis://127.0.0.1:6379";

fn records() -> redis::Connection {
    redis::Client::open(RECORDS)
        .unwrap()
        .get_connection()
        .expect("the machine's Redis at 127.0.0.1:6379")
}

fn list(key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query::<Vec<Vec<u8>>>(&mut records())
        .unwrap()
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

/// Polls the list at `key` until it has at least `n` entries.
fn wait_list(key: &str, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let items = list(key);
        if items.len() >= n || Instant::now() > deadline {
            return items;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status entries of every non-HTTP trigger.
fn trigger_status(boson: &Boson) -> Vec<serde_json::Value> {
    boson.get("/.well-known/boson/status").json()["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["trigger"] != "http")
        .cloned()
        .collect()
}

/// Polls until every message trigger reports its subscription as live.
fn wait_connected(boson: &Boson, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let status = trigger_status(boson);
        if !status.is_empty() && status.iter().all(|t| t["connected"] == true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "triggers never connected: {status:?}\n{}",
            boson.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failed_count(boson: &Boson, component: &str) -> u64 {
    trigger_status(boson)
        .iter()
        .filter(|t| t["component"] == component)
        .map(|t| t["failed"].as_u64().unwrap())
        .sum()
}

/// A `[component.<id>]` table for a recording guest.
fn recorder(id: &str, wasm: &Path, record_key: &str) -> String {
    format!(
        r#"
[component.{id}]
source = "{}"
allowed_outbound_hosts = ["{RECORDS}"]
variables = {{ record_key = "{record_key}", redis_address = "{RECORDS}" }}
"#,
        wasm.display()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

#[derive(Clone, Copy)]
enum BrokerKind {
    Redis,
    Mosquitto,
    Nats,
}

/// A broker process of the test's own, on a free loopback port; restartable, killed on drop.
struct Broker {
    kind: BrokerKind,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    /// Reserves a port without starting the broker.
    fn new(kind: BrokerKind) -> Self {
        Self {
            kind,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    fn started(kind: BrokerKind) -> Self {
        let mut b = Self::new(kind);
        b.start();
        b
    }

    fn start(&mut self) {
        let port = self.port.to_string();
        let mut command = match self.kind {
            BrokerKind::Redis => {
                let mut c = Command::new(program("redis-server"));
                c.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--dir"])
                    .arg(self.dir.path());
                c
            }
            BrokerKind::Mosquitto => {
                let conf = self.dir.path().join("mosquitto.conf");
                std::fs::write(
                    &conf,
                    format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
                )
                .unwrap();
                let mut c = Command::new(program("mosquitto"));
                c.arg("-c").arg(conf);
                c
            }
            BrokerKind::Nats => {
                let mut c = Command::new(program("nats-server"));
                c.args(["-a", "127.0.0.1", "-p", &port]);
                c
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting a broker");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = match self.kind {
            BrokerKind::Redis => "redis",
            BrokerKind::Mosquitto => "mqtt",
            BrokerKind::Nats => "nats",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------- Redis

fn redis_publish(url: &str, channel: &str, payloads: &[String]) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    for p in payloads {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(p.as_bytes())
            .query(&mut con)
            .unwrap();
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn redis_trigger_delivers_every_message_to_every_subscriber_in_order() {
    let channel = unique("chan");
    let key = unique("redis-rec");
    let mut manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "redis-trigger"
[variables]
channel = {{ required = true }}
[application.trigger.redis]
address = "{RECORDS}"
"#
    );
    let guests = [
        ("c", guest("c", "redis-trigger")),
        ("py3", guest("python", "redis-trigger-spin3")),
        ("py5", guest("python", "redis-trigger-spin5")),
    ];
    for (id, wasm) in &guests {
        manifest.push_str(&format!(
            "[[trigger.redis]]\nchannel = \"{{{{ channel }}}}\"\ncomponent = \"{id}\"\n"
        ));
        manifest.push_str(&recorder(id, wasm, &format!("{key}-{id}")));
    }
    let app = AppDir::new(&manifest);
    // The channel comes from an application variable: `{{ channel }}` in the trigger table.
    let boson = Boson::start(app.path(), &["--variable", &format!("channel={channel}")]);
    wait_connected(&boson, Duration::from_secs(30));

    let mut sent = numbered("msg", 30);
    // A trapping guest fails that message only; the next ones are handled.
    sent.insert(10, "trap".into());
    sent.push("with spaces and ünïcode ✓".into());
    redis_publish(RECORDS, &channel, &sent);
    let expected: Vec<String> = sent.iter().filter(|m| *m != "trap").cloned().collect();
    for (id, _) in &guests {
        let got = wait_list(
            &format!("{key}-{id}"),
            expected.len(),
            Duration::from_secs(60),
        );
        assert_eq!(got, expected, "component {id}\n{}", boson.stderr());
        let deadline = Instant::now() + Duration::from_secs(10);
        while failed_count(&boson, id) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(failed_count(&boson, id), 1, "component {id}");
    }
    assert!(
        boson.wait_for_log("event failed", Duration::from_secs(5)),
        "{}",
        boson.stderr()
    );
    let metrics = boson.get("/.well-known/boson/metrics").text();
    assert!(
        metrics.contains(&format!(
            "boson_events_handled_total{{trigger=\"redis\",component=\"c\",source=\"{channel}\"}} {}",
            expected.len()
        )),
        "{metrics}"
    );
}

#[test]
fn redis_trigger_retries_a_missing_broker_and_survives_its_restart() {
    // The broker is down when Boson starts: Boson serves and keeps retrying.
    let mut broker = Broker::new(BrokerKind::Redis);
    let key = unique("redis-restart");
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "redis-restart"
[[trigger.redis]]
address = "{}"
channel = "jobs"
component = "c"
{}"#,
        broker.url(),
        recorder("c", &guest("c", "redis-trigger"), &key)
    );
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &[]);
    assert!(
        boson.wait_for_log("cannot subscribe", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
    broker.start();
    wait_connected(&boson, Duration::from_secs(15));
    redis_publish(&broker.url(), "jobs", &numbered("before", 5));
    assert_eq!(wait_list(&key, 5, Duration::from_secs(30)).len(), 5);

    broker.stop();
    assert!(
        boson.wait_for_log("lost the connection", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
    broker.start();
    wait_connected(&boson, Duration::from_secs(15));
    redis_publish(&broker.url(), "jobs", &numbered("after", 5));
    let mut expected = numbered("before", 5);
    expected.extend(numbered("after", 5));
    assert_eq!(wait_list(&key, 10, Duration::from_secs(30)), expected);
}

#[test]
fn a_trigger_component_without_the_export_fails_at_start() {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "wrong-export"
[[trigger.redis]]
address = "{RECORDS}"
channel = "x"
component = "web"
[component.web]
source = "{}"
"#,
        guest("c", "hello").display()
    );
    let app = AppDir::new(&manifest);
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains("component `web` is run by [[trigger.redis]] `x`")
            && err.contains("fermyon:spin/inbound-redis"),
        "{err}"
    );
}

#[test]
fn bad_trigger_tables_name_the_line_and_the_key() {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "bad"
[application.trigger.mqtt]
address = "mqtt://127.0.0.1:1883"

[[trigger.mqtt]]
topic = "t"
qos = 5
component = "c"
{}"#,
        recorder("c", &guest("c", "mqtt-trigger"), "k")
    );
    let app = AppDir::new(&manifest);
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains("spin.toml:7: [[trigger.mqtt]]: `qos` must be 0, 1 or 2"),
        "{err}"
    );

    let manifest = manifest
        .replace("qos = 5", "qos = 1\nchanel = \"oops\"")
        .replace("mqtt://127.0.0.1:1883", "mqtts://broker:8883");
    let app = AppDir::new(&manifest);
    let err = start_failure(app.path(), &[]);
    assert!(err.contains("must start with mqtt://"), "{err}");

    let manifest = manifest.replace("mqtts://broker:8883", "mqtt://127.0.0.1:1883");
    let app = AppDir::new(&manifest);
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains("spin.toml:7: [[trigger.mqtt]]: unknown key `chanel`"),
        "{err}"
    );

    let cron = format!(
        r#"spin_manifest_version = 2
[application]
name = "bad-cron"
[[trigger.cron]]
cron_expression = "every minute"
component = "c"
{}"#,
        recorder("c", &guest("c", "cron-trigger"), "k")
    );
    let app = AppDir::new(&cron);
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains(
            "spin.toml:4: [[trigger.cron]]: `cron_expression` \"every minute\" has 2 fields"
        ),
        "{err}"
    );
}

// ----------------------------------------------------------------------------------- MQTT

/// Publishes `payloads` to `topic` and waits until the broker has them (PUBACK for QoS 1).
fn mqtt_publish(port: u16, topic: &str, qos: u8, payloads: &[String]) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    let qos_level = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    tokio_rt().block_on(async {
        let mut options = MqttOptions::new(unique("pub"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, payloads.len() + 10);
        for p in payloads {
            client
                .publish(topic, qos_level, false, p.as_bytes().to_vec())
                .await
                .unwrap();
        }
        let mut done = 0;
        tokio::time::timeout(Duration::from_secs(20), async {
            while done < payloads.len() {
                match events.poll().await.unwrap() {
                    Event::Incoming(Packet::PubAck(_)) if qos > 0 => done += 1,
                    Event::Outgoing(Outgoing::Publish(_)) if qos == 0 => done += 1,
                    _ => {}
                }
            }
            client.disconnect().await.unwrap();
            while !matches!(
                events.poll().await,
                Ok(Event::Outgoing(Outgoing::Disconnect))
            ) {}
        })
        .await
        .expect("publishing to the MQTT broker");
    });
}

fn mqtt_manifest(broker: &str, triggers: &[(&str, &str, u8, &Path, String)]) -> String {
    let mut manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "mqtt-trigger"
[application.trigger.mqtt]
address = "{broker}"
username = ""
password = ""
keep_alive_interval = "30"
"#
    );
    for (id, topic, qos, wasm, key) in triggers {
        manifest.push_str(&format!(
            "[[trigger.mqtt]]\ntopic = \"{topic}\"\nqos = \"{qos}\"\ncomponent = \"{id}\"\n"
        ));
        manifest.push_str(&recorder(id, wasm, key));
    }
    manifest
}

#[test]
fn mqtt_trigger_delivers_in_order_with_the_topic_in_c_and_python() {
    let broker = Broker::started(BrokerKind::Mosquitto);
    let key = unique("mqtt");
    let (c_key, py_key) = (format!("{key}-c"), format!("{key}-py"));
    let c_wasm = guest("c", "mqtt-trigger");
    let py_wasm = guest("python", "mqtt-trigger");
    let manifest = mqtt_manifest(
        &broker.url(),
        &[
            ("c", "sensors/+/c", 1, &c_wasm, c_key.clone()),
            ("py", "sensors/#", 0, &py_wasm, py_key.clone()),
        ],
    );
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &[]);
    wait_connected(&boson, Duration::from_secs(30));

    let mut sent = numbered("reading", 20);
    sent.insert(5, "trap".into());
    mqtt_publish(broker.port, "sensors/kitchen/c", 1, &sent);
    let expected: Vec<String> = sent.iter().filter(|m| *m != "trap").cloned().collect();
    assert_eq!(
        wait_list(&c_key, expected.len(), Duration::from_secs(60)),
        expected,
        "{}",
        boson.stderr()
    );
    // `sensors/#` matches the same messages: the Python guest gets them too, at QoS 0.
    assert_eq!(
        wait_list(&py_key, expected.len(), Duration::from_secs(60)),
        expected,
        "{}",
        boson.stderr()
    );
    let topics = list(&format!("{c_key}:topics"));
    assert_eq!(topics.len(), expected.len());
    assert!(
        topics.iter().all(|t| t == "sensors/kitchen/c"),
        "{topics:?}"
    );
    assert_eq!(failed_count(&boson, "c"), 1);
}

#[test]
fn mqtt_qos1_message_is_acknowledged_only_after_the_guest_succeeds() {
    let broker = Broker::started(BrokerKind::Mosquitto);
    let key = unique("mqtt-ack");
    let wasm = guest("c", "mqtt-trigger");
    let manifest = mqtt_manifest(&broker.url(), &[("c", "orders", 1, &wasm, key.clone())]);
    let app = AppDir::new(&manifest);
    let mut boson = Boson::start(app.path(), &[]);
    wait_connected(&boson, Duration::from_secs(30));

    // The guest fails the first delivery of `fail-once:…`: it stays unacknowledged.
    mqtt_publish(
        broker.port,
        "orders",
        1,
        &["fail-once:a".into(), "b".into()],
    );
    assert_eq!(wait_list(&key, 1, Duration::from_secs(30)), ["b"]);
    assert_eq!(failed_count(&boson, "c"), 1);

    // A new session with the same client id gets it again from the broker, and handles it.
    boson.signal(SIGTERM);
    assert_eq!(boson.wait_exit(Duration::from_secs(10)), Some(0));
    let boson = Boson::start(app.path(), &[]);
    assert_eq!(
        wait_list(&key, 2, Duration::from_secs(30)),
        ["b", "fail-once:a"],
        "{}",
        boson.stderr()
    );
}

#[test]
fn mqtt_trigger_resubscribes_after_a_broker_restart() {
    let mut broker = Broker::started(BrokerKind::Mosquitto);
    let key = unique("mqtt-restart");
    let wasm = guest("python", "mqtt-trigger");
    let manifest = mqtt_manifest(&broker.url(), &[("py", "events", 1, &wasm, key.clone())]);
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &[]);
    wait_connected(&boson, Duration::from_secs(30));
    mqtt_publish(broker.port, "events", 1, &numbered("before", 3));
    assert_eq!(wait_list(&key, 3, Duration::from_secs(30)).len(), 3);

    broker.stop();
    assert!(
        boson.wait_for_log("connection to mqtt://127.0.0.1", Duration::from_secs(15)),
        "{}",
        boson.stderr()
    );
    broker.start();
    wait_connected(&boson, Duration::from_secs(15));
    mqtt_publish(broker.port, "events", 1, &numbered("after", 3));
    let mut expected = numbered("before", 3);
    expected.extend(numbered("after", 3));
    assert_eq!(wait_list(&key, 6, Duration::from_secs(30)), expected);
}

// ----------------------------------------------------------------------------------- NATS

fn nats_manifest(server: &str, triggers: &[(&str, &str, Option<&str>, &Path, String)]) -> String {
    let mut manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "nats-trigger"
[application.trigger.nats]
address = "{server}"
"#
    );
    for (id, subject, group, wasm, key) in triggers {
        manifest.push_str(&format!(
            "[[trigger.nats]]\nsubject = \"{subject}\"\ncomponent = \"{id}\"\n"
        ));
        if let Some(g) = group {
            manifest.push_str(&format!("queue_group = \"{g}\"\n"));
        }
        manifest.push_str(&recorder(id, wasm, key));
    }
    manifest
}

fn nats_client(url: &str) -> (tokio::runtime::Runtime, async_nats::Client) {
    let rt = tokio_rt();
    let client = rt.block_on(async_nats::connect(url)).unwrap();
    (rt, client)
}

fn nats_publish(url: &str, subject: &str, payloads: &[String]) {
    let (rt, client) = nats_client(url);
    rt.block_on(async {
        for p in payloads {
            client
                .publish(subject.to_string(), p.clone().into_bytes().into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    });
}

#[test]
fn nats_trigger_delivers_in_order_and_answers_requests_in_c_and_python() {
    let server = Broker::started(BrokerKind::Nats);
    let key = unique("nats");
    let subject = unique("orders").replace('-', "_");
    let (c_key, py_key) = (format!("{key}-c"), format!("{key}-py"));
    let c_wasm = guest("c", "nats-trigger");
    let py_wasm = guest("python", "nats-trigger");
    let manifest = nats_manifest(
        &server.url(),
        &[
            ("c", &format!("{subject}.c"), None, &c_wasm, c_key.clone()),
            (
                "py",
                &format!("{subject}.py"),
                None,
                &py_wasm,
                py_key.clone(),
            ),
        ],
    );
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &["--timeout", "1s"]);
    wait_connected(&boson, Duration::from_secs(30));

    let mut sent = numbered("order", 20);
    sent.insert(3, "trap".into());
    sent.insert(7, "loop".into());
    for lang in ["c", "py"] {
        nats_publish(&server.url(), &format!("{subject}.{lang}"), &sent);
    }
    let expected: Vec<String> = sent
        .iter()
        .filter(|m| *m != "trap" && *m != "loop")
        .cloned()
        .collect();
    for (lang, k) in [("c", &c_key), ("py", &py_key)] {
        assert_eq!(
            wait_list(k, expected.len(), Duration::from_secs(60)),
            expected,
            "{lang}\n{}",
            boson.stderr()
        );
        let subjects = list(&format!("{k}:subjects"));
        assert!(
            subjects.iter().all(|s| *s == format!("{subject}.{lang}")),
            "{subjects:?}"
        );
        assert_eq!(failed_count(&boson, lang), 2, "{lang}");
    }
    assert!(
        boson.wait_for_log("deadline of 1s exceeded", Duration::from_secs(5)),
        "{}",
        boson.stderr()
    );

    // Request-reply, with headers handed to the guest.
    let (rt, client) = nats_client(&server.url());
    for lang in ["c", "py"] {
        let reply = rt
            .block_on(async {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("trace-id", "abc123");
                tokio::time::timeout(
                    Duration::from_secs(20),
                    client.request_with_headers(
                        format!("{subject}.{lang}"),
                        headers,
                        "ping".into(),
                    ),
                )
                .await
            })
            .expect("reply in time")
            .expect("reply");
        assert_eq!(&reply.payload[..], b"reply:ping", "{lang}");
        let k = if lang == "c" { &c_key } else { &py_key };
        assert_eq!(list(&format!("{k}:headers")), ["trace-id=abc123"], "{lang}");
    }
}

#[test]
fn nats_queue_group_splits_1000_messages_across_two_processes_exactly_once() {
    let server = Broker::started(BrokerKind::Nats);
    let key = unique("nats-group");
    let subject = unique("work").replace('-', "_");
    let wasm = guest("c", "nats-trigger");
    let manifest = nats_manifest(
        &server.url(),
        &[("c", &subject, Some("workers"), &wasm, key.clone())],
    )
    .replace(
        "component = \"c\"\n",
        "component = \"c\"\nconcurrency = 8\n",
    );
    let app = AppDir::new(&manifest);
    let a = Boson::start(app.path(), &[]);
    let b = Boson::start(app.path(), &[]);
    wait_connected(&a, Duration::from_secs(30));
    wait_connected(&b, Duration::from_secs(30));

    let sent = numbered("job", 1000);
    nats_publish(&server.url(), &subject, &sent);
    wait_list(&key, 1000, Duration::from_secs(120));
    let handled = |boson: &Boson| -> u64 {
        trigger_status(boson)
            .iter()
            .map(|t| t["handled"].as_u64().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while handled(&a) + handled(&b) < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every handled message was recorded once: a duplicate would make the list longer.
    let mut got = list(&key);
    assert_eq!(got.len(), 1000, "lost or duplicated messages");
    got.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(got, expected);
    let (ha, hb) = (handled(&a), handled(&b));
    assert_eq!(ha + hb, 1000);
    assert!(
        ha > 0 && hb > 0,
        "one process did all the work: {ha} / {hb}"
    );
}

#[test]
fn nats_trigger_reconnects_after_a_server_restart() {
    let mut server = Broker::started(BrokerKind::Nats);
    let key = unique("nats-restart");
    let wasm = guest("python", "nats-trigger");
    let manifest = nats_manifest(&server.url(), &[("py", "jobs", None, &wasm, key.clone())]);
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &[]);
    wait_connected(&boson, Duration::from_secs(30));
    nats_publish(&server.url(), "jobs", &numbered("before", 3));
    assert_eq!(wait_list(&key, 3, Duration::from_secs(30)).len(), 3);

    server.stop();
    assert!(
        boson.wait_for_log("lost the connection", Duration::from_secs(15)),
        "{}",
        boson.stderr()
    );
    server.start();
    wait_connected(&boson, Duration::from_secs(20));
    // The client resubscribes right after it reconnects; probe until a message gets through.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probes = 0;
    while list(&key).len() < 4 {
        assert!(Instant::now() < deadline, "{}", boson.stderr());
        nats_publish(&server.url(), "jobs", &[format!("probe-{probes}")]);
        probes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    nats_publish(&server.url(), "jobs", &numbered("after", 3));
    let got = wait_list(&key, 4 + probes + 2, Duration::from_secs(30));
    let tail: Vec<&String> = got.iter().filter(|m| m.starts_with("after")).collect();
    assert_eq!(tail, ["after-0", "after-1", "after-2"]);
}

// ----------------------------------------------------------------------------------- cron

#[test]
fn cron_every_second_runs_n_times_in_n_seconds_in_c_and_python() {
    let key = unique("cron");
    let mut manifest = String::from("spin_manifest_version = 2\n[application]\nname = \"cron\"\n");
    for (id, lang) in [("c", "c"), ("py", "python")] {
        manifest.push_str(&format!(
            "[[trigger.cron]]\ncron_expression = \"* * * * * *\"\ncomponent = \"{id}\"\n"
        ));
        // Every third run traps after recording: the schedule must go on regardless.
        let component = recorder(id, &guest(lang, "cron-trigger"), &format!("{key}-{id}")).replace(
            "redis_address =",
            "trap_every_third = \"yes\", redis_address =",
        );
        manifest.push_str(&component);
    }
    let app = AppDir::new(&manifest);
    let boson = Boson::start(app.path(), &[]);
    for id in ["c", "py"] {
        let k = format!("{key}-{id}");
        let seen = wait_list(&k, 1, Duration::from_secs(30)).len();
        assert!(seen >= 1, "{}", boson.stderr());
        let start = Instant::now();
        let n = 4;
        let runs = wait_list(&k, seen + n, Duration::from_secs(30));
        let elapsed = start.elapsed().as_secs_f64();
        assert!(runs.len() >= seen + n, "{runs:?}");
        // N further runs took N seconds, give or take one tick and the polling's own delay (a
        // run noticed late makes the next look early: 3.00 s for 4 was seen on a busy machine).
        // The stamps below check the cadence exactly.
        assert!(
            (n as f64 - 1.5..=n as f64 + 1.5).contains(&elapsed),
            "{n} runs took {elapsed:.2}s"
        );
        let stamps: Vec<u64> = runs.iter().map(|s| s.parse().unwrap()).collect();
        for pair in stamps.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "ticks {stamps:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while failed_count(&boson, id) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            failed_count(&boson, id) >= 1,
            "no run of {id} trapped: {:?}\n{}",
            trigger_status(&boson),
            boson.stderr()
        );
    }
    assert!(
        boson.wait_for_log("guest trapped", Duration::from_secs(5)),
        "{}",
        boson.stderr()
    );
}

#[test]
fn sigterm_lets_running_trigger_events_finish() {
    let server = Broker::started(BrokerKind::Nats);
    let key = unique("nats-drain");
    let wasm = guest("c", "nats-trigger");
    let manifest = nats_manifest(&server.url(), &[("c", "jobs", None, &wasm, key.clone())]);
    let app = AppDir::new(&manifest);
    let mut boson = Boson::start(app.path(), &["--timeout", "2s", "--grace-period", "10s"]);
    wait_connected(&boson, Duration::from_secs(30));
    // A guest that loops until its deadline is running when the stop signal comes.
    nats_publish(&server.url(), "jobs", &["loop".into()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while trigger_status(&boson)[0]["in_flight"] != 1 {
        assert!(Instant::now() < deadline, "{}", boson.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopped = Instant::now();
    boson.signal(SIGTERM);
    assert_eq!(boson.wait_exit(Duration::from_secs(10)), Some(0));
    // Boson waited for the event to end (at its 2 s deadline) before exiting.
    let waited = stopped.elapsed();
    assert!(
        waited > Duration::from_millis(500),
        "exited after {waited:?}"
    );
    assert!(
        boson.wait_for_log("deadline of 2s exceeded", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
}
