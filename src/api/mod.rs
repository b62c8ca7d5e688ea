//! Unleash's admin API as flagfleet uses it: one typed function per endpoint, with the
//! request bodies ([`body`]) and the answers ([`wire`]) it sends and reads.
//!
//! The state reader and the live writer call these; nothing else builds a request path
//! or a request body. Each function makes exactly one request through [`Client`] (whose
//! retries, rate-limit waits and error messages apply), of the kind its effect calls for:
//! reads and repeatable writes are retried, creates are sent as [`Client::create`], so
//! that after an ambiguous failure the caller looks the object up before creating again.

pub mod body;
pub mod names;
pub mod version;
pub mod wire;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Client, ClientError, Path};
use body::{
    BulkToggle, ContextFieldBody, DependencyBody, ExportRequest, FeatureCreate, FeatureUpdate,
    LinkBody, PlaygroundRequest, SegmentBody, SortOrder, StrategyBody, StrategyDefinitionBody,
    TagBody, TagChanges, TagTypeBody, VariantBody,
};

type Result<T> = std::result::Result<T, ClientError>;

/// The answer to a create (or a lookup standing in for one): the object as the server
/// returns it, of which flagfleet needs only the id of segments and strategies. Kept
/// loose: an answer without an id is not an error (the caller decides).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Created(Value);

impl Created {
    /// A stand-in for an object found by a lookup, with its id when it has one.
    pub fn found(id: impl Serialize) -> Self {
        Self(serde_json::json!({ "id": id }))
    }

    /// A numeric id (segments).
    pub fn number_id(&self) -> Option<i64> {
        self.0.get("id").and_then(Value::as_i64)
    }

    /// A text id (strategies).
    pub fn text_id(&self) -> Option<&str> {
        self.0.get("id").and_then(Value::as_str)
    }
}

/// The admin API of one instance.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'c> {
    client: &'c Client,
}

/// The scaffolding collections Unleash keys by name: created at
/// `POST /api/admin/{collection}`, overwritten at `PUT /api/admin/{collection}/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// `/api/admin/context`.
    ContextField,
    /// `/api/admin/tag-types`.
    TagType,
    /// `/api/admin/strategies`.
    StrategyDefinition,
}

impl Named {
    fn collection(self) -> &'static str {
        match self {
            Named::ContextField => "context",
            Named::TagType => "tag-types",
            Named::StrategyDefinition => "strategies",
        }
    }
}

/// A named scaffolding object's body.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum NamedBody {
    /// A context field.
    ContextField(ContextFieldBody),
    /// A tag type.
    TagType(TagTypeBody),
    /// A strategy definition.
    StrategyDefinition(StrategyDefinitionBody),
}

/// Where a flag's strategies in one environment live:
/// `/api/admin/projects/{project}/features/{flag}/environments/{environment}`.
#[derive(Debug, Clone, Copy)]
pub struct FlagEnv<'a> {
    /// The project.
    pub project: &'a str,
    /// The flag.
    pub flag: &'a str,
    /// The environment.
    pub environment: &'a str,
}

impl FlagEnv<'_> {
    fn path<'p>(&'p self, rest: &[&'p str]) -> Path<'p> {
        let mut segments = vec![
            "api",
            "admin",
            "projects",
            self.project,
            "features",
            self.flag,
            "environments",
            self.environment,
        ];
        segments.extend_from_slice(rest);
        Path::new(&segments)
    }
}

fn feature<'p>(project: &'p str, flag: &'p str, rest: &[&'p str]) -> Path<'p> {
    let mut segments = vec!["api", "admin", "projects", project, "features", flag];
    segments.extend_from_slice(rest);
    Path::new(&segments)
}

impl<'c> Admin<'c> {
    /// The admin API reached through `client`.
    pub fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// The client (its instance name, retry budget and request count).
    pub fn client(&self) -> &'c Client {
        self.client
    }

    // Reads.

    /// `POST /api/admin/features-batch/export`: a project's flags in one environment, or
    /// flags by name in any project.
    pub async fn export<T: serde::de::DeserializeOwned>(
        &self,
        request: &ExportRequest<'_>,
    ) -> Result<T> {
        let path = Path::new(&["api", "admin", "features-batch", "export"]);
        self.client.post_read(path, request).await
    }

    /// `GET /api/admin/segments`.
    pub async fn segments(&self) -> Result<wire::Segments> {
        self.client
            .get(Path::new(&["api", "admin", "segments"]))
            .await
    }

    /// `GET /api/admin/strategies`.
    pub async fn strategy_definitions(&self) -> Result<wire::Strategies> {
        self.client
            .get(Path::new(&["api", "admin", "strategies"]))
            .await
    }

    /// `GET /api/admin/context`.
    pub async fn context_fields(&self) -> Result<Vec<wire::ContextField>> {
        self.client
            .get(Path::new(&["api", "admin", "context"]))
            .await
    }

    /// `GET /api/admin/tag-types`.
    pub async fn tag_types(&self) -> Result<wire::TagTypes> {
        self.client
            .get(Path::new(&["api", "admin", "tag-types"]))
            .await
    }

    /// `GET /api/admin/tags`: every tag that exists.
    pub async fn tags(&self) -> Result<wire::TagList> {
        self.client.get(Path::new(&["api", "admin", "tags"])).await
    }

    /// `GET /api/admin/projects`.
    pub async fn projects(&self) -> Result<wire::Projects> {
        self.client
            .get(Path::new(&["api", "admin", "projects"]))
            .await
    }

    /// `GET /api/admin/environments`.
    pub async fn environments(&self) -> Result<wire::Environments> {
        self.client
            .get(Path::new(&["api", "admin", "environments"]))
            .await
    }

    /// `GET /api/admin/ui-config` (the server's version).
    pub async fn ui_config(&self) -> Result<wire::UiConfig> {
        self.client
            .get(Path::new(&["api", "admin", "ui-config"]))
            .await
    }

    /// `POST /api/admin/playground`: every flag of the asked projects evaluated in one
    /// environment, strategies in evaluation order.
    pub async fn playground(&self, request: &PlaygroundRequest<'_>) -> Result<wire::Playground> {
        let path = Path::new(&["api", "admin", "playground"]);
        self.client.post_read(path, request).await
    }

    /// `GET /api/admin/search/features` (rate-limited by Unleash 8.2): one page.
    pub async fn search_features(
        &self,
        limit: u64,
        offset: u64,
        filters: &[(&str, &str)],
    ) -> Result<wire::Search> {
        let (limit, offset) = (limit.to_string(), offset.to_string());
        let mut path = Path::new(&["api", "admin", "search", "features"])
            .query("limit", &limit)
            .query("offset", &offset);
        for (k, v) in filters {
            path = path.query(k, v);
        }
        self.client.get(path).await
    }

    /// `GET /api/admin/search/events`: one page of events, newest first, as `filters`
    /// select them (e.g. `("project", "IS:default")`, `("feature", "IS_ANY_OF:a,b")`,
    /// `("type", "IS_ANY_OF:segment-created,segment-updated")`).
    pub async fn search_events(
        &self,
        filters: &[(&str, &str)],
        limit: usize,
        offset: usize,
    ) -> Result<wire::EventPage> {
        let (limit, offset) = (limit.to_string(), offset.to_string());
        let mut path = Path::new(&["api", "admin", "search", "events"])
            .query("limit", &limit)
            .query("offset", &offset);
        for (k, v) in filters {
            path = path.query(k, v);
        }
        self.client.get(path).await
    }

    /// `GET /api/admin/user`: the user the token acts as.
    pub async fn current_user(&self) -> Result<wire::Me> {
        self.client.get(Path::new(&["api", "admin", "user"])).await
    }

    /// `GET /api/admin/projects/{project}/features`: the project's flags with each
    /// environment's enabled state.
    pub async fn project_features(&self, project: &str) -> Result<wire::ProjectFeatures> {
        let path = Path::new(&["api", "admin", "projects", project, "features"]);
        self.client.get(path).await
    }

    /// `GET /api/admin/projects/{project}/features/{flag}`.
    pub async fn feature(&self, project: &str, flag: &str) -> Result<wire::FeatureDetail> {
        self.client.get(feature(project, flag, &[])).await
    }

    /// `GET /api/admin/features/{flag}/tags`.
    pub async fn feature_tags(&self, flag: &str) -> Result<wire::TagList> {
        self.client
            .get(Path::new(&["api", "admin", "features", flag, "tags"]))
            .await
    }

    /// `GET .../environments/{environment}/strategies`.
    pub async fn strategies(&self, at: FlagEnv<'_>) -> Result<wire::StrategyList> {
        self.client.get(at.path(&["strategies"])).await
    }

    // Lookups: `Some` when the object exists, `None` on 404.

    async fn exists(&self, path: Path<'_>) -> Result<Option<Created>> {
        match self.client.get::<Created>(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/admin/{collection}/{name}`.
    pub async fn find_named(&self, kind: Named, name: &str) -> Result<Option<Created>> {
        self.exists(Path::new(&["api", "admin", kind.collection(), name]))
            .await
    }

    /// `GET /api/admin/tags/{type}/{value}`.
    pub async fn find_tag(&self, tag: &TagBody) -> Result<Option<Created>> {
        self.exists(Path::new(&["api", "admin", "tags", &tag.kind, &tag.value]))
            .await
    }

    /// `GET /api/admin/projects/{project}/features/{flag}`, `None` on 404.
    pub async fn find_feature(&self, project: &str, flag: &str) -> Result<Option<Created>> {
        self.exists(feature(project, flag, &[])).await
    }

    // Creates: sent once (see the module doc).

    /// `POST /api/admin/{collection}`.
    pub async fn create_named(&self, kind: Named, body: &NamedBody) -> Result<Created> {
        let path = Path::new(&["api", "admin", kind.collection()]);
        self.client.create(path, body).await
    }

    /// `POST /api/admin/segments`.
    pub async fn create_segment(&self, body: &SegmentBody) -> Result<Created> {
        let path = Path::new(&["api", "admin", "segments"]);
        self.client.create(path, body).await
    }

    /// `POST /api/admin/tags`.
    pub async fn create_tag(&self, body: &TagBody) -> Result<Created> {
        self.client
            .create(Path::new(&["api", "admin", "tags"]), body)
            .await
    }

    /// `POST /api/admin/projects/{project}/features`.
    pub async fn create_feature(&self, project: &str, body: &FeatureCreate<'_>) -> Result<Created> {
        let path = Path::new(&["api", "admin", "projects", project, "features"]);
        self.client.create(path, body).await
    }

    /// `POST .../environments/{environment}/strategies`.
    pub async fn create_strategy(&self, at: FlagEnv<'_>, body: &StrategyBody) -> Result<Created> {
        self.client.create(at.path(&["strategies"]), body).await
    }

    /// `POST /api/admin/projects/{project}/features/{flag}/link`.
    pub async fn create_link(&self, project: &str, flag: &str, body: &LinkBody) -> Result<Created> {
        self.client
            .create(feature(project, flag, &["link"]), body)
            .await
    }

    // Writes that may be repeated.

    async fn write<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: Path<'_>,
        body: Option<&B>,
    ) -> Result<()> {
        self.client
            .write_idempotent::<IgnoredAny, B>(method, path, body)
            .await
            .map(drop)
    }

    /// `PUT /api/admin/{collection}/{name}`.
    pub async fn update_named(&self, kind: Named, name: &str, body: &NamedBody) -> Result<()> {
        let path = Path::new(&["api", "admin", kind.collection(), name]);
        self.write(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `PUT /api/admin/segments/{id}`.
    pub async fn update_segment(&self, id: i64, body: &SegmentBody) -> Result<()> {
        let id = id.to_string();
        let path = Path::new(&["api", "admin", "segments", &id]);
        self.write(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `PUT /api/admin/projects/{project}/features/{flag}`.
    pub async fn update_feature(
        &self,
        project: &str,
        flag: &str,
        body: &FeatureUpdate<'_>,
    ) -> Result<()> {
        let path = feature(project, flag, &[]);
        self.write(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `DELETE /api/admin/projects/{project}/features/{flag}`, which archives (Unleash
    /// never deletes a flag this way).
    pub async fn archive_feature(&self, project: &str, flag: &str) -> Result<()> {
        let path = feature(project, flag, &[]);
        self.write::<()>(reqwest::Method::DELETE, path, None).await
    }

    /// `PUT /api/admin/features/{flag}/tags`: tags added and removed in one request.
    pub async fn update_feature_tags(&self, flag: &str, body: &TagChanges) -> Result<()> {
        let path = Path::new(&["api", "admin", "features", flag, "tags"]);
        self.write(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `PUT .../environments/{environment}/strategies/{id}`.
    pub async fn update_strategy(
        &self,
        at: FlagEnv<'_>,
        id: &str,
        body: &StrategyBody,
    ) -> Result<()> {
        let path = at.path(&["strategies", id]);
        self.write(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `DELETE .../environments/{environment}/strategies/{id}`.
    pub async fn delete_strategy(&self, at: FlagEnv<'_>, id: &str) -> Result<()> {
        let path = at.path(&["strategies", id]);
        self.write::<()>(reqwest::Method::DELETE, path, None).await
    }

    /// `POST .../environments/{environment}/strategies/set-sort-order`.
    pub async fn set_sort_order(&self, at: FlagEnv<'_>, order: &[SortOrder<'_>]) -> Result<()> {
        let path = at.path(&["strategies", "set-sort-order"]);
        self.write(reqwest::Method::POST, path, Some(&order)).await
    }

    /// `PUT .../environments/{environment}/variants`.
    pub async fn set_variants(&self, at: FlagEnv<'_>, variants: &[VariantBody]) -> Result<()> {
        let path = at.path(&["variants"]);
        self.write(reqwest::Method::PUT, path, Some(&variants))
            .await
    }

    /// `POST .../environments/{environment}/on` or `/off`.
    pub async fn set_enabled(&self, at: FlagEnv<'_>, enabled: bool) -> Result<()> {
        let path = at.path(&[if enabled { "on" } else { "off" }]);
        let empty = serde_json::Map::new();
        self.write(reqwest::Method::POST, path, Some(&empty)).await
    }

    /// `POST /api/admin/projects/{project}/bulk_features/environments/{environment}/on`:
    /// the flags switched on in one request, all or none (the server runs it in one
    /// transaction; 6.x, 7.x and 8.x have it). Each flag gets what `set_enabled` gives it,
    /// a default strategy included where it has none.
    pub async fn enable_many(&self, project: &str, env: &str, flags: &[String]) -> Result<()> {
        let segments = [
            "api",
            "admin",
            "projects",
            project,
            "bulk_features",
            "environments",
            env,
            "on",
        ];
        let body = BulkToggle { features: flags };
        let path = Path::new(&segments);
        self.write(reqwest::Method::POST, path, Some(&body)).await
    }

    /// `POST /api/admin/projects/{project}/features/{flag}/dependencies` (an upsert).
    pub async fn add_dependency(
        &self,
        project: &str,
        flag: &str,
        body: &DependencyBody<'_>,
    ) -> Result<()> {
        let path = feature(project, flag, &["dependencies"]);
        self.write(reqwest::Method::POST, path, Some(body)).await
    }

    /// `DELETE /api/admin/projects/{project}/features/{flag}/dependencies/{parent}`.
    pub async fn delete_dependency(&self, project: &str, flag: &str, parent: &str) -> Result<()> {
        let path = feature(project, flag, &["dependencies", parent]);
        self.write::<()>(reqwest::Method::DELETE, path, None).await
    }

    /// `DELETE /api/admin/projects/{project}/features/{flag}/link/{id}`.
    pub async fn delete_link(&self, project: &str, flag: &str, id: &str) -> Result<()> {
        let path = feature(project, flag, &["link", id]);
        self.write::<()>(reqwest::Method::DELETE, path, None).await
    }
}
