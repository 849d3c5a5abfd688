//! IPs, locations and capabilities.

use crate::{
    Capabilities, Client, Ip, Location, Pager, Result,
    path::{ApiPath, check_id},
};

impl Client {
    /// Every IP object of the account (`/ips/`); their uuid is the address.
    pub async fn list_ips(&self) -> Result<Vec<Ip>> {
        Pager::new(self.clone(), Some(ApiPath::new("ips/", &["ips"])))
            .collect_all()
            .await
    }

    /// One IP object by address.
    pub async fn get_ip(&self, address: &str) -> Result<Ip> {
        let address = check_id("IP address", address)?;
        self.get_json(&ApiPath::new("ips/{uuid}/", &["ips", address]))
            .await
    }

    /// Every location the API lists.
    pub async fn list_locations(&self) -> Result<Vec<Location>> {
        Pager::new(self.clone(), Some(ApiPath::new("locations/", &["locations"])))
            .collect_all()
            .await
    }

    /// The account's limits (`/capabilities/`, a bare object).
    pub async fn capabilities(&self) -> Result<Capabilities> {
        self.get_json(&ApiPath::new("capabilities/", &["capabilities"]))
            .await
    }
}
