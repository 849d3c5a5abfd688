//! The `Emulator` handle: start/stop, URLs, seeding, out-of-band changes, faults and observation.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::fault::{Fault, FaultId, FaultTable};
use crate::log::{RequestLog, RequestRecord};
use crate::route::{IMPERSONATE_PATH, TOKEN_PATH};
use crate::seed::{DriveSeed, Seed, ServerSeed};
use crate::store::State;

/// State shared by the listener tasks and the handle.
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    state: Mutex<State>,
    faults: Mutex<FaultTable>,
    log: Mutex<RequestLog>,
}

impl Shared {
    pub(crate) fn new(config: Config, base: String) -> Shared {
        Shared {
            config,
            base,
            state: Mutex::new(State::default()),
            faults: Mutex::new(FaultTable::default()),
            log: Mutex::new(RequestLog::default()),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultTable> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running emulator on one listener. Dropping it (or [`Emulator::shutdown`]) stops the listener and
/// closes open connections.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("locations", &self.shared.config.locations)
            .finish_non_exhaustive()
    }
}

/// Panics with the error: the infallible seeding helpers are test conveniences, like `assert!`.
#[allow(clippy::panic)]
fn or_panic<T>(what: &str, r: Result<T, Error>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("cs-emulator: {what}: {e}"),
    }
}

impl Emulator {
    /// Starts with `Config::default()` (127.0.0.1, ephemeral port, location `zrh`).
    pub async fn start() -> Result<Emulator, Error> {
        Emulator::start_with(Config::default()).await
    }

    /// Starts with the given configuration. Must be called inside a Tokio runtime: the listener runs
    /// as tasks of that runtime and stops when the runtime shuts down.
    pub async fn start_with(config: Config) -> Result<Emulator, Error> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(crate::net::serve(listener, shared.clone(), rx));
        tracing::info!(%addr, "cs-emulator listening");
        Ok(Emulator {
            shared,
            addr,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// Stops the listener and waits for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.shared.base.clone()
    }

    /// Regular API 2.0 base of a location: `http://127.0.0.1:P/{loc}/api/2.0/`.
    pub fn api_url(&self, loc: &str) -> String {
        format!("{}/{loc}/api/2.0/", self.shared.base)
    }

    /// Direct-host API 2.0 base of a location: `http://127.0.0.1:P/{loc}/direct/api/2.0/`.
    pub fn direct_api_url(&self, loc: &str) -> String {
        format!("{}/{loc}/direct/api/2.0/", self.shared.base)
    }

    /// Direct host root of a location (the impersonation base): `http://127.0.0.1:P/{loc}/direct/`.
    pub fn direct_url(&self, loc: &str) -> String {
        format!("{}/{loc}/direct/", self.shared.base)
    }

    /// The impersonation endpoint of a location.
    pub fn impersonate_url(&self, loc: &str) -> String {
        format!("{}/{loc}/direct{IMPERSONATE_PATH}", self.shared.base)
    }

    /// The OAuth (Keycloak) base: `http://127.0.0.1:P/oauth`.
    pub fn oauth_url(&self) -> String {
        format!("{}/oauth", self.shared.base)
    }

    /// The full token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.shared.base)
    }

    /// `http://127.0.0.1:P/{region}/api/2.0/` with a literal `{region}`.
    pub fn api_url_template(&self) -> String {
        self.api_url("{region}")
    }

    /// `http://127.0.0.1:P/{region}/direct/api/2.0/` with a literal `{region}`.
    pub fn direct_api_url_template(&self) -> String {
        self.direct_api_url("{region}")
    }

    /// `http://127.0.0.1:P/{region}/direct/` with a literal `{region}`.
    pub fn direct_url_template(&self) -> String {
        self.direct_url("{region}")
    }

    /// Adds a user (or resets the password of an existing one); returns its uuid.
    pub fn add_user(&self, email: &str, password: &str) -> String {
        self.shared
            .state()
            .upsert_user(email, Some(SecretString::from(password.to_owned())))
    }

    /// Adds (or replaces) an OAuth client whose service account is `service_account_email`; the
    /// service-account user is created (without a password) if missing.
    pub fn add_oauth_client(&self, client_id: &str, client_secret: &str, service_account_email: &str) {
        self.shared.add_oauth_client(
            client_id,
            SecretString::from(client_secret.to_owned()),
            service_account_email,
        );
    }

    /// Adds a server; see [`Emulator::try_add_server`].
    ///
    /// # Panics
    /// When the seed is invalid (unknown owner or location, bad drive or address...).
    pub fn add_server(&self, loc: &str, owner_email: &str, seed: ServerSeed) -> String {
        or_panic("add_server", self.try_add_server(loc, owner_email, seed))
    }

    /// Adds a server owned by `owner_email` in `loc`; returns its uuid.
    pub fn try_add_server(&self, loc: &str, owner_email: &str, seed: ServerSeed) -> Result<String, Error> {
        self.shared.add_server(loc, owner_email, &seed)
    }

    /// Adds a drive; see [`Emulator::try_add_drive`].
    ///
    /// # Panics
    /// When the seed is invalid.
    pub fn add_drive(&self, loc: &str, owner_email: &str, seed: DriveSeed) -> String {
        or_panic("add_drive", self.try_add_drive(loc, owner_email, seed))
    }

    /// Adds a drive owned by `owner_email` in `loc`; returns its uuid.
    pub fn try_add_drive(&self, loc: &str, owner_email: &str, seed: DriveSeed) -> Result<String, Error> {
        self.shared.add_drive(loc, owner_email, &seed)
    }

    /// Adds an IPv4 address to a user's IPs (usable in static NIC configurations).
    ///
    /// # Panics
    /// When the user or location is unknown or the address belongs to someone else.
    pub fn add_ip(&self, loc: &str, owner_email: &str, addr: Ipv4Addr) {
        or_panic("add_ip", self.shared.add_ip(loc, owner_email, addr));
    }

    /// Applies a whole seed document (users, clients, drives, servers); stops at the first error.
    pub fn load_seed(&self, seed: &Seed) -> Result<(), Error> {
        self.shared.load_seed(seed)
    }

    /// Sets a server's status now (`running` gives it a runtime, `stopped` clears it); a pending
    /// transition is cancelled. `starting`/`stopping` set this way stay until changed.
    ///
    /// # Panics
    /// On an unknown server or status.
    pub fn set_server_status(&self, uuid: &str, status: &str) {
        or_panic("set_server_status", self.try_set_server_status(uuid, status));
    }

    /// Fallible [`Emulator::set_server_status`].
    pub fn try_set_server_status(&self, uuid: &str, status: &str) -> Result<(), Error> {
        self.shared.set_server_status(uuid, status)
    }

    /// Deletes a server out of band (whatever its status); its drives detach after the detach delay.
    /// Unknown uuids are ignored.
    pub fn delete_server(&self, uuid: &str) {
        self.shared.delete_server(uuid);
    }

    /// Sets (or clears) the IPv4 address of a public NIC (by index), as the platform's DHCP would.
    ///
    /// # Panics
    /// On an unknown server, NIC index, a VLAN NIC, or an address of another user.
    pub fn set_nic_ip(&self, uuid: &str, nic_index: usize, ip_v4: Option<Ipv4Addr>) {
        or_panic("set_nic_ip", self.try_set_nic_ip(uuid, nic_index, ip_v4));
    }

    /// Fallible [`Emulator::set_nic_ip`].
    pub fn try_set_nic_ip(&self, uuid: &str, nic_index: usize, ip_v4: Option<Ipv4Addr>) -> Result<(), Error> {
        self.shared.set_nic_ip(uuid, nic_index, ip_v4)
    }

    /// Mints an impersonated API token for `user_email` in `loc` without the OAuth flow. It acts as the
    /// user on the direct host only (there is no service account behind it, so the regular host refuses
    /// it with 401) and expires after `token_lifetime`.
    ///
    /// # Panics
    /// On an unknown user or location.
    pub fn issue_token(&self, loc: &str, user_email: &str) -> String {
        or_panic("issue_token", self.shared.issue_token(loc, user_email))
    }

    /// The full server object as `GET /servers/{uuid}/` would return it.
    pub fn server_json(&self, uuid: &str) -> Option<serde_json::Value> {
        let mut state = self.shared.state();
        state.settle(std::time::Instant::now());
        state.servers.get(uuid).map(crate::store::render::server)
    }

    /// The full drive object as `GET /drives/{uuid}/` would return it.
    pub fn drive_json(&self, uuid: &str) -> Option<serde_json::Value> {
        let mut state = self.shared.state();
        state.settle(std::time::Instant::now());
        state
            .drives
            .get(uuid)
            .map(|d| crate::store::render::drive(&state, d))
    }

    /// Uuid of the user with this email.
    pub fn user_uuid(&self, email: &str) -> Option<String> {
        self.shared.state().user_uuid(email)
    }

    /// Injects a fault; faults are tried in injection order and the first match applies.
    ///
    /// # Panics
    /// On an invalid fault (a status outside 100..=599, `times: Some(0)`).
    #[allow(clippy::panic)]
    pub fn inject(&self, fault: Fault) -> FaultId {
        if let Err(e) = fault.validate() {
            panic!("cs-emulator: invalid fault: {e}");
        }
        self.shared.faults().inject(fault)
    }

    /// Removes one fault (no-op if it is gone, e.g. used up).
    pub fn clear_fault(&self, id: FaultId) {
        self.shared.faults().clear(id);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear_all();
    }

    /// The faults in force with their remaining match counts.
    pub fn faults(&self) -> Vec<(FaultId, Fault, Option<u32>)> {
        self.shared.faults().list()
    }

    /// Requests answered so far (oldest first; at most the last 100 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log().records()
    }

    /// Requests per route template, counted on arrival.
    pub fn route_counts(&self) -> BTreeMap<String, u64> {
        self.shared.log().counts()
    }

    /// Requests of one route template, e.g. `GET /api/2.0/servers/detail/`.
    pub fn count(&self, route: &str) -> u64 {
        self.shared.log().count(route)
    }

    /// Clears the request log and the counters.
    pub fn reset_log(&self) {
        self.shared.log().reset();
    }
}
