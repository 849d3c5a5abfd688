//! Bad input for the CloudSigma decoders and the error-body parser: arbitrary JSON trees, the documented
//! sample bodies truncated at every byte and with fields replaced by nulls, wrong types, huge numbers
//! and deep nesting, and arbitrary error bodies. Decoding returns a value or a decode error and never
//! panics; decode errors never quote the body; API failures keep `error_type` / `error_point` /
//! `error_message` only from well-formed error bodies, bounded and without control characters.
//!
//! The serde decoders of the public types are called directly; the list envelopes and the error-body
//! parser are private, so they are driven through the client against a raw HTTP stub.
//!
//! Proptest runs 256 cases per property (64 for the HTTP ones) with a fixed seed; `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` override both.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use cs_api::{
    Capabilities, Client, ClientOptions, Drive, DriveSummary, Endpoints, Error, Ip, ListFilter, Location,
    Server, ServerSummary, Snapshot, StorageType,
};
use cs_auth::UsernamePasswordProvider;
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, RngSeed},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A string that must never show up in an error: it stands for whatever a body may hold.
const MARKER: &str = "Body-Marker-4f1c9e";

fn config(http: bool) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = if http { 64 } else { 256 };
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x00c5_a915_eed0);
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------------------
// Samples (shapes from docs/cloudsigma-client.md and the API fact sheet).

const SERVER: &str = r#"{
  "uuid": "5f0c7b7e-0000-4000-8000-000000000001", "name": "worker-a", "status": "running",
  "cpu": 2000, "smp": 1, "mem": 2147483648, "vnc_password": "vnc-secret-1",
  "meta": {"cluster": "demo", "cloudinit-user-data": "c2VjcmV0"}, "tags": [],
  "drives": [{"boot_order": 1, "dev_channel": "0:0", "device": "virtio",
              "drive": {"uuid": "d1", "resource_uri": "/api/2.0/drives/d1/"}, "runtime": null}],
  "nics": [{"mac": "22:aa:bb:cc:dd:ee", "model": "virtio", "vlan": null,
            "ip_v4_conf": {"conf": "dhcp", "ip": null}, "ip_v6_conf": null,
            "runtime": {"interface_type": "public",
                        "ip_v4": {"uuid": "203.0.113.7", "resource_uri": "/api/2.0/ips/203.0.113.7/"},
                        "ip_v6": null}}],
  "runtime": {"active_since": "2025-01-01T10:00:00+00:00",
              "nics": [{"mac": "22:aa:bb:cc:dd:ee", "interface_type": "public",
                        "ip_v4": {"uuid": "203.0.113.7"}, "ip_v6": null}]},
  "owner": {"uuid": "u1", "resource_uri": "/api/2.0/user/u1/"},
  "resource_uri": "/api/2.0/servers/5f0c7b7e-0000-4000-8000-000000000001/",
  "context": true, "cpu_type": "amd", "jobs": []
}"#;

const DRIVE: &str = r#"{
  "uuid": "d1", "name": "pvc-1", "size": 10737418240, "media": "disk", "storage_type": "dssd",
  "status": "mounted", "mounted_on": [{"uuid": "s1", "resource_uri": "/api/2.0/servers/s1/"}],
  "allow_multimount": false, "meta": {"csi_name": "pvc-1"}, "tags": [], "snapshots": [{"uuid": "sn1"}],
  "runtime": {"is_snapshotable": true, "snapshots_allocated_size": 0, "storage_type": "dssd"},
  "owner": {"uuid": "u1"}, "resource_uri": "/api/2.0/drives/d1/", "jobs": [], "iops": null
}"#;

const SNAPSHOT: &str = r#"{
  "uuid": "sn1", "name": "daily", "drive": {"uuid": "d1", "resource_uri": "/api/2.0/drives/d1/"},
  "status": "available", "timestamp": "2025-01-01 10:00:00.000000+00:00", "allocated_size": null,
  "meta": {}, "tags": [], "owner": {"uuid": "u1"}
}"#;

const IP: &str = r#"{
  "uuid": "94.26.101.149", "server": {"uuid": "s1"}, "gateway": "94.26.101.1", "netmask": 24,
  "nameservers": ["8.8.8.8"], "meta": {}, "tags": [], "owner": {"uuid": "u1"},
  "resource_uri": "/api/2.0/ips/94.26.101.149/"
}"#;

const LOCATION: &str = r#"{
  "id": "ZRH", "api_endpoint": "https://zrh.cloudsigma.com/api/2.0/",
  "upload_url": "https://direct.zrh.cloudsigma.com/api/2.0/", "country_code": "CH",
  "display_name": "Zurich"
}"#;

const CAPABILITIES: &str = r#"{
  "servers": {"cpu": {"min": 250, "max": 100000}, "mem": {"min": 268435456, "max": "137438953472"}},
  "drives": {"dssd": {"min_size": 536870912, "max_size": 17592186044416}},
  "snapshots": {"max": 100, "max_per_drive": 90}, "hypervisors": {"kvm": ["intel", "amd"]}
}"#;

const SERVER_SUMMARY: &str = r#"{"uuid": "s1", "name": "n", "status": "starting",
  "owner": {"uuid": "u"}, "resource_uri": "/api/2.0/servers/s1/", "runtime": null}"#;

const DRIVE_SUMMARY: &str =
    r#"{"uuid": "d1", "status": "unmounted", "owner": {"uuid": "u"}, "resource_uri": "/api/2.0/drives/d1/"}"#;

fn samples() -> Vec<(&'static str, Value)> {
    [
        ("server", SERVER),
        ("drive", DRIVE),
        ("snapshot", SNAPSHOT),
        ("ip", IP),
        ("location", LOCATION),
        ("capabilities", CAPABILITIES),
        ("server summary", SERVER_SUMMARY),
        ("drive summary", DRIVE_SUMMARY),
    ]
    .into_iter()
    .map(|(name, text)| (name, serde_json::from_str(text).unwrap()))
    .collect()
}

/// A list envelope around `objects`.
fn envelope(objects: Vec<Value>) -> Value {
    let n = objects.len();
    json!({"meta": {"limit": 100, "offset": 0, "total_count": n}, "objects": objects})
}

// ---------------------------------------------------------------------------------------------------
// Decoding every public type, and using what was decoded.

/// Decodes `value` as every public resource type (from a `Value` and from its text) and exercises the
/// helpers a caller would use on the result. Panics only if a decoder or helper panics.
fn decode_everything(value: &Value) {
    let text = serde_json::to_vec(value).unwrap();
    decode_bytes(&text);
    if let Ok(server) = serde_json::from_value::<Server>(value.clone()) {
        let _ = server.runtime_addresses();
        let _ = server.is_running();
        for drive in &server.drives {
            let _ = drive.channel();
        }
        let _ = format!("{server:?}");
        // What was read can be sent back in a full PUT, and read again.
        let body = serde_json::to_value(&server).unwrap();
        serde_json::from_value::<Server>(body).unwrap();
    }
    if let Ok(drive) = serde_json::from_value::<Drive>(value.clone()) {
        let _ = drive.is_mounted_on("s1");
        let _ = drive.status.is_ready();
        let body = serde_json::to_value(&drive).unwrap();
        serde_json::from_value::<Drive>(body).unwrap();
    }
    if let Ok(snapshot) = serde_json::from_value::<Snapshot>(value.clone()) {
        let body = serde_json::to_value(&snapshot).unwrap();
        serde_json::from_value::<Snapshot>(body).unwrap();
    }
    if let Ok(ip) = serde_json::from_value::<Ip>(value.clone()) {
        let _ = ip.address();
    }
    if let Ok(caps) = serde_json::from_value::<Capabilities>(value.clone()) {
        for storage in [
            StorageType::Dssd,
            StorageType::Nvme,
            StorageType::Unknown("x".into()),
        ] {
            let _ = caps.drive_size_limits(&storage);
        }
    }
    let _ = serde_json::from_value::<Location>(value.clone());
    let _ = serde_json::from_value::<ServerSummary>(value.clone());
    let _ = serde_json::from_value::<DriveSummary>(value.clone());
}

/// Decodes raw bytes as every public resource type (the path the client takes).
fn decode_bytes(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Server>(bytes).map(|s| s.runtime_addresses());
    let _ = serde_json::from_slice::<Drive>(bytes);
    let _ = serde_json::from_slice::<Snapshot>(bytes);
    let _ = serde_json::from_slice::<Ip>(bytes).map(|ip| ip.address());
    let _ = serde_json::from_slice::<Location>(bytes);
    let _ = serde_json::from_slice::<Capabilities>(bytes);
    let _ = serde_json::from_slice::<ServerSummary>(bytes);
    let _ = serde_json::from_slice::<DriveSummary>(bytes);
    let _ = serde_json::from_slice::<Vec<Server>>(bytes);
}

/// Keys the decoders look at, so that arbitrary trees hit the interesting fields.
const KEYS: &[&str] = &[
    "uuid",
    "name",
    "status",
    "size",
    "cpu",
    "mem",
    "smp",
    "meta",
    "tags",
    "nics",
    "drives",
    "runtime",
    "owner",
    "resource_uri",
    "mounted_on",
    "snapshots",
    "media",
    "storage_type",
    "allow_multimount",
    "drive",
    "dev_channel",
    "device",
    "boot_order",
    "mac",
    "ip_v4",
    "ip_v6",
    "ip_v4_conf",
    "conf",
    "ip",
    "interface_type",
    "vlan",
    "vnc_password",
    "netmask",
    "nameservers",
    "servers",
    "min",
    "max",
    "max_per_drive",
    "hypervisors",
    "dssd",
    "min_size",
    "max_size",
    "objects",
    "total_count",
    "allocated_size",
    "timestamp",
    "error_type",
    "error_message",
    "error_point",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1.5)),
        Just(json!(u64::MAX)),
        "[a-z0-9:. -]{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop::sample::select(vec![
            "running",
            "stopped",
            "mounted",
            "unmounted",
            "0:1",
            "9:99999",
            "virtio",
            "dssd",
            "10737418240",
            "-1",
            "1e3",
            "203.0.113.7",
            "::1",
            "/api/2.0/drives/x/",
            "/",
            "",
        ])
        .prop_map(Value::from),
    ]
}

/// Arbitrary JSON trees whose object keys are mostly the ones the decoders read.
fn json_tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 96, 8, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path (object keys and array indexes) inside `value`.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Seg::Index(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(value: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(value, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Index(i) => &mut v[*i],
    })
}

/// What a field may be replaced with: null, a value of the wrong type, a huge or negative number,
/// or a deep nest of arrays and objects.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!("not what you expected")),
        Just(json!(MARKER)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(0.5)),
        Just(json!([])),
        Just(json!({})),
        Just(json!([null, 1, "x"])),
        Just(json!({"uuid": null})),
        (1usize..200).prop_map(|depth| {
            (0..depth).fold(json!(MARKER), |v, i| {
                if i % 2 == 0 { json!([v]) } else { json!({"x": v}) }
            })
        }),
        json_tree(),
    ]
}

/// A documented sample with 1 to 4 of its fields replaced.
fn mutated_sample() -> impl Strategy<Value = (String, Value)> {
    let samples = samples();
    (
        0..samples.len(),
        prop::collection::vec((any::<prop::sample::Index>(), replacement()), 1..5),
    )
        .prop_map(move |(which, edits)| {
            let (name, mut value) = samples[which].clone();
            for (index, new) in edits {
                let mut all = Vec::new();
                paths(&value, &mut Vec::new(), &mut all);
                if all.is_empty() {
                    break;
                }
                *at_mut(&mut value, &all[index.index(all.len())]) = new;
            }
            (name.to_owned(), value)
        })
}

proptest! {
    #![proptest_config(config(false))]

    #[test]
    fn arbitrary_json_trees_decode_or_fail_without_panicking(value in json_tree()) {
        decode_everything(&value);
        decode_everything(&json!([value.clone()]));
        decode_everything(&envelope(vec![value]));
    }

    #[test]
    fn documented_samples_with_nulls_wrong_types_huge_numbers_and_deep_nesting_never_panic(
        (_name, value) in mutated_sample()
    ) {
        decode_everything(&value);
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_bytes(&bytes);
    }
}

#[test]
fn documented_samples_decode_and_every_truncation_fails_cleanly() {
    for (name, value) in samples() {
        let text = serde_json::to_vec_pretty(&value).unwrap();
        decode_everything(&value);
        for cut in 0..text.len() {
            decode_bytes(&text[..cut]);
        }
        // A strict prefix of an object is never a complete document.
        let cut = &text[..text.len() - 1];
        assert!(
            serde_json::from_slice::<Server>(cut).is_err(),
            "{name}: truncated body decoded"
        );
    }
    // The documented shapes themselves decode as their types.
    serde_json::from_str::<Server>(SERVER).unwrap();
    serde_json::from_str::<Drive>(DRIVE).unwrap();
    serde_json::from_str::<Snapshot>(SNAPSHOT).unwrap();
    serde_json::from_str::<Ip>(IP).unwrap();
    serde_json::from_str::<Location>(LOCATION).unwrap();
    serde_json::from_str::<Capabilities>(CAPABILITIES).unwrap();
}

#[test]
fn nesting_beyond_the_parser_limit_is_an_error_not_a_stack_overflow() {
    for depth in [127, 128, 129, 10_000, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        decode_bytes(text.as_bytes());
        let object = format!(
            r#"{{"uuid":"s","runtime":{}null{}}}"#,
            r#"{"nics":"#.repeat(depth),
            "}".repeat(depth)
        );
        let result = serde_json::from_str::<Server>(&object);
        if depth > 200 {
            assert!(result.is_err(), "depth {depth} decoded");
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Through the client: list envelopes, decode errors and error bodies.

/// The stub's programme: the first response, every later response, requests served so far.
type Programme = (Vec<u8>, Vec<u8>, usize);

/// A raw HTTP/1.1 stub: the first request after `set` gets `first`, every later one `rest`.
#[derive(Clone)]
struct Stub {
    url: String,
    state: Arc<Mutex<Programme>>,
}

impl Stub {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/2.0/", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new((Vec::new(), Vec::new(), 0usize)));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let response = {
                        let mut state = shared.lock().unwrap();
                        state.2 += 1;
                        if state.2 == 1 {
                            state.0.clone()
                        } else {
                            state.1.clone()
                        }
                    };
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, state }
    }

    fn set(&self, first: Vec<u8>, rest: Vec<u8>) {
        *self.state.lock().unwrap() = (first, rest, 0);
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().2
    }
}

fn http(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// One runtime, one stub and one client (no retries, tiny backoff) shared by all cases of a property.
struct Harness {
    runtime: tokio::runtime::Runtime,
    stub: Stub,
    client: Client,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stub = runtime.block_on(Stub::start());
        let provider =
            UsernamePasswordProvider::new("a@example.com", SecretString::from("pw-prop-1")).unwrap();
        let options = ClientOptions {
            max_attempts: 1,
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        };
        let client = Client::new(Endpoints::single(&stub.url).unwrap(), Arc::new(provider), options).unwrap();
        Self {
            runtime,
            stub,
            client,
        }
    }

    /// Serves `first` then `rest` and runs every GET operation against it; returns each outcome as
    /// `Ok(())` or the error.
    fn every_get(&self, first: &[u8], rest: &[u8]) -> Vec<(&'static str, Result<(), Error>)> {
        let c = &self.client;
        let all = ListFilter::all();
        let mut out = Vec::new();
        macro_rules! op {
            ($name:literal, $call:expr) => {{
                self.stub.set(first.to_vec(), rest.to_vec());
                let result = self.runtime.block_on(async { $call.await.map(|_| ()) });
                out.push(($name, result));
            }};
        }
        op!("get_server", c.get_server("s1"));
        op!("get_drive", c.get_drive("d1"));
        op!("get_snapshot", c.get_snapshot("sn1"));
        op!("get_ip", c.get_ip("203.0.113.7"));
        op!("capabilities", c.capabilities());
        op!("list_servers", c.list_servers(&all));
        op!("list_servers_detail", c.list_servers_detail(&all));
        op!("list_drives", c.list_drives(&all));
        op!("list_drives_detail", c.list_drives_detail(&all));
        op!("list_snapshots", c.list_snapshots(None));
        op!("list_ips", c.list_ips());
        op!("list_locations", c.list_locations());
        out
    }
}

fn empty_page() -> Vec<u8> {
    http(200, &[], br#"{"meta":{"total_count":0},"objects":[]}"#)
}

/// Success bodies: mutated samples (bare and in envelopes), arbitrary trees, arbitrary bytes, and
/// samples with the marker in every string value.
fn success_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => mutated_sample().prop_map(|(_, v)| serde_json::to_vec(&v).unwrap()),
        3 => mutated_sample().prop_map(|(_, v)| serde_json::to_vec(&envelope(vec![v])).unwrap()),
        2 => json_tree().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (mutated_sample(), any::<prop::sample::Index>()).prop_map(|((_, v), cut)| {
            let text = serde_json::to_vec(&envelope(vec![v])).unwrap();
            text[..cut.index(text.len())].to_vec()
        }),
    ]
}

/// The error-body fields of the first well-formed entry, found independently of the client: the body
/// is a JSON array of objects or one object; an entry is an object with at least one of the three keys
/// whose three values are strings or null; the first such entry counts.
fn documented_first_entry(body: &[u8]) -> Option<(Option<String>, Option<String>, Option<String>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let candidates = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return None,
    };
    let keys = ["error_type", "error_point", "error_message"];
    candidates.into_iter().find_map(|item| {
        let object = item.as_object()?;
        if !keys.iter().any(|k| object.contains_key(*k)) {
            return None;
        }
        let field = |k: &str| match object.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        Some((field(keys[0])?, field(keys[1])?, field(keys[2])?))
    })
}

/// Error bodies: documented arrays and objects with arbitrary field values (the marker, control
/// characters, very long text, wrong types), other JSON, HTML and arbitrary bytes.
fn error_body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just(Value::Null),
        "[a-z ]{0,30}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!(format!("line one\nforged line\u{1b}[31m {MARKER}"))),
        (1usize..5000).prop_map(|n| json!("y".repeat(n))),
        Just(json!(5)),
        Just(json!(["permission"])),
        Just(json!({"nested": MARKER})),
    ];
    let entry = (
        prop::option::of(text.clone()),
        prop::option::of(text.clone()),
        prop::option::of(text),
        prop::option::of(Just(json!(MARKER))),
    )
        .prop_map(|(t, p, m, other)| {
            let mut o = serde_json::Map::new();
            if let Some(t) = t {
                o.insert("error_type".into(), t);
            }
            if let Some(p) = p {
                o.insert("error_point".into(), p);
            }
            if let Some(m) = m {
                o.insert("error_message".into(), m);
            }
            if let Some(x) = other {
                o.insert("detail".into(), x);
            }
            Value::Object(o)
        });
    prop_oneof![
        4 => prop::collection::vec(entry.clone(), 0..4).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => entry.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => json_tree().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => Just(format!("<html><body>{MARKER}</body></html>").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(config(true))]

    #[test]
    fn success_bodies_give_values_or_decode_errors_that_never_quote_the_body(body in success_body()) {
        let h = HARNESS.with(|h| h.clone());
        let marked = String::from_utf8_lossy(&body).contains(MARKER);
        for (op, result) in h.every_get(&http(200, &[("X-Request-Id", "req-p1")], &body), &empty_page()) {
            if let Err(error) = result {
                prop_assert!(
                    matches!(error, Error::Decode { status: 200, .. }),
                    "{}: a 200 gave {:?}", op, error
                );
                prop_assert_eq!(error.request_id(), Some("req-p1"));
                let text = format!("{error} {error:?}");
                prop_assert!(!(marked && text.contains(MARKER)), "{}: {}", op, text);
                prop_assert!(text.len() < 2000, "{}: {} bytes", op, text.len());
            }
        }
    }

    #[test]
    fn error_bodies_keep_only_well_formed_bounded_fields(
        status in prop::sample::select(vec![400u16, 402, 403, 404, 405, 409, 429, 500, 501, 502, 503, 504]),
        body in error_body(),
    ) {
        let h = HARNESS.with(|h| h.clone());
        let response = http(status, &[], &body);
        let expected = documented_first_entry(&body);
        for (op, result) in h.every_get(&response, &response) {
            let error = result.unwrap_err();
            prop_assert_eq!(error.status(), Some(status), "{}: {:?}", op, error);
            let failure = error.api_failure().unwrap();
            let clean = |v: &Option<String>, max: usize| {
                v.as_ref().map(|s| {
                    let mut out: String =
                        s.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
                    if s.chars().count() > max {
                        out.push('…');
                    }
                    out
                })
            };
            let got = (
                failure.error_type.clone(),
                failure.error_point.clone(),
                failure.error_message.clone(),
            );
            match &expected {
                Some((t, p, m)) => prop_assert_eq!(
                    got,
                    (clean(t, 100), clean(p, 100), clean(m, 1000)),
                    "{}", op
                ),
                None => prop_assert_eq!(got, (None, None, None), "{}", op),
            }
            prop_assert!(failure.details.len() <= 20);
            let text = format!("{error}");
            prop_assert!(!text.chars().any(char::is_control), "{}: {:?}", op, text);
            prop_assert!(text.chars().count() < 1400, "{}: {} chars", op, text.chars().count());
            // The marker only ever sits outside the three fields (or inside a wrong type): never shown.
            let marker_in_fields = failure.details.iter().any(|d| {
                [&d.error_type, &d.error_point, &d.error_message]
                    .iter()
                    .any(|f| f.as_deref().is_some_and(|s| s.contains(MARKER)))
            });
            for d in &failure.details {
                for f in [&d.error_type, &d.error_point, &d.error_message].into_iter().flatten() {
                    prop_assert!(!f.chars().any(char::is_control), "{}: {:?}", op, f);
                    prop_assert!(f.chars().count() <= 1001, "{}", op);
                }
            }
            prop_assert!(marker_in_fields || !text.contains(MARKER), "{}: {}", op, text);
            prop_assert!(marker_in_fields || !format!("{error:?}").contains(MARKER), "{}", op);
        }
    }
}

#[test]
fn list_envelopes_truncated_at_every_byte_are_decode_errors() {
    let h = HARNESS.with(|h| h.clone());
    let body = serde_json::to_vec(&envelope(vec![
        serde_json::from_str(DRIVE).unwrap(),
        serde_json::from_str(DRIVE).unwrap(),
    ]))
    .unwrap();
    let c = &h.client;
    for cut in 0..body.len() {
        h.stub.set(http(200, &[], &body[..cut]), empty_page());
        let result = h.runtime.block_on(c.list_drives_detail(&ListFilter::all()));
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "cut at {cut}: {error:?}");
        assert_eq!(h.stub.requests(), 1);
    }
    h.stub.set(http(200, &[], &body), empty_page());
    let drives = h
        .runtime
        .block_on(c.list_drives_detail(&ListFilter::all()))
        .unwrap();
    assert_eq!(drives.len(), 2);
}

#[test]
fn a_huge_error_message_and_request_id_are_bounded() {
    let h = HARNESS.with(|h| h.clone());
    let body = serde_json::to_vec(&json!([{
        "error_type": "validation",
        "error_point": "size",
        "error_message": format!("{}\r\n{}", "m".repeat(1 << 20), MARKER),
    }]))
    .unwrap();
    let long_id = "r".repeat(4096);
    let response = http(400, &[("X-Request-Id", long_id.as_str())], &body);
    h.stub.set(response.clone(), response);
    let error = h.runtime.block_on(h.client.get_drive("d1")).unwrap_err();
    let text = error.to_string();
    assert!(text.chars().count() < 1200, "{} chars", text.chars().count());
    assert!(!text.contains(MARKER), "the cut tail is not kept");
    assert_eq!(error.request_id(), None, "an oversized request id is dropped");
    assert_eq!(error.api_failure().unwrap().error_point.as_deref(), Some("size"));
}

thread_local! {
    static HARNESS: Arc<Harness> = Arc::new(Harness::new());
}
