//! A local CloudSigma emulator: API 2.0, the Keycloak token endpoint and impersonation.
//!
//! An independent implementation written from the API fact sheet (it shares no types with `cs-api`), used
//! by the test suites and by developers who have no CloudSigma account. It runs on 127.0.0.1, keeps
//! per-user resources in memory, and can inject faults and report every request it served.
//!
//! URL layout (one listener, each location has a "regular" and a "direct" virtual host modelled as path
//! prefixes):
//!
//! | what | URL |
//! |---|---|
//! | regular API host of `{loc}` | `http://127.0.0.1:PORT/{loc}/api/2.0/` |
//! | direct API host of `{loc}` | `http://127.0.0.1:PORT/{loc}/direct/api/2.0/` |
//! | impersonation | `http://127.0.0.1:PORT/{loc}/direct/service_provider/api/v1/user/impersonate` |
//! | Keycloak token endpoint | `http://127.0.0.1:PORT/oauth/realms/cloudsigma/protocol/openid-connect/token` |
//! | alias of the default location's regular host | `http://127.0.0.1:PORT/api/2.0/` |
//! | admin API | `http://127.0.0.1:PORT/_emulator/...` |
//!
//! ```no_run
//! # async fn demo() -> Result<(), cs_emulator::Error> {
//! use cs_emulator::{Emulator, NicSeed, ServerSeed};
//! let emu = Emulator::start().await?;
//! emu.add_user("user@example.com", "pass");
//! let uuid = emu.add_server(
//!     "zrh",
//!     "user@example.com",
//!     ServerSeed {
//!         name: "web-1".into(),
//!         nics: vec![NicSeed::Public { ip_v4: Some("203.0.113.10".parse().unwrap()), ip_v6: None }],
//!         ..ServerSeed::default()
//!     },
//! );
//! println!("GET {}servers/{uuid}/", emu.api_url("zrh"));
//! # Ok(()) }
//! ```

mod api;
mod config;
mod emulator;
mod error;
mod fault;
mod log;
mod net;
mod route;
mod seed;
mod seeding;
mod store;

pub use config::Config;
pub use emulator::Emulator;
pub use error::Error;
pub use fault::{Fault, FaultAction, FaultId, RouteMatch};
pub use log::{HostKind, RequestRecord};
pub use seed::{DriveSeed, NicSeed, OAuthClientSeed, Seed, ServerSeed, UserSeed};
