//! Credentials and secrets never reach tracing output, errors or `Debug` output. In its own test binary:
//! it installs a thread-local tracing subscriber, which must not race with other tests' callsites.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use cs_api::{Client, ClientOptions, CountingObserver, Endpoints, ListFilter, SecretValue};
use cs_auth::{ApiHost, SharedProvider, StaticTokenProvider, UsernamePasswordProvider};
use cs_emulator::{Emulator, Fault, RouteMatch, ServerSeed};
use secrecy::SecretString;

const EMAIL: &str = "tenant@example.com";
const PASSWORD: &str = "pw-Secret-4711";
const VNC: &str = "Vnc-Pass-5150";

fn fast_options(observer: Arc<CountingObserver>) -> ClientOptions {
    ClientOptions {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        observer,
        ..Default::default()
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

#[tokio::test]
async fn credentials_never_reach_logs_errors_or_debug_output() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emu = Emulator::start().await.unwrap();
    emu.add_user(EMAIL, PASSWORD);
    let observer = Arc::new(CountingObserver::new());
    let client = Client::new(
        endpoints(&emu),
        password_provider(PASSWORD),
        fast_options(observer.clone()),
    )
    .unwrap();
    let uuid = emu.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            name: "quiet".into(),
            status: "stopped".into(),
            ..ServerSeed::default()
        },
    );
    let mut server = client.get_server(&uuid).await.unwrap();
    server.vnc_password = Some(SecretValue::new(VNC));
    client.update_server(&server).await.unwrap();
    emu.inject(Fault::status(RouteMatch::route("GET /api/2.0/servers/{uuid}/"), 503).times(1));
    let server = client.get_server(&uuid).await.unwrap();
    assert_eq!(server.vnc_password.as_ref().map(SecretValue::expose), Some(VNC));
    let token = emu.issue_token("zrh", EMAIL);
    let bearer = Client::new(
        endpoints(&emu),
        Arc::new(StaticTokenProvider::new(SecretString::from(token.clone()), ApiHost::Regular).unwrap()),
        fast_options(observer.clone()),
    )
    .unwrap();
    let _ = bearer.list_servers(&ListFilter::all()).await;
    let bad = Client::new(
        endpoints(&emu),
        password_provider("Wrong-Pw-99"),
        fast_options(observer.clone()),
    )
    .unwrap();
    let err = bad.get_server(&uuid).await.unwrap_err();

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("cloudsigma_request") && logs.contains("servers/{uuid}/"),
        "{logs}"
    );
    assert!(logs.contains("retrying CloudSigma request"), "{logs}");
    let everything = format!("{logs}\n{err}\n{err:?}\n{:?}\n{server:?}\n{bearer:?}", client);
    for secret in [PASSWORD, "Wrong-Pw-99", token.as_str(), VNC] {
        assert!(!everything.contains(secret), "a secret leaked");
    }
}
