//! Servers: list, detail, get, full update and power actions.

use crate::{
    ActionResult, Client, ListFilter, Pager, Result, Server, ServerSummary,
    path::{ApiPath, Method, check_id},
};

impl Client {
    /// Every server matching `filter`, in the short form (uuid, name, status, owner, runtime); pages
    /// through the whole list.
    pub async fn list_servers(&self, filter: &ListFilter) -> Result<Vec<ServerSummary>> {
        let path = filter.apply(ApiPath::new("servers/", &["servers"]))?;
        Pager::new(self.clone(), path).collect_all().await
    }

    /// Every server matching `filter` with its full definition; pages through the whole list.
    pub async fn list_servers_detail(&self, filter: &ListFilter) -> Result<Vec<Server>> {
        self.server_pages(filter)?.collect_all().await
    }

    /// Full server definitions page by page (or as a stream via [`Pager::into_stream`]).
    pub fn server_pages(&self, filter: &ListFilter) -> Result<Pager<Server>> {
        self.server_pages_as(filter)
    }

    /// The `servers/detail/` pages decoded into the caller's own type `T`, for callers that need a few
    /// fields of many servers: fields `T` does not name are skipped while decoding instead of being
    /// kept (as [`Server`]'s `extra` map does), which keeps large listings small in memory.
    pub fn server_pages_as<T: serde::de::DeserializeOwned>(&self, filter: &ListFilter) -> Result<Pager<T>> {
        let path = filter.apply(ApiPath::new("servers/detail/", &["servers", "detail"]))?;
        Ok(Pager::new(self.clone(), path))
    }

    /// One server; [`Error::NotFound`](crate::Error::NotFound) when it does not exist.
    pub async fn get_server(&self, uuid: &str) -> Result<Server> {
        let uuid = check_id("server uuid", uuid)?;
        self.get_json(&ApiPath::new("servers/{uuid}/", &["servers", uuid]))
            .await
    }

    /// Replaces the server's definition with `server` (a full `PUT`; send what was read, modified).
    /// Returns the definition the API answers with.
    pub async fn update_server(&self, server: &Server) -> Result<Server> {
        let uuid = check_id("server uuid", &server.uuid)?;
        self.send_json(
            Method::Put,
            &ApiPath::new("servers/{uuid}/", &["servers", uuid]),
            server,
        )
        .await
    }

    /// Starts a stopped server (`202`; the status goes `starting` → `running`).
    pub async fn start_server(&self, uuid: &str) -> Result<ActionResult> {
        self.server_action(uuid, "servers/{uuid}/action/?do=start", "start")
            .await
    }

    /// Stops a server hard (`202`; `stopping` → `stopped`).
    pub async fn stop_server(&self, uuid: &str) -> Result<ActionResult> {
        self.server_action(uuid, "servers/{uuid}/action/?do=stop", "stop")
            .await
    }

    /// Asks the guest to shut down via ACPI (`202`; the guest may ignore it).
    pub async fn shutdown_server(&self, uuid: &str) -> Result<ActionResult> {
        self.server_action(uuid, "servers/{uuid}/action/?do=shutdown", "shutdown")
            .await
    }

    async fn server_action(&self, uuid: &str, route: &'static str, action: &str) -> Result<ActionResult> {
        let uuid = check_id("server uuid", uuid)?;
        let path = ApiPath::new(route, &["servers", uuid, "action"]).with_query("do", action);
        self.send_json(Method::Post, &path, &serde_json::json!({})).await
    }
}
