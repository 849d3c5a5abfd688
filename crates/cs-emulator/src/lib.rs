//! A local CloudSigma emulator: API 2.0, the Keycloak token endpoint and impersonation.
//!
//! An independent implementation written from the API fact sheet (it shares no types with `cs-api`), used
//! by the test suites and by developers who have no CloudSigma account. It runs on 127.0.0.1, keeps
//! per-user resources in memory, and can inject faults and report every request it served.
