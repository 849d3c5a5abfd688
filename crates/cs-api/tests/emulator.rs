//! The client against the CloudSigma emulator (crate `cs-emulator`) through its library handle.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use cs_api::{
    Client, ClientOptions, CountingObserver, DriveStatus, Endpoints, Error, ListFilter, NewDrive,
    NewSnapshot, Outcome, ServerStatus, SnapshotCloneRequest, SnapshotStatus, StorageType,
};
use cs_auth::{
    ApiHost, Credentials, CredentialsProvider, Grant, SharedProvider, StaticTokenProvider,
    UsernamePasswordProvider,
};
use cs_emulator::{Config, DriveSeed, Emulator, Fault, FaultAction, NicSeed, RouteMatch, ServerSeed};
use futures::{StreamExt, future::join_all};
use secrecy::SecretString;

const EMAIL: &str = "tenant@example.com";
const PASSWORD: &str = "pw-Secret-4711";
const GIB: u64 = 1024 * 1024 * 1024;

fn fast_options(observer: Arc<CountingObserver>) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        poll_min: Duration::from_millis(10),
        poll_max: Duration::from_millis(50),
        observer,
        ..ClientOptions::default()
    }
}

fn password_provider(password: &str) -> SharedProvider {
    Arc::new(UsernamePasswordProvider::new(EMAIL, SecretString::from(password.to_owned())).unwrap())
}

fn endpoints(emu: &Emulator) -> Endpoints {
    Endpoints::from_templates(
        &emu.api_url_template(),
        Some(&emu.direct_api_url_template()),
        "zrh",
    )
    .unwrap()
}

struct Setup {
    emu: Emulator,
    client: Client,
    observer: Arc<CountingObserver>,
}

async fn setup_with(config: Config, options: impl FnOnce(ClientOptions) -> ClientOptions) -> Setup {
    let emu = Emulator::start_with(config).await.unwrap();
    emu.add_user(EMAIL, PASSWORD);
    let observer = Arc::new(CountingObserver::new());
    let client = Client::new(
        endpoints(&emu),
        password_provider(PASSWORD),
        options(fast_options(observer.clone())),
    )
    .unwrap();
    Setup {
        emu,
        client,
        observer,
    }
}

async fn setup() -> Setup {
    setup_with(Config::default(), |o| o).await
}

fn drive_seed(name: &str) -> DriveSeed {
    DriveSeed {
        name: name.into(),
        size: GIB,
        ..DriveSeed::default()
    }
}

fn server_seed(name: &str) -> ServerSeed {
    ServerSeed {
        name: name.into(),
        ..ServerSeed::default()
    }
}

fn statuses(emu: &Emulator, route: &str) -> Vec<u16> {
    emu.requests()
        .iter()
        .filter(|r| r.route == route)
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn listing_pages_past_20_objects() {
    let s = setup_with(Config::default(), |o| ClientOptions { page_size: 20, ..o }).await;
    let mut server_uuids = BTreeSet::new();
    for i in 0..45 {
        server_uuids.insert(
            s.emu
                .add_server("zrh", EMAIL, server_seed(&format!("srv-{i:02}"))),
        );
    }
    let mut drive_uuids = BTreeSet::new();
    for i in 0..25 {
        drive_uuids.insert(s.emu.add_drive("zrh", EMAIL, drive_seed(&format!("pvc-{i:02}"))));
    }

    let detail = s.client.list_servers_detail(&ListFilter::all()).await.unwrap();
    assert_eq!(
        detail.iter().map(|x| x.uuid.clone()).collect::<BTreeSet<_>>(),
        server_uuids
    );
    assert_eq!(detail.len(), 45);
    assert_eq!(
        s.emu.count("GET /api/2.0/servers/detail/"),
        3,
        "45 servers in pages of 20"
    );
    let short = s.client.list_servers(&ListFilter::all()).await.unwrap();
    assert_eq!(
        short.iter().map(|x| x.uuid.clone()).collect::<BTreeSet<_>>(),
        server_uuids
    );
    assert!(short.iter().all(|x| x.status == ServerStatus::Running));

    let drives = s.client.list_drives_detail(&ListFilter::all()).await.unwrap();
    assert_eq!(
        drives.iter().map(|d| d.uuid.clone()).collect::<BTreeSet<_>>(),
        drive_uuids
    );
    assert!(drives.iter().all(|d| d.size == GIB && d.name.starts_with("pvc-")));
    assert_eq!(
        s.emu.count("GET /api/2.0/drives/detail/"),
        2,
        "25 drives in pages of 20"
    );
    assert_eq!(s.client.list_drives(&ListFilter::all()).await.unwrap().len(), 25);

    // The paged variant: offsets 0, 20, 40 with the total each time, then the end.
    let mut pager = s.client.server_pages(&ListFilter::all()).unwrap();
    let mut offsets = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        assert_eq!(page.total_count, Some(45));
        offsets.push((page.offset, page.objects.len()));
    }
    assert_eq!(offsets, [(0, 20), (20, 20), (40, 5)]);
    // And the stream variant.
    let streamed: Vec<_> = s
        .client
        .drive_pages(&ListFilter::all())
        .unwrap()
        .into_stream()
        .collect()
        .await;
    assert_eq!(
        streamed
            .into_iter()
            .map(|d| d.unwrap().uuid)
            .collect::<BTreeSet<_>>(),
        drive_uuids
    );

    // Every list request carried limit and offset (no default-20 truncation possible).
    for r in s
        .emu
        .requests()
        .iter()
        .filter(|r| r.route.contains("/detail/") || r.route.ends_with("/servers/"))
    {
        let q = r.query.clone().unwrap_or_default();
        assert!(q.contains("limit=20") && q.contains("offset="), "{} {q}", r.route);
    }
}

#[tokio::test]
async fn default_page_size_lists_45_servers_in_one_request() {
    let s = setup().await;
    for i in 0..45 {
        s.emu.add_server("zrh", EMAIL, server_seed(&format!("srv-{i}")));
    }
    assert_eq!(
        s.client
            .list_servers_detail(&ListFilter::all())
            .await
            .unwrap()
            .len(),
        45
    );
    assert_eq!(s.emu.count("GET /api/2.0/servers/detail/"), 1);
}

#[tokio::test]
async fn uuid_and_name_filters_return_only_the_requested_objects() {
    let s = setup().await;
    let uuids: Vec<String> = (0..30)
        .map(|i| s.emu.add_server("zrh", EMAIL, server_seed(&format!("n{i}"))))
        .collect();
    let wanted = vec![uuids[3].clone(), uuids[17].clone(), uuids[29].clone()];
    let got = s
        .client
        .list_servers_detail(&ListFilter::by_uuids(wanted.clone()))
        .await
        .unwrap();
    let got: BTreeSet<String> = got.into_iter().map(|x| x.uuid).collect();
    assert_eq!(got, wanted.iter().cloned().collect::<BTreeSet<_>>());

    let drives: Vec<String> = (0..25)
        .map(|i| s.emu.add_drive("zrh", EMAIL, drive_seed(&format!("pvc-{i}"))))
        .collect();
    let one = s
        .client
        .list_drives_detail(&ListFilter::by_uuids([drives[24].clone()]))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "pvc-24");
    let by_name = s
        .client
        .list_drives_detail(&ListFilter::by_name("pvc-21"))
        .await
        .unwrap();
    assert_eq!(
        by_name.iter().map(|d| d.uuid.as_str()).collect::<Vec<_>>(),
        [drives[21].as_str()]
    );

    // An empty uuid list matches nothing and sends nothing.
    s.emu.reset_log();
    assert!(
        s.client
            .list_servers_detail(&ListFilter::by_uuids(Vec::<String>::new()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.emu.requests().is_empty());
}

#[tokio::test]
async fn every_error_kind_is_typed() {
    let s = setup_with(Config::default(), |o| ClientOptions {
        timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..o
    })
    .await;
    let mine = s.emu.add_server("zrh", EMAIL, server_seed("mine"));
    s.emu.add_user("other@example.com", "other-pw");
    let theirs = s
        .emu
        .add_server("zrh", "other@example.com", server_seed("theirs"));

    // 404 notexist, with the request id.
    let e = s
        .client
        .get_server("11111111-2222-4333-8444-555555555555")
        .await
        .unwrap_err();
    assert!(e.is_not_found() && !e.is_retryable(), "{e}");
    assert_eq!(e.error_type(), Some("notexist"));
    assert!(e.request_id().is_some_and(|id| !id.is_empty()));
    assert!(
        e.api_failure()
            .unwrap()
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("11111111")
    );

    // 403 permission: another user's server.
    let e = s.client.get_server(&theirs).await.unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    assert_eq!(e.error_type(), Some("permission"));

    // 400 validation naming the field.
    let e = s
        .client
        .create_drive(&NewDrive::disk("tiny", 1024))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest(_)), "{e}");
    assert_eq!(e.api_failure().unwrap().error_point.as_deref(), Some("size"));

    // 401: wrong password.
    let bad = Client::new(
        endpoints(&s.emu),
        password_provider("wrong"),
        fast_options(s.observer.clone()),
    )
    .unwrap();
    let e = bad.get_server(&mine).await.unwrap_err();
    assert!(
        matches!(e, Error::Unauthorized(_)) && e.status() == Some(401),
        "{e}"
    );

    // Injected statuses.
    let item = "GET /api/2.0/servers/{uuid}/";
    let cases: [(u16, &str); 5] = [
        (402, "payment_required"),
        (503, "conflict"),
        (429, "rate_limited"),
        (500, "server"),
        (405, "unexpected_status"),
    ];
    for (status, label) in cases {
        let id = s.emu.inject(Fault::status(RouteMatch::route(item), status));
        let e = s.client.get_server(&mine).await.unwrap_err();
        assert_eq!((e.metric_label(), e.status()), (label, Some(status)), "{e}");
        s.emu.clear_fault(id);
    }
    let id = s.emu.inject(Fault::new(
        RouteMatch::route(item),
        FaultAction::Status {
            status: 503,
            error_type: Some("concurrency".into()),
            delay: Duration::ZERO,
        },
    ));
    let e = s.client.get_server(&mine).await.unwrap_err();
    assert!(
        matches!(e, Error::Conflict(_)) && e.is_retryable() && e.error_type() == Some("concurrency"),
        "{e}"
    );
    s.emu.clear_fault(id);

    // Timeout and transport errors.
    let id = s.emu.inject(Fault::new(
        RouteMatch::route(item),
        FaultAction::Delay(Duration::from_secs(2)),
    ));
    let e = s.client.get_server(&mine).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }) && e.is_retryable(), "{e}");
    s.emu.clear_fault(id);
    let id = s
        .emu
        .inject(Fault::new(RouteMatch::route(item), FaultAction::CloseConnection));
    let e = s.client.get_server(&mine).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }) && e.is_retryable(), "{e}");
    s.emu.clear_fault(id);
    assert_eq!(s.observer.count("GET", "servers/{uuid}/", Outcome::Timeout), 2);
    assert_eq!(s.observer.count("GET", "servers/{uuid}/", Outcome::Transport), 2);

    // And after all that, the server is still readable.
    assert_eq!(s.client.get_server(&mine).await.unwrap().name, "mine");
}

#[tokio::test]
async fn delete_answers_204_with_an_empty_body() {
    let s = setup().await;
    let drive = s.emu.add_drive("zrh", EMAIL, drive_seed("doomed"));
    s.client.delete_drive(&drive).await.unwrap();
    assert_eq!(statuses(&s.emu, "DELETE /api/2.0/drives/{uuid}/"), [204]);
    assert!(s.emu.drive_json(&drive).is_none());
    assert!(s.client.get_drive(&drive).await.unwrap_err().is_not_found());
    // Deleting again: 404, not retried.
    assert!(s.client.delete_drive(&drive).await.unwrap_err().is_not_found());
    assert_eq!(statuses(&s.emu, "DELETE /api/2.0/drives/{uuid}/"), [204, 404]);
}

#[tokio::test]
async fn injected_503_and_504_are_retried_until_success() {
    let s = setup().await;
    for i in 0..3 {
        s.emu.add_server("zrh", EMAIL, server_seed(&format!("s{i}")));
    }
    let route = "GET /api/2.0/servers/detail/";
    s.emu
        .inject(Fault::status(RouteMatch::route(route), 503).times(1));
    s.emu
        .inject(Fault::status(RouteMatch::route(route), 504).times(1));
    let servers = s.client.list_servers_detail(&ListFilter::all()).await.unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(statuses(&s.emu, route), [503, 504, 200]);
    assert_eq!(
        s.observer.count("GET", "servers/detail/", Outcome::Status(503)),
        1
    );
    assert_eq!(
        s.observer.count("GET", "servers/detail/", Outcome::Status(504)),
        1
    );
    assert_eq!(
        s.observer.count("GET", "servers/detail/", Outcome::Status(200)),
        1
    );

    // A PUT is idempotent: retried too.
    let mut server = servers.into_iter().next().unwrap();
    server.meta.insert("k".into(), "v".into());
    s.emu
        .inject(Fault::status(RouteMatch::route("PUT /api/2.0/servers/{uuid}/"), 502).times(2));
    let updated = s.client.update_server(&server).await.unwrap();
    assert_eq!(updated.meta.get("k").map(String::as_str), Some("v"));
    assert_eq!(statuses(&s.emu, "PUT /api/2.0/servers/{uuid}/"), [502, 502, 200]);

    // Bounded: a fault that never clears is given up after max_attempts (4).
    s.emu.inject(Fault::status(
        RouteMatch::route("GET /api/2.0/servers/{uuid}/"),
        503,
    ));
    let e = s.client.get_server(&server.uuid).await.unwrap_err();
    assert!(matches!(e, Error::Conflict(_)));
    assert_eq!(s.emu.count("GET /api/2.0/servers/{uuid}/"), 4);
}

#[tokio::test]
async fn no_retry_on_400_or_403() {
    let s = setup().await;
    let uuid = s.emu.add_server("zrh", EMAIL, server_seed("x"));
    let route = "GET /api/2.0/servers/{uuid}/";
    for status in [400, 403] {
        s.emu.reset_log();
        let id = s.emu.inject(Fault::status(RouteMatch::route(route), status));
        let e = s.client.get_server(&uuid).await.unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert!(!e.is_retryable());
        assert_eq!(
            statuses(&s.emu, route),
            [status],
            "exactly one attempt for {status}"
        );
        s.emu.clear_fault(id);
    }
}

#[tokio::test]
async fn post_is_retried_only_on_a_concurrency_rejection() {
    let s = setup().await;
    let uuid = s.emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            status: "stopped".into(),
            ..server_seed("p")
        },
    );
    let route = "POST /api/2.0/servers/{uuid}/action/";
    for status in [500, 504] {
        s.emu.reset_log();
        let id = s
            .emu
            .inject(Fault::status(RouteMatch::route(route), status).times(1));
        let e = s.client.start_server(&uuid).await.unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert_eq!(
            statuses(&s.emu, route),
            [status],
            "a POST is not repeated after a {status}"
        );
        s.emu.clear_fault(id);
    }
    s.emu.reset_log();
    s.emu.inject(
        Fault::new(
            RouteMatch::route(route),
            FaultAction::Status {
                status: 503,
                error_type: Some("concurrency".into()),
                delay: Duration::ZERO,
            },
        )
        .times(1),
    );
    let result = s.client.start_server(&uuid).await.unwrap();
    assert_eq!(result.action.as_deref(), Some("start"));
    assert_eq!(statuses(&s.emu, route), [503, 202]);
    assert_eq!(
        s.observer
            .count("POST", "servers/{uuid}/action/?do=start", Outcome::Status(202)),
        1
    );
}

/// Yields a wrong password until invalidated, then the right one (or always the wrong one).
#[derive(Debug)]
struct StaleThenFresh {
    invalidations: AtomicUsize,
    recovers: bool,
}

#[async_trait]
impl CredentialsProvider for StaleThenFresh {
    async fn credentials(&self) -> cs_auth::Result<Grant> {
        let fresh = self.recovers && self.invalidations.load(Ordering::SeqCst) > 0;
        let password = if fresh { PASSWORD } else { "stale-password" };
        Ok(Grant {
            credentials: Credentials::Basic {
                username: EMAIL.into(),
                password: SecretString::from(password.to_owned()),
            },
            host: ApiHost::Regular,
        })
    }

    async fn invalidate(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }

    fn name(&self) -> &'static str {
        "test-stale-then-fresh"
    }
}

#[tokio::test]
async fn a_401_invalidates_once_and_retries_once() {
    let s = setup().await;
    let uuid = s.emu.add_server("zrh", EMAIL, server_seed("auth"));
    let route = "GET /api/2.0/servers/{uuid}/";

    let recovering = Arc::new(StaleThenFresh {
        invalidations: AtomicUsize::new(0),
        recovers: true,
    });
    let client = Client::new(
        endpoints(&s.emu),
        recovering.clone(),
        fast_options(s.observer.clone()),
    )
    .unwrap();
    assert_eq!(client.get_server(&uuid).await.unwrap().name, "auth");
    assert_eq!(recovering.invalidations.load(Ordering::SeqCst), 1);
    assert_eq!(statuses(&s.emu, route), [401, 200]);

    // Always rejected: exactly one invalidate and one retry, then the typed error. Also for a POST.
    s.emu.reset_log();
    let stuck = Arc::new(StaleThenFresh {
        invalidations: AtomicUsize::new(0),
        recovers: false,
    });
    let client = Client::new(endpoints(&s.emu), stuck.clone(), fast_options(s.observer.clone())).unwrap();
    let e = client.get_server(&uuid).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e}");
    assert_eq!(stuck.invalidations.load(Ordering::SeqCst), 1);
    assert_eq!(statuses(&s.emu, route), [401, 401]);
    let e = client.stop_server(&uuid).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e}");
    assert_eq!(stuck.invalidations.load(Ordering::SeqCst), 2);
    assert_eq!(
        statuses(&s.emu, "POST /api/2.0/servers/{uuid}/action/"),
        [401, 401]
    );
}

#[tokio::test]
async fn direct_grants_go_to_the_direct_host() {
    let s = setup().await;
    let uuid = s.emu.add_server("zrh", EMAIL, server_seed("via-direct"));
    let token = s.emu.issue_token("zrh", EMAIL);
    let provider: SharedProvider =
        Arc::new(StaticTokenProvider::new(SecretString::from(token), ApiHost::Direct).unwrap());
    let client = Client::new(endpoints(&s.emu), provider, fast_options(s.observer.clone())).unwrap();
    let servers = client.list_servers_detail(&ListFilter::all()).await.unwrap();
    assert_eq!(
        servers.iter().map(|x| x.uuid.as_str()).collect::<Vec<_>>(),
        [uuid.as_str()]
    );
    let record = s
        .emu
        .requests()
        .into_iter()
        .find(|r| r.route == "GET /direct/api/2.0/servers/detail/")
        .unwrap();
    assert_eq!(record.user.as_deref(), Some(EMAIL));
    assert_eq!(record.status, 200);
}

#[tokio::test]
async fn resize_is_refused_on_a_mounted_running_drive() {
    let s = setup().await;
    let drive = s.emu.add_drive("zrh", EMAIL, drive_seed("data"));
    let server = s.emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            drives: vec![drive.clone()],
            ..server_seed("runner")
        },
    );
    assert_eq!(
        s.client.get_drive(&drive).await.unwrap().status,
        DriveStatus::Mounted
    );

    let e = s.client.resize_drive(&drive, 2 * GIB).await.unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    assert!(
        e.api_failure()
            .unwrap()
            .error_message
            .as_deref()
            .unwrap_or_default()
            .contains("running guest"),
        "{e}"
    );
    assert_eq!(
        statuses(&s.emu, "POST /api/2.0/drives/{uuid}/action/"),
        [403],
        "a 403 is not retried"
    );
    assert_eq!(s.client.get_drive(&drive).await.unwrap().size, GIB);

    // Stopped: the resize goes through and the drive settles back to mounted with the new size.
    s.client.stop_server(&server).await.unwrap();
    let wait = Duration::from_secs(5);
    let mut stopped = false;
    for _ in 0..100 {
        if s.client.get_server(&server).await.unwrap().status == ServerStatus::Stopped {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped);
    let resized = s.client.resize_drive(&drive, 2 * GIB).await.unwrap();
    assert_eq!(resized.size, 2 * GIB);
    let settled = s
        .client
        .wait_for_drive_status(&drive, DriveStatus::Mounted, wait)
        .await
        .unwrap();
    assert_eq!(settled.size, 2 * GIB);
}

#[tokio::test]
async fn attach_picks_distinct_channels_and_detach_waits_until_unmounted() {
    let config = Config {
        detach_delay: Duration::from_millis(300),
        ..Config::default()
    };
    let s = setup_with(config, |o| o).await;
    let boot = s.emu.add_drive("zrh", EMAIL, drive_seed("boot"));
    let server = s.emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            drives: vec![boot.clone()],
            nics: vec![NicSeed::Public {
                ip_v4: Some(Ipv4Addr::new(203, 0, 113, 10)),
                ip_v6: None,
            }],
            ..server_seed("node-1")
        },
    );
    let vols: Vec<String> = (0..3)
        .map(|i| s.emu.add_drive("zrh", EMAIL, drive_seed(&format!("pvc-{i}"))))
        .collect();

    // Three attaches at once on one running server: serialised, each on its own channel.
    let attached = join_all(vols.iter().map(|v| s.client.attach_drive(&server, v))).await;
    let channels: BTreeSet<String> = attached.into_iter().map(|r| r.unwrap().dev_channel).collect();
    assert_eq!(
        channels,
        ["0:1", "0:2", "0:3"].map(String::from).into_iter().collect()
    );
    let def = s.client.get_server(&server).await.unwrap();
    assert_eq!(def.drives.len(), 4);
    assert_eq!(def.drive(&boot).unwrap().dev_channel, "0:0");
    assert_eq!(def.nics.len(), 1, "the full PUT kept the NIC");
    assert_eq!(def.runtime_addresses()[0].ip.to_string(), "203.0.113.10");
    for v in &vols {
        let d = s
            .client
            .wait_for_drive_status(v, DriveStatus::Mounted, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(d.is_mounted_on(&server));
    }

    // Attaching again is a no-op returning the existing channel.
    let puts = s.emu.count("PUT /api/2.0/servers/{uuid}/");
    let again = s.client.attach_drive(&server, &vols[1]).await.unwrap();
    assert_eq!(
        Some(again.dev_channel.as_str()),
        def.drive(&vols[1]).map(|d| d.dev_channel.as_str())
    );
    assert_eq!(s.emu.count("PUT /api/2.0/servers/{uuid}/"), puts);

    // Detach returns only once the drive is unmounted and no longer lists the server.
    s.client
        .detach_drive(&server, &vols[1], Duration::from_secs(5))
        .await
        .unwrap();
    let raw = s.emu.drive_json(&vols[1]).unwrap();
    assert_eq!(raw["status"], "unmounted");
    assert_eq!(raw["mounted_on"], serde_json::json!([]));
    assert!(
        s.emu.count("GET /api/2.0/drives/{uuid}/") > 3,
        "it polled while the detach completed"
    );
    let def = s.client.get_server(&server).await.unwrap();
    assert!(def.drive(&vols[1]).is_none() && def.drives.len() == 3);
    // Detaching a drive that is not attached: no write, returns at once.
    let puts = s.emu.count("PUT /api/2.0/servers/{uuid}/");
    s.client
        .detach_drive(&server, &vols[1], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(s.emu.count("PUT /api/2.0/servers/{uuid}/"), puts);

    // The freed channel is reused first.
    let next = s.client.attach_drive(&server, &vols[1]).await.unwrap();
    assert_eq!(next.dev_channel, "0:2");
}

#[tokio::test]
async fn attach_refuses_a_full_server_and_a_wait_times_out_with_the_last_status() {
    let s = setup().await;
    let drives: Vec<String> = (0..16)
        .map(|i| s.emu.add_drive("zrh", EMAIL, drive_seed(&format!("d{i}"))))
        .collect();
    let server = s.emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            drives: drives.clone(),
            ..server_seed("full")
        },
    );
    let extra = s.emu.add_drive("zrh", EMAIL, drive_seed("one-too-many"));
    let e = s.client.attach_drive(&server, &extra).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NoFreeChannel {
                drives: 16,
                max: 16,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(s.emu.count("PUT /api/2.0/servers/{uuid}/"), 0);

    let e = s
        .client
        .wait_for_drive_status(&drives[0], DriveStatus::Unmounted, Duration::from_millis(150))
        .await
        .unwrap_err();
    match e {
        Error::WaitTimeout {
            last_status, wanted, ..
        } => {
            assert_eq!(last_status, DriveStatus::Mounted);
            assert_eq!(wanted, "unmounted");
        }
        other => panic!("expected a wait timeout, got {other}"),
    }
}

#[tokio::test]
async fn drives_create_update_clone_and_snapshots() {
    let s = setup().await;
    let created = s
        .client
        .create_drive(&NewDrive::disk("pvc-new", GIB))
        .await
        .unwrap();
    assert_eq!((created.name.as_str(), created.size), ("pvc-new", GIB));
    let ready = s
        .client
        .wait_for_drive_status(&created.uuid, DriveStatus::Unmounted, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ready.status.is_ready());

    let mut edited = ready.clone();
    edited.meta.insert("pvc".into(), "ns/claim".into());
    let updated = s.client.update_drive(&edited).await.unwrap();
    assert_eq!(updated.meta.get("pvc").map(String::as_str), Some("ns/claim"));

    let clone = s
        .client
        .clone_drive(
            &created.uuid,
            &cs_api::CloneDrive {
                name: Some("pvc-copy".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(clone.name, "pvc-copy");
    assert_ne!(clone.uuid, created.uuid);
    s.client
        .wait_for_drive_status(&clone.uuid, DriveStatus::Unmounted, Duration::from_secs(5))
        .await
        .unwrap();

    let snap = s
        .client
        .create_snapshot(&NewSnapshot {
            drive: created.uuid.clone(),
            name: "snap-1".into(),
            meta: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(
        snap.drive.as_ref().map(|d| d.uuid.as_str()),
        Some(created.uuid.as_str())
    );
    let of_drive = s.client.list_snapshots(Some(&created.uuid)).await.unwrap();
    assert_eq!(
        of_drive.iter().map(|x| x.uuid.as_str()).collect::<Vec<_>>(),
        [snap.uuid.as_str()]
    );
    assert!(
        s.client
            .list_snapshots(Some(&clone.uuid))
            .await
            .unwrap()
            .is_empty()
    );
    let mut available = false;
    for _ in 0..100 {
        if s.client.get_snapshot(&snap.uuid).await.unwrap().status == SnapshotStatus::Available {
            available = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(available);
    s.client.delete_snapshot(&snap.uuid).await.unwrap();
    assert!(
        s.client
            .get_snapshot(&snap.uuid)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(s.client.list_snapshots(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn clone_snapshot_makes_a_drive_of_at_least_the_source_size() {
    let config = Config {
        snapshot_delay: Duration::from_millis(300),
        ..Config::default()
    };
    let s = setup_with(config, |o| o).await;
    let source = s.emu.add_drive(
        "zrh",
        EMAIL,
        DriveSeed {
            name: "data".into(),
            size: 2 * GIB,
            storage_type: "nvme".into(),
            ..DriveSeed::default()
        },
    );
    let snap = s
        .client
        .create_snapshot(&NewSnapshot {
            drive: source.clone(),
            name: "nightly".into(),
            meta: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(snap.status, SnapshotStatus::Creating);
    // Not available yet: refused in the current state.
    let e = s
        .client
        .clone_snapshot(&snap.uuid, &SnapshotCloneRequest::new("too-early", 2 * GIB))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    assert!(e.to_string().contains("creating"), "{e}");
    let mut available = false;
    for _ in 0..100 {
        if s.client.get_snapshot(&snap.uuid).await.unwrap().status == SnapshotStatus::Available {
            available = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(available);

    // Smaller than the source drive: a 400 naming `size`, nothing created.
    let e = s
        .client
        .clone_snapshot(&snap.uuid, &SnapshotCloneRequest::new("too-small", GIB))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest(_)), "{e}");
    assert_eq!(
        e.api_failure().and_then(|f| f.error_point.as_deref()),
        Some("size")
    );
    assert_eq!(s.client.list_drives(&ListFilter::all()).await.unwrap().len(), 1);

    let request = SnapshotCloneRequest {
        meta: [("csi_source_snapshot", snap.uuid.as_str())]
            .into_iter()
            .collect(),
        ..SnapshotCloneRequest::new("restored", 3 * GIB)
    };
    let drive = s.client.clone_snapshot(&snap.uuid, &request).await.unwrap();
    assert_eq!(drive.status, DriveStatus::CloningDst);
    assert_eq!((drive.name.as_str(), drive.size), ("restored", 3 * GIB));
    assert_eq!(drive.storage_type, Some(StorageType::Nvme), "inherited");
    assert_eq!(
        drive.meta.get("csi_source_snapshot").map(String::as_str),
        Some(snap.uuid.as_str())
    );
    assert_ne!(drive.uuid, source);
    let ready = s
        .client
        .wait_for_drive_status(&drive.uuid, DriveStatus::Unmounted, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ready.size, 3 * GIB);
    // Exactly the source size is fine.
    let same = s
        .client
        .clone_snapshot(&snap.uuid, &SnapshotCloneRequest::new("same-size", 2 * GIB))
        .await
        .unwrap();
    assert_eq!(same.size, 2 * GIB);

    // Unknown and foreign snapshots.
    let e = s
        .client
        .clone_snapshot(
            "11111111-2222-4333-8444-555555555555",
            &SnapshotCloneRequest::new("x", GIB),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    s.emu.add_user("other@example.com", "other-pw");
    let other = Client::new(
        endpoints(&s.emu),
        Arc::new(UsernamePasswordProvider::new("other@example.com", SecretString::from("other-pw")).unwrap()),
        fast_options(Arc::new(CountingObserver::new())),
    )
    .unwrap();
    let e = other
        .clone_snapshot(&snap.uuid, &SnapshotCloneRequest::new("stolen", 2 * GIB))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e}");
    assert_eq!(e.error_type(), Some("permission"));

    // Bad arguments are refused before any request.
    let route = "POST /api/2.0/snapshots/{uuid}/action/";
    let before = s.emu.count(route);
    for (uuid, request) in [
        ("", SnapshotCloneRequest::new("x", GIB)),
        (snap.uuid.as_str(), SnapshotCloneRequest::new("", GIB)),
        (snap.uuid.as_str(), SnapshotCloneRequest::new("x", 0)),
    ] {
        let e = s.client.clone_snapshot(uuid, &request).await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    assert_eq!(s.emu.count(route), before);
    // Every clone was one POST, none retried.
    assert_eq!(s.emu.count(route), 6);
}

#[tokio::test]
async fn server_actions_ips_locations_and_capabilities() {
    let s = setup().await;
    let uuid = s.emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            nics: vec![NicSeed::Public {
                ip_v4: Some(Ipv4Addr::new(198, 51, 100, 7)),
                ip_v6: None,
            }],
            ..server_seed("web")
        },
    );
    let server = s.client.get_server(&uuid).await.unwrap();
    assert_eq!(
        server
            .runtime_addresses()
            .iter()
            .map(|a| a.ip.to_string())
            .collect::<Vec<_>>(),
        ["198.51.100.7"]
    );
    let ips = s.client.list_ips().await.unwrap();
    assert!(ips.iter().any(|ip| ip.uuid == "198.51.100.7"), "{ips:?}");

    assert_eq!(
        s.client.shutdown_server(&uuid).await.unwrap().action.as_deref(),
        Some("shutdown")
    );
    let locations = s.client.list_locations().await.unwrap();
    assert!(
        locations
            .iter()
            .any(|l| l.id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case("zrh"))),
        "{locations:?}"
    );
    let caps = s.client.capabilities().await.unwrap();
    assert!(
        caps.drive_size_limits(&cs_api::StorageType::Dssd)
            .and_then(|l| l.min_size)
            .is_some(),
        "{caps:?}"
    );
}
