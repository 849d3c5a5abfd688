//! End to end: the real `ccm` binary against the genuine local kube-apiserver and the CloudSigma
//! emulator, with impersonation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::{collections::BTreeSet, net::Ipv4Addr, time::Duration};

use cs_emulator::{Fault, FaultAction, RouteMatch};
use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};
use support::*;

fn addresses(node: &k8s_openapi::api::core::v1::Node) -> Vec<(String, String)> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.type_, a.address))
        .collect()
}

#[tokio::test]
async fn e2e_ccm_initializes_nodes_and_reports_blocked_ones() {
    let env = env().await;
    let web = env.server("web-1", Ipv4Addr::new(203, 0, 113, 10));
    let db = env.server("db-1", Ipv4Addr::new(203, 0, 113, 11));
    env.register("web-1", None, None).await;
    env.register("db-1", Some(&format!("cloudsigma://{db}")), Some("203.0.113.11"))
        .await;
    env.register("ghost", None, None).await;
    env.register("wrong-ip", Some(&format!("cloudsigma://{web}")), Some("10.9.9.9"))
        .await;
    let ccm = env.spawn_ccm(&[]);

    for (name, uuid, ip) in [("web-1", &web, "203.0.113.10"), ("db-1", &db, "203.0.113.11")] {
        let node = wait_for(
            Duration::from_secs(30),
            &format!("{name} initialized"),
            || async { env.node(name).await.filter(|n| !has_taint(n, UNINITIALIZED)) },
        )
        .await;
        let spec = node.spec.clone().unwrap();
        assert_eq!(
            spec.provider_id.as_deref(),
            Some(format!("cloudsigma://{uuid}").as_str())
        );
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["node.kubernetes.io/instance-type"], "cpu-2000-mem-4096");
        assert_eq!(labels["topology.kubernetes.io/region"], REGION);
        assert_eq!(labels["topology.kubernetes.io/zone"], REGION);
        assert_eq!(labels["example.com/team"], "e2e", "other labels are kept");
        assert_eq!(
            addresses(&node),
            vec![
                ("ExternalIP".to_owned(), ip.to_owned()),
                ("Hostname".to_owned(), name.to_owned())
            ]
        );
    }

    // The two blocked nodes keep their taint and get a Warning event naming the cause.
    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
    for (name, reason, text) in [
        ("ghost", "ServerNameNotFound", "no server is named \"ghost\""),
        ("wrong-ip", "ProvidedNodeIPNotFound", "10.9.9.9"),
    ] {
        let ev = wait_for(
            Duration::from_secs(20),
            &format!("{reason} event on {name}"),
            || async {
                let list = events
                    .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                    .await
                    .unwrap();
                list.items
                    .into_iter()
                    .find(|e| e.reason.as_deref() == Some(reason))
            },
        )
        .await;
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert!(
            ev.message.as_deref().unwrap_or_default().contains(text),
            "{:?}",
            ev.message
        );
        let node = env.node(name).await.unwrap();
        assert!(has_taint(&node, UNINITIALIZED), "{name} must stay tainted");
        assert!(addresses(&node).is_empty(), "{name} must not get addresses");
    }
    // The event of the IP mismatch also lists the addresses that were seen.
    let mismatch = events
        .list(&ListParams::default().fields("involvedObject.name=wrong-ip"))
        .await
        .unwrap();
    assert!(
        mismatch
            .items
            .iter()
            .any(|e| e.message.as_deref().unwrap_or_default().contains("203.0.113.10"))
    );

    // The gauge of tainted Nodes counts the two blocked ones well before the first address refresh
    // (5 minutes by default): other tests' Nodes may add to it, never take from it.
    wait_for(
        Duration::from_secs(10),
        "cloudsigma_ccm_uninitialized_nodes >= 2",
        || async { (ccm.metric("cloudsigma_ccm_uninitialized_nodes").await >= 2.0).then_some(()) },
    )
    .await;

    // Exactly two writes per initialized node, and the metric says so.
    assert_eq!(
        ccm.metric("cloudsigma_ccm_node_writes_total{kind=\"status\"}")
            .await,
        2.0
    );
    assert_eq!(
        ccm.metric("cloudsigma_ccm_node_writes_total{kind=\"update\"}")
            .await,
        2.0
    );

    // Once the server appears, the blocked node initializes (retry with backoff).
    env.server("ghost", Ipv4Addr::new(203, 0, 113, 12));
    wait_for(
        Duration::from_secs(30),
        "ghost initialized after its server appeared",
        || async { env.node("ghost").await.filter(|n| !has_taint(n, UNINITIALIZED)) },
    )
    .await;
    ccm.assert_no_secrets(&env.client, &[CLIENT_SECRET, PASSWORD])
        .await;
}

/// Impersonation failing at the OAuth step with legacy credentials configured: the fallback serves the
/// legacy account (on the regular host), nodes initialize, and neither secret leaks.
#[tokio::test]
async fn e2e_ccm_falls_back_to_legacy_when_oauth_is_down() {
    let env = env().await;
    env.server("fb-1", Ipv4Addr::new(203, 0, 113, 90));
    env.register("fb-1", None, None).await;
    env.emulator.inject(Fault {
        route: RouteMatch::path_contains("/oauth/"),
        method: None,
        action: FaultAction::Status {
            status: 503,
            error_type: None,
            delay: Duration::ZERO,
        },
        times: None,
    });
    let ccm = env.spawn_ccm(&["--username", USER, "--password", PASSWORD]);
    wait_for(
        Duration::from_secs(60),
        "initialized through the legacy fallback",
        || async { env.node("fb-1").await.filter(|n| !has_taint(n, UNINITIALIZED)) },
    )
    .await;
    assert!(
        env.emulator.count("GET /api/2.0/servers/detail/") >= 1,
        "legacy calls go to the regular host"
    );
    assert!(
        ccm.metric("cloudsigma_auth_credentials_served_total{path=\"secondary\"}")
            .await
            >= 1.0
    );
    ccm.assert_no_secrets(&env.client, &[CLIENT_SECRET, PASSWORD])
        .await;
}

#[tokio::test]
async fn e2e_ccm_shutdown_taint_follows_the_vm() {
    let env = env().await;
    let uuid = env.server("worker-1", Ipv4Addr::new(203, 0, 113, 20));
    env.register("worker-1", None, None).await;
    let _ccm = env.spawn_ccm(&["--node-monitor-period", "1s"]);
    wait_for(Duration::from_secs(30), "initialized", || async {
        env.node("worker-1")
            .await
            .filter(|n| !has_taint(n, UNINITIALIZED))
    })
    .await;

    env.emulator.set_server_status(&uuid, "stopped");
    env.set_ready("worker-1", false).await;
    wait_for(Duration::from_secs(20), "shutdown taint added", || async {
        env.node("worker-1").await.filter(|n| has_taint(n, SHUTDOWN))
    })
    .await;

    env.emulator.set_server_status(&uuid, "running");
    let node = wait_for(Duration::from_secs(20), "shutdown taint removed", || async {
        env.node("worker-1").await.filter(|n| !has_taint(n, SHUTDOWN))
    })
    .await;
    assert!(!has_taint(&node, UNINITIALIZED));
    // The address survived the stopped period (a stopped server reports none; the node keeps its list).
    assert_eq!(
        addresses(&node)[0],
        ("ExternalIP".to_owned(), "203.0.113.20".to_owned())
    );
}

#[tokio::test]
async fn e2e_ccm_deletes_the_node_of_a_gone_vm_after_the_grace_period() {
    let env = env().await;
    let gone = env.server("gone-1", Ipv4Addr::new(203, 0, 113, 30));
    let stays = env.server("stays-1", Ipv4Addr::new(203, 0, 113, 31));
    env.register("gone-1", None, None).await;
    env.register("stays-1", None, None).await;
    let _ccm = env.spawn_ccm(&["--node-monitor-period", "500ms", "--node-delete-grace", "3s"]);
    for n in ["gone-1", "stays-1"] {
        wait_for(Duration::from_secs(30), "initialized", || async {
            env.node(n).await.filter(|n| !has_taint(n, UNINITIALIZED))
        })
        .await;
        env.set_ready(n, false).await;
    }
    env.emulator.delete_server(&gone);
    let deleted_at = std::time::Instant::now();
    wait_for(
        Duration::from_secs(30),
        "node of the deleted VM removed",
        || async { env.node("gone-1").await.is_none().then_some(()) },
    )
    .await;
    assert!(
        deleted_at.elapsed() >= Duration::from_secs(3),
        "deleted before the grace period: {:?}",
        deleted_at.elapsed()
    );
    assert!(
        env.node("stays-1").await.is_some(),
        "a NotReady node whose VM exists stays"
    );
    // Two direct GETs of the gone server answered 404 notexist before the deletion.
    assert!(env.emulator.count("GET /direct/api/2.0/servers/{uuid}/") >= 2);
    let _ = stays;
}

#[tokio::test]
async fn e2e_ccm_deletion_can_be_disabled() {
    let env = env().await;
    let gone = env.server("gone-2", Ipv4Addr::new(203, 0, 113, 32));
    env.register("gone-2", None, None).await;
    let _ccm = env.spawn_ccm(&[
        "--node-monitor-period",
        "500ms",
        "--node-delete-grace",
        "1s",
        "--disable-node-deletion",
    ]);
    wait_for(Duration::from_secs(30), "initialized", || async {
        env.node("gone-2").await.filter(|n| !has_taint(n, UNINITIALIZED))
    })
    .await;
    env.set_ready("gone-2", false).await;
    env.emulator.delete_server(&gone);
    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
    wait_for(Duration::from_secs(20), "ServerGone event", || async {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=gone-2"))
            .await
            .unwrap();
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ServerGone"))
    })
    .await;
    assert!(env.node("gone-2").await.is_some());
}

/// Faults for the rest of the run: nothing is deleted, nothing is untainted. Then the faults clear and
/// everything the faults held back happens, proving the test could see it.
async fn faults_keep_everything(status: u16) {
    let env = env().await;
    let a = env.server("fault-a", Ipv4Addr::new(203, 0, 113, 40));
    let gone = env.server("fault-gone", Ipv4Addr::new(203, 0, 113, 41));
    env.register("fault-a", None, None).await;
    env.register("fault-gone", None, None).await;
    let ccm = env.spawn_ccm(&[
        "--node-monitor-period",
        "500ms",
        "--node-delete-grace",
        "1s",
        "--server-cache-ttl",
        "200ms",
    ]);
    for n in ["fault-a", "fault-gone"] {
        wait_for(Duration::from_secs(30), "initialized", || async {
            env.node(n).await.filter(|n| !has_taint(n, UNINITIALIZED))
        })
        .await;
        env.set_ready(n, false).await;
    }
    // Every CloudSigma API call now fails (both hosts, every route).
    env.emulator.inject(Fault {
        route: RouteMatch::path_contains("/api/2.0/"),
        method: None,
        action: FaultAction::Status {
            status,
            error_type: None,
            delay: Duration::ZERO,
        },
        times: None,
    });
    env.emulator.delete_server(&gone);
    let _ = a;
    let late = env.server("fault-late", Ipv4Addr::new(203, 0, 113, 42));
    env.register("fault-late", Some(&format!("cloudsigma://{late}")), None)
        .await;
    let before = env.emulator.requests().len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = env.emulator.requests().len() - before;
    assert!(
        env.node("fault-gone").await.is_some(),
        "HTTP {status} must never delete a node"
    );
    assert!(
        has_taint(&env.node("fault-late").await.unwrap(), UNINITIALIZED),
        "HTTP {status} must never untaint"
    );
    assert!(addresses(&env.node("fault-late").await.unwrap()).is_empty());
    // Backoff bounds the request rate during the outage (retries included).
    assert!(
        during < 200,
        "{during} CloudSigma requests in 8 s under HTTP {status}"
    );
    assert!(ccm.ready().await, "a ready ccm stays ready through an outage");

    env.emulator.clear_faults();
    wait_for(
        Duration::from_secs(40),
        "late node initialized after the faults cleared",
        || async {
            env.node("fault-late")
                .await
                .filter(|n| !has_taint(n, UNINITIALIZED))
        },
    )
    .await;
    wait_for(
        Duration::from_secs(20),
        "gone node deleted after the faults cleared",
        || async { env.node("fault-gone").await.is_none().then_some(()) },
    )
    .await;
    assert!(env.node("fault-a").await.is_some());
}

#[tokio::test]
async fn e2e_ccm_403_never_deletes_or_untaints() {
    faults_keep_everything(403).await;
}

#[tokio::test]
async fn e2e_ccm_503_never_deletes_or_untaints() {
    faults_keep_everything(503).await;
}

#[tokio::test]
async fn e2e_ccm_faults_from_the_start_keep_it_unready() {
    let env = env().await;
    env.server("early-1", Ipv4Addr::new(203, 0, 113, 50));
    env.register("early-1", None, None).await;
    env.emulator.inject(Fault {
        route: RouteMatch::path_contains("/api/2.0/"),
        method: None,
        action: FaultAction::Status {
            status: 403,
            error_type: None,
            delay: Duration::ZERO,
        },
        times: None,
    });
    let mut ccm = env.spawn_ccm(&[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ccm.exited().is_none(),
        "transient CloudSigma errors at start must not crash the ccm"
    );
    assert!(
        !ccm.ready().await,
        "not ready before the first successful CloudSigma call"
    );
    assert!(has_taint(&env.node("early-1").await.unwrap(), UNINITIALIZED));
    env.emulator.clear_faults();
    wait_for(
        Duration::from_secs(40),
        "ready and initialized once CloudSigma answers",
        || async {
            let node = env.node("early-1").await.filter(|n| !has_taint(n, UNINITIALIZED));
            if node.is_some() && ccm.ready().await {
                Some(())
            } else {
                None
            }
        },
    )
    .await;
}

#[tokio::test]
async fn e2e_ccm_initializes_45_nodes_past_the_page_size() {
    let env = env().await;
    let mut names = BTreeSet::new();
    for i in 0..45u8 {
        let name = format!("bulk-{i:02}");
        env.server(&name, Ipv4Addr::new(198, 51, 100, i + 1));
        names.insert(name);
    }
    for name in &names {
        env.register(name, None, None).await;
    }
    let ccm = env.spawn_ccm(&[]);
    wait_for(Duration::from_secs(60), "all 45 nodes initialized", || async {
        let list = env.nodes.list(&ListParams::default()).await.unwrap();
        let done = list.items.iter().filter(|n| !has_taint(n, UNINITIALIZED)).count();
        (done == 45).then_some(())
    })
    .await;
    // One shared, paged listing serves the burst: a handful of list calls, no per-node GET.
    let lists = env.emulator.count("GET /direct/api/2.0/servers/detail/");
    let gets = env.emulator.count("GET /direct/api/2.0/servers/{uuid}/");
    assert!(lists <= 6, "{lists} list calls");
    assert_eq!(gets, 0);
    assert_eq!(
        ccm.metric("cloudsigma_ccm_node_writes_total{kind=\"update\"}")
            .await,
        45.0
    );
}

#[tokio::test]
async fn e2e_ccm_leader_election_one_active_replica() {
    let env = env().await;
    for i in 0..3u8 {
        let name = format!("le-{i}");
        env.server(&name, Ipv4Addr::new(203, 0, 113, 60 + i));
        env.register(&name, None, None).await;
    }
    let lease = testkit::unique_name("ccm-lease");
    let args = [
        "--leader-elect",
        "--leader-elect-lease-name",
        &lease,
        "--leader-elect-lease-duration",
        "4s",
    ];
    let mut first = env.spawn_ccm(&args);
    let mut second = env.spawn_ccm(&args);
    wait_for(Duration::from_secs(30), "3 nodes initialized", || async {
        let list = env.nodes.list(&ListParams::default()).await.unwrap();
        (list.items.iter().filter(|n| !has_taint(n, UNINITIALIZED)).count() == 3).then_some(())
    })
    .await;
    let writes = |c: &Ccm| {
        let port = c.metrics_port;
        async move {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .filter(|l| l.starts_with("cloudsigma_ccm_node_writes_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        }
    };
    let (w1, w2) = (writes(&first).await, writes(&second).await);
    assert!(
        (w1 > 0.0) ^ (w2 > 0.0),
        "exactly one replica wrote: {w1} and {w2}"
    );
    let (leader, follower) = if w1 > 0.0 {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };

    // Kill the leader; the follower takes over within the lease duration (plus slack) and acts.
    leader.kill();
    env.server("le-late", Ipv4Addr::new(203, 0, 113, 70));
    env.register("le-late", None, None).await;
    wait_for(Duration::from_secs(20), "the follower took over", || async {
        env.node("le-late").await.filter(|n| !has_taint(n, UNINITIALIZED))
    })
    .await;
    assert!(writes(follower).await > 0.0);
}

/// SIGTERM ends the ccm promptly with exit 0, both in normal operation and while the Kubernetes API
/// cannot be reached (kube-runtime's graceful shutdown would otherwise wait for a Node store that never
/// gets ready).
#[tokio::test]
async fn e2e_ccm_sigterm_stops_it_even_when_the_kubernetes_api_is_unreachable() {
    let env = env().await;
    let mut ccm = env.spawn_ccm(&[]);
    wait_for(Duration::from_secs(30), "ccm ready", || async {
        ccm.ready().await.then_some(())
    })
    .await;
    let (status, took) = ccm
        .terminate(Duration::from_secs(20))
        .expect("the ccm did not exit within 20 s of SIGTERM");
    assert!(status.success(), "{status:?}\n{}", ccm.logs());
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A kubeconfig whose server nobody listens on: CloudSigma answers (so the ccm is ready and starts
    // its controllers), the Node watch keeps failing.
    let kubeconfig = std::env::temp_dir().join(format!("{}.kubeconfig", testkit::unique_name("dead")));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {{server: \"https://127.0.0.1:{}\"}}\n\
             users:\n- name: u\n  user: {{token: not-a-secret}}\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\n\
             current-context: dead\n",
            free_port()
        ),
    )
    .unwrap();
    let mut args = env.ccm_args();
    let at = args.iter().position(|a| a == "--kubeconfig").unwrap();
    args[at + 1] = kubeconfig.display().to_string();
    let mut ccm = Ccm::spawn(&args, &[("CLOUDSIGMA_CLIENT_SECRET", CLIENT_SECRET)]);
    wait_for(Duration::from_secs(30), "ccm ready with a dead API", || async {
        ccm.ready().await.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ccm.exited().is_none(), "{}", ccm.logs());
    let (status, took) = ccm
        .terminate(Duration::from_secs(20))
        .expect("the ccm ignored SIGTERM while the Kubernetes API was unreachable");
    assert!(status.success(), "{status:?}\n{}", ccm.logs());
    assert!(took < Duration::from_secs(5), "took {took:?}\n{}", ccm.logs());
    let _ = std::fs::remove_file(&kubeconfig);
}
