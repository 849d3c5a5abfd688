//! Prometheus series fed by the CloudSigma client and the credentials providers.

use std::time::Duration;

use cs_auth::{AuthObserver, CacheLookup, FallbackPath, RequestOutcome, Step};
use prometheus_client::{
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

/// CloudSigma API requests by method, route template and outcome, and their durations.
#[derive(Debug)]
pub struct ApiMetrics {
    requests: Family<Labels, Counter>,
    seconds: Family<Labels, Histogram>,
}

impl ApiMetrics {
    /// Creates the series and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<Labels, Counter>::default();
        let seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.005, 2.0, 14,
            ))
        });
        registry.register(
            "cloudsigma_api_requests",
            "CloudSigma API 2.0 HTTP attempts by method, route template and outcome (status code, timeout, transport)",
            requests.clone(),
        );
        registry.register(
            "cloudsigma_api_request_duration_seconds",
            "Duration of CloudSigma API 2.0 HTTP attempts by method and route template",
            seconds.clone(),
        );
        Self { requests, seconds }
    }
}

impl cs_api::RequestObserver for ApiMetrics {
    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        outcome: cs_api::Outcome,
        elapsed: Duration,
    ) {
        let labels = vec![
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("outcome", outcome.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
        let timing = vec![("method", method.to_owned()), ("route", route.to_owned())];
        self.seconds.get_or_create(&timing).observe(elapsed.as_secs_f64());
    }
}

/// OAuth/impersonation requests, token-cache lookups and fallback use.
#[derive(Debug)]
pub struct AuthMetrics {
    token_requests: Family<Labels, Counter>,
    cache: Family<Labels, Counter>,
    served: Family<Labels, Counter>,
    transitions: Family<Labels, Counter>,
}

impl AuthMetrics {
    /// Creates the series and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            token_requests: Family::default(),
            cache: Family::default(),
            served: Family::default(),
            transitions: Family::default(),
        };
        registry.register(
            "cloudsigma_auth_requests",
            "Requests of the impersonation flow by step (service_account_token, rpt, impersonate) and outcome",
            m.token_requests.clone(),
        );
        registry.register(
            "cloudsigma_auth_token_cache_lookups",
            "Impersonated-token cache lookups by result",
            m.cache.clone(),
        );
        registry.register(
            "cloudsigma_auth_credentials_served",
            "Credentials served by the fallback provider, by path (primary = impersonation, secondary = legacy)",
            m.served.clone(),
        );
        registry.register(
            "cloudsigma_auth_fallback_transitions",
            "Switches of the fallback provider, by the path switched to",
            m.transitions.clone(),
        );
        m
    }
}

impl AuthObserver for AuthMetrics {
    fn token_request(&self, step: Step, outcome: RequestOutcome) {
        self.token_requests
            .get_or_create(&vec![
                ("step", step.as_str().to_owned()),
                ("outcome", outcome.as_str().to_owned()),
            ])
            .inc();
    }
    fn cache_lookup(&self, lookup: CacheLookup) {
        self.cache
            .get_or_create(&vec![("result", lookup.as_str().to_owned())])
            .inc();
    }
    fn credentials_served(&self, path: FallbackPath) {
        self.served
            .get_or_create(&vec![("path", path.as_str().to_owned())])
            .inc();
    }
    fn fallback_transition(&self, to: FallbackPath) {
        self.transitions
            .get_or_create(&vec![("to", to.as_str().to_owned())])
            .inc();
    }
}
