//! Applying actions to a live spoke through Unleash's fine-grained admin API (admin
//! tokens are accepted there; the batch import endpoint refuses them).
//!
//! Ids are resolved on the spoke: a strategy that uses segment `beta-users` gets the
//! spoke's id for it, which may have been created a moment ago in the same apply.
//! Creates are sent once; after an ambiguous failure the object is looked up before the
//! create is repeated, so a flaky network never leaves a duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::target::Target;
use crate::client::{Client, ClientError, Path};
use crate::plan::{Action, Kind, Verb};
use crate::state::model::{
    Constraint, ContextField, Flag, FlagEnvironment, Segment, Strategy, StrategyDefinition, Tag,
    TagSet, TagType, Variant,
};
use crate::state::wire;

/// A live spoke being written.
pub(super) struct LiveSpoke<'a> {
    pub client: &'a Client,
    pub project: &'a str,
    pub target: &'a Target<'a>,
    segment_ids: Mutex<HashMap<String, i64>>,
    /// Tags (type, value) that exist on the spoke, read when the first flag is created.
    tags: OnceCell<HashSet<TagKey>>,
    /// One create per tag the spoke lacks, shared by every flag that needs it (single
    /// flight: concurrent flag creates wait for the same tag create instead of racing it).
    tag_creates: Mutex<HashMap<TagKey, Arc<OnceCell<()>>>>,
}

/// A tag as (type, value).
type TagKey = (String, String);

type Result<T> = std::result::Result<T, ClientError>;

impl<'a> LiveSpoke<'a> {
    /// Reads the spoke's segment ids (the only ids flag bodies need).
    pub async fn new(client: &'a Client, project: &'a str, target: &'a Target<'a>) -> Result<Self> {
        let segments: wire::Segments = client.get(Path::new(&["api", "admin", "segments"])).await?;
        Ok(Self {
            client,
            project,
            target,
            segment_ids: Mutex::new(
                segments
                    .segments
                    .into_iter()
                    .map(|s| (s.name, s.id))
                    .collect(),
            ),
            tags: OnceCell::new(),
            tag_creates: Mutex::default(),
        })
    }

    /// Executes one action.
    pub async fn execute(&self, a: &Action) -> std::result::Result<(), String> {
        self.run(a).await.map_err(|e| e.to_string())
    }

    async fn run(&self, a: &Action) -> Result<()> {
        let name = a.name.as_str();
        let t = self.target;
        let missing = || ClientError::Decode {
            instance: self.client.instance().to_string(),
            method: Method::GET,
            path: String::new(),
            detail: format!("{} {name} is not defined on the hub", a.kind),
        };
        match (a.kind, a.action) {
            (Kind::ContextField, verb) => {
                let c = t.context_field(name).ok_or_else(missing)?;
                self.write_named("context", name, &context_field_body(name, &c), verb)
                    .await?;
            }
            (Kind::TagType, verb) => {
                let body = tag_type_body(name, t.tag_type(name).ok_or_else(missing)?);
                self.write_named("tag-types", name, &body, verb).await?;
            }
            (Kind::Strategy, verb) => {
                let body = strategy_definition_body(name, t.strategy(name).ok_or_else(missing)?);
                self.write_named("strategies", name, &body, verb).await?;
            }
            (Kind::Segment, verb) => {
                let body = segment_body(name, t.segment(name).ok_or_else(missing)?);
                if verb == Verb::Create {
                    let created = self
                        .create_checked(Path::new(&["api", "admin", "segments"]), &body, || {
                            self.find_segment(name)
                        })
                        .await?;
                    if let Some(id) = created.get("id").and_then(Value::as_i64) {
                        self.lock_ids().insert(name.to_string(), id);
                    }
                } else {
                    let id = self.segment_id(name)?;
                    let id = id.to_string();
                    self.put(Path::new(&["api", "admin", "segments", &id]), &body)
                        .await?;
                }
            }
            (Kind::Flag, Verb::Archive) => {
                // Archives (Unleash's DELETE on a project flag archives; it never deletes).
                self.client
                    .write_idempotent::<Value, Value>(
                        Method::DELETE,
                        Path::new(&["api", "admin", "projects", self.project, "features", name]),
                        None,
                    )
                    .await?;
            }
            (Kind::Flag, Verb::Create) => {
                self.create_flag(name, t.flag(name).ok_or_else(missing)?)
                    .await?
            }
            (Kind::Flag, _) => {
                self.overwrite_flag(name, t.flag(name).ok_or_else(missing)?, &a.environments)
                    .await?
            }
        }
        Ok(())
    }

    /// Creates (`POST /api/admin/{collection}`) or overwrites
    /// (`PUT /api/admin/{collection}/{name}`) an object that Unleash keys by name.
    async fn write_named(
        &self,
        collection: &str,
        name: &str,
        body: &Value,
        verb: Verb,
    ) -> Result<()> {
        let item = Path::new(&["api", "admin", collection, name]);
        if verb == Verb::Create {
            let list = Path::new(&["api", "admin", collection]);
            self.create_checked(list, body, || self.exists(item.clone()))
                .await?;
        } else {
            self.put(item, body).await?;
        }
        Ok(())
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.segment_ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spoke's segment names by id.
    fn segment_names(&self) -> HashMap<i64, String> {
        self.lock_ids()
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect()
    }

    fn segment_id(&self, name: &str) -> Result<i64> {
        self.lock_ids()
            .get(name)
            .copied()
            .ok_or_else(|| ClientError::Decode {
                instance: self.client.instance().to_string(),
                method: Method::GET,
                path: "/api/admin/segments".into(),
                detail: format!("segment `{name}` does not exist on the spoke"),
            })
    }

    async fn put(&self, path: Path<'_>, body: &Value) -> Result<Value> {
        self.client
            .write_idempotent(Method::PUT, path, Some(body))
            .await
    }

    /// `Some(body)` when GET answers, `None` on 404.
    async fn exists(&self, path: Path<'_>) -> Result<Option<Value>> {
        match self.client.get::<Value>(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn find_segment(&self, name: &str) -> Result<Option<Value>> {
        let segments: wire::Segments = self
            .client
            .get(Path::new(&["api", "admin", "segments"]))
            .await?;
        Ok(segments
            .segments
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| json!({"id": s.id})))
    }

    /// POSTs a create; after an ambiguous failure, looks the object up with `check` and
    /// repeats the create only if it is not there.
    async fn create_checked<F, Fut>(&self, path: Path<'_>, body: &Value, check: F) -> Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        Ok(self.create_or_find(path, body, check).await?.0)
    }

    /// [`Self::create_checked`], also telling whether the object was found by a lookup
    /// (`true`) rather than created by this call's answer (`false`).
    ///
    /// The client repeats a create that surely was not processed (429, 503). After an
    /// ambiguous failure (no answer, reset, 502, 504) the object is looked up and the
    /// create sent again only if it is not there, up to the client's retry budget. A
    /// refusal because the object exists (409, or Unleash's 500 for a duplicate key) is
    /// checked by the same lookup and counts as done when the object is there.
    async fn create_or_find<F, Fut>(
        &self,
        path: Path<'_>,
        body: &Value,
        check: F,
    ) -> Result<(Value, bool)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
    {
        let mut repeat = 0;
        loop {
            let e = match self.client.create::<Value, _>(path.clone(), body).await {
                Ok(v) => return Ok((v, false)),
                Err(e) => e,
            };
            let instance = self.client.instance();
            if e.is_already_exists() {
                tracing::info!(%instance, "{e}; looking it up");
                return match check().await? {
                    Some(v) => Ok((v, true)),
                    None => Err(e),
                };
            }
            if !e.is_ambiguous() || repeat >= self.client.retries() {
                return Err(e);
            }
            repeat += 1;
            tracing::warn!(%instance, "{e}; checking whether the create took effect (lookup {repeat})");
            if let Some(v) = check().await? {
                return Ok((v, true));
            }
        }
    }

    /// Makes sure the tags exist on the spoke as tags (not yet on any flag), so that a
    /// flag can be created with them: Unleash creates a flag's tags with it only if they
    /// exist (otherwise the whole create fails). Each tag is created once per spoke.
    async fn ensure_tags(&self, tags: &TagSet) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let known = self
            .tags
            .get_or_try_init(|| async {
                let list: wire::TagList = self
                    .client
                    .get(Path::new(&["api", "admin", "tags"]))
                    .await?;
                let known = list.tags.into_iter().map(|t| (t.tag_type, t.tag_value));
                Ok::<_, ClientError>(known.collect())
            })
            .await?;
        for t in tags {
            let key = (t.kind.clone(), t.value.clone());
            if known.contains(&key) {
                continue;
            }
            let once = self
                .tag_creates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default()
                .clone();
            once.get_or_try_init(|| async {
                self.create_checked(Path::new(&["api", "admin", "tags"]), &tag_body(t), || {
                    self.exists(Path::new(&["api", "admin", "tags", &t.kind, &t.value]))
                })
                .await
                .map(drop)
            })
            .await?;
        }
        Ok(())
    }

    async fn create_flag(&self, name: &str, flag: &Flag) -> Result<()> {
        let p = self.project;
        // The tags go with the create: one write per flag fewer than tagging it after,
        // for one write per distinct tag.
        self.ensure_tags(&flag.tags).await?;
        let tags: Vec<Value> = flag.tags.iter().map(tag_body).collect();
        let (_, found) = self
            .create_or_find(
                Path::new(&["api", "admin", "projects", p, "features"]),
                &json!({"name": name, "description": flag.description.clone().unwrap_or_default(),
                        "type": flag.kind, "impressionData": flag.impression_data, "tags": tags}),
                || {
                    self.exists(Path::new(&[
                        "api", "admin", "projects", p, "features", name,
                    ]))
                },
            )
            .await?;
        if found && !flag.tags.is_empty() {
            // Created by an attempt whose answer was lost: the flag and its tags are
            // created together, but look rather than assume.
            let have: wire::TagList = self
                .client
                .get(Path::new(&["api", "admin", "features", name, "tags"]))
                .await?;
            let have = Flag {
                tags: have
                    .tags
                    .into_iter()
                    .map(|t| Tag {
                        kind: t.tag_type,
                        value: t.tag_value,
                    })
                    .collect(),
                ..Flag::default()
            };
            self.sync_tags(name, flag, Some(&have)).await?;
        }
        let empty = FlagEnvironment::default();
        for env in &self.target.environments {
            let want = flag.environments.get(env).unwrap_or(&empty);
            self.sync_environment(name, env, want, &[], false, None)
                .await?;
        }
        self.sync_dependencies(name, flag, None).await?;
        self.sync_links(name, flag, None, &[]).await?;
        Ok(())
    }

    async fn overwrite_flag(&self, name: &str, flag: &Flag, environments: &[String]) -> Result<()> {
        let p = self.project;
        let actual = self.target.actual.flags.get(name);
        if let Some(have) = actual {
            if have.kind != flag.kind
                || have.description != flag.description
                || have.impression_data != flag.impression_data
            {
                self.put(
                    Path::new(&["api", "admin", "projects", p, "features", name]),
                    &json!({"description": flag.description.clone().unwrap_or_default(), "type": flag.kind,
                            "impressionData": flag.impression_data, "stale": have.stale}),
                )
                .await?;
            }
        }
        let detail: wire::FeatureDetail = self
            .client
            .get(Path::new(&[
                "api", "admin", "projects", p, "features", name,
            ]))
            .await?;
        let empty = FlagEnvironment::default();
        for env in environments {
            let want = flag.environments.get(env).unwrap_or(&empty);
            let current = detail.environments.iter().find(|e| &e.name == env);
            let mut have: Vec<wire::FeatureStrategy> =
                current.map(|e| e.strategies.clone()).unwrap_or_default();
            have.sort_by(wire::FeatureStrategy::by_sort_order);
            let enabled_now = current.is_some_and(|e| e.enabled);
            // Environment variants as read when apply began (what the plan compared).
            let variants_now = actual
                .and_then(|f| f.environments.get(env))
                .map(|e| &e.variants);
            self.sync_environment(name, env, want, &have, enabled_now, variants_now)
                .await?;
        }
        self.sync_tags(name, flag, actual).await?;
        self.sync_dependencies(name, flag, actual).await?;
        self.sync_links(name, flag, actual, &detail.links).await?;
        Ok(())
    }

    /// Makes one environment's strategies equal to `want` (updated in place where one
    /// exists, so ids stay stable; created or deleted where needed; re-ordered), then sets
    /// the enabled state: after the strategies exist, so the server adds no default one.
    async fn sync_environment(
        &self,
        flag: &str,
        env: &str,
        want: &FlagEnvironment,
        have: &[wire::FeatureStrategy],
        enabled_now: bool,
        variants_now: Option<&Vec<Variant>>,
    ) -> Result<()> {
        let p = self.project;
        let base = [
            "api",
            "admin",
            "projects",
            p,
            "features",
            flag,
            "environments",
            env,
            "strategies",
        ];
        let mut ids: Vec<String> = Vec::new();
        let mut known: HashSet<String> = have.iter().filter_map(|s| s.id.clone()).collect();
        // Strategies kept in place keep their sort order, and new ones on an empty
        // environment are created with theirs (the server keeps a create's sortOrder).
        // Only a mix of kept and new or removed ones, or an order the server left
        // ambiguous (equal sort orders), calls for an explicit re-order.
        let reorder = !have.is_empty()
            && (have.len() != want.strategies.len()
                || have.windows(2).any(|w| {
                    w[0].sort_order.unwrap_or_default() >= w[1].sort_order.unwrap_or_default()
                }));
        let segment_names = if have.is_empty() {
            HashMap::new()
        } else {
            self.segment_names()
        };
        for (i, s) in want.strategies.iter().enumerate() {
            match have.get(i).and_then(|h| Some((h, h.id.clone()?))) {
                Some((h, id)) => {
                    // Written only when it differs: a changed flag costs the writes of
                    // what changed, not one per strategy.
                    if !same_strategy(s, h, &segment_names) {
                        let order = h.sort_order.map_or(json!(i), sort_order_value);
                        let body = self.strategy_body(s, order)?;
                        let mut path = base.to_vec();
                        path.push(&id);
                        self.put(Path::new(&path), &body).await?;
                    }
                    ids.push(id);
                }
                None => {
                    let body = self.strategy_body(s, json!(i))?;
                    // Strategies have no natural key: after a lost answer, one that is
                    // new since this environment was read and holds the same content is
                    // the one this create made.
                    let created = self
                        .create_checked(Path::new(&base), &body, || async {
                            let list: wire::StrategyList =
                                self.client.get(Path::new(&base)).await?;
                            let names = self.segment_names();
                            Ok(list
                                .into_iter()
                                .filter(|h| h.id.as_ref().is_some_and(|id| !known.contains(id)))
                                .find(|h| same_strategy(s, h, &names))
                                .map(|h| json!({"id": h.id})))
                        })
                        .await?;
                    let id = created
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    known.insert(id.clone());
                    ids.push(id);
                }
            }
        }
        for surplus in have.iter().skip(want.strategies.len()) {
            if let Some(id) = &surplus.id {
                let mut path = base.to_vec();
                path.push(id);
                self.client
                    .write_idempotent::<Value, Value>(Method::DELETE, Path::new(&path), None)
                    .await?;
            }
        }
        if reorder && ids.len() > 1 {
            let mut path = base.to_vec();
            path.push("set-sort-order");
            let order: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| json!({"id": id, "sortOrder": i}))
                .collect();
            self.client
                .write_idempotent::<Value, Value>(
                    Method::POST,
                    Path::new(&path),
                    Some(&Value::Array(order)),
                )
                .await?;
        }
        if !want.variants.is_empty() && variants_now != Some(&want.variants) {
            let variants: Vec<Value> = want.variants.iter().map(variant_body).collect();
            self.put(
                Path::new(&[
                    "api",
                    "admin",
                    "projects",
                    p,
                    "features",
                    flag,
                    "environments",
                    env,
                    "variants",
                ]),
                &Value::Array(variants),
            )
            .await?;
        }
        if want.enabled != enabled_now {
            let switch = if want.enabled { "on" } else { "off" };
            self.client
                .write_idempotent::<Value, Value>(
                    Method::POST,
                    Path::new(&[
                        "api",
                        "admin",
                        "projects",
                        p,
                        "features",
                        flag,
                        "environments",
                        env,
                        switch,
                    ]),
                    Some(&json!({})),
                )
                .await?;
        }
        Ok(())
    }

    fn strategy_body(&self, s: &Strategy, sort_order: Value) -> Result<Value> {
        let segments = s
            .segments
            .iter()
            .map(|name| self.segment_id(name))
            .collect::<Result<Vec<i64>>>()?;
        Ok(json!({
            "name": s.name,
            "title": s.title.clone().unwrap_or_default(),
            "disabled": s.disabled,
            "parameters": s.parameters,
            "constraints": s.constraints.iter().map(constraint_body).collect::<Vec<_>>(),
            "variants": s.variants.iter().map(variant_body).collect::<Vec<_>>(),
            "segments": segments,
            "sortOrder": sort_order,
        }))
    }

    async fn sync_tags(&self, flag: &str, want: &Flag, have: Option<&Flag>) -> Result<()> {
        let empty = Default::default();
        let have_tags = have.map_or(&empty, |h| &h.tags);
        let added: Vec<Value> = want.tags.difference(have_tags).map(tag_body).collect();
        let removed: Vec<Value> = have_tags.difference(&want.tags).map(tag_body).collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.put(
            Path::new(&["api", "admin", "features", flag, "tags"]),
            &json!({"addedTags": added, "removedTags": removed}),
        )
        .await?;
        Ok(())
    }

    async fn sync_dependencies(&self, flag: &str, want: &Flag, have: Option<&Flag>) -> Result<()> {
        let p = self.project;
        let have_deps: BTreeMap<&str, _> = have
            .map(|h| {
                h.dependencies
                    .iter()
                    .map(|d| (d.feature.as_str(), d))
                    .collect()
            })
            .unwrap_or_default();
        for d in &want.dependencies {
            if have_deps.get(d.feature.as_str()) == Some(&d) {
                continue;
            }
            // The endpoint upserts: repeating it is harmless.
            self.client
                .write_idempotent::<Value, Value>(
                    Method::POST,
                    Path::new(&["api", "admin", "projects", p, "features", flag, "dependencies"]),
                    Some(&json!({"feature": d.feature, "enabled": d.enabled, "variants": d.variants})),
                )
                .await?;
        }
        for parent in have_deps.keys() {
            if !want.dependencies.iter().any(|d| d.feature == *parent) {
                self.client
                    .write_idempotent::<Value, Value>(
                        Method::DELETE,
                        Path::new(&[
                            "api",
                            "admin",
                            "projects",
                            p,
                            "features",
                            flag,
                            "dependencies",
                            parent,
                        ]),
                        None,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn sync_links(
        &self,
        flag: &str,
        want: &Flag,
        have: Option<&Flag>,
        ids: &[wire::Link],
    ) -> Result<()> {
        let p = self.project;
        let have_links = have.map(|h| h.links.as_slice()).unwrap_or_default();
        for link in ids {
            let wanted = want.links.iter().any(|l| {
                l.url == link.url && l.title == link.title.clone().filter(|t| !t.is_empty())
            });
            if let (false, Some(id)) = (wanted, &link.id) {
                self.client
                    .write_idempotent::<Value, Value>(
                        Method::DELETE,
                        Path::new(&["api", "admin", "projects", p, "features", flag, "link", id]),
                        None,
                    )
                    .await?;
            }
        }
        for link in &want.links {
            if have_links.contains(link) {
                continue;
            }
            let path = ["api", "admin", "projects", p, "features", flag, "link"];
            self.create_checked(
                Path::new(&path),
                &json!({"url": link.url, "title": link.title}),
                || async {
                    let detail: wire::FeatureDetail = self
                        .client
                        .get(Path::new(&[
                            "api", "admin", "projects", p, "features", flag,
                        ]))
                        .await?;
                    Ok(detail
                        .links
                        .iter()
                        .any(|l| l.url == link.url)
                        .then(|| json!({})))
                },
            )
            .await?;
        }
        Ok(())
    }
}

fn tag_body(t: &Tag) -> Value {
    json!({"type": t.kind, "value": t.value})
}

/// Whether the strategy the spoke holds (`have`, as the admin API returns it) is `want`.
fn same_strategy(
    want: &Strategy,
    have: &wire::FeatureStrategy,
    segment_names: &HashMap<i64, String>,
) -> bool {
    let Some(segments) = have
        .segments
        .iter()
        .map(|id| segment_names.get(id).cloned())
        .collect::<Option<Vec<String>>>()
    else {
        return false;
    };
    crate::state::normalize::strategy_with_segments(have, segments) == *want
}

/// A sort order read from the server, written back as the same JSON number.
fn sort_order_value(order: f64) -> Value {
    if order.fract() == 0.0 && order.abs() < 1e15 {
        json!(order as i64)
    } else {
        json!(order)
    }
}

fn context_field_body(name: &str, c: &ContextField) -> Value {
    json!({
        "name": name,
        "description": c.description.clone().unwrap_or_default(),
        "stickiness": c.stickiness,
        "legalValues": c.legal_values.iter().map(|l| match &l.description {
            Some(d) => json!({"value": l.value, "description": d}),
            None => json!({"value": l.value}),
        }).collect::<Vec<_>>(),
    })
}

fn tag_type_body(name: &str, t: &TagType) -> Value {
    let mut body = json!({"name": name, "description": t.description.clone().unwrap_or_default()});
    if let Some(icon) = &t.icon {
        body["icon"] = json!(icon);
    }
    if let Some(color) = &t.color {
        body["color"] = json!(color);
    }
    body
}

fn strategy_definition_body(name: &str, s: &StrategyDefinition) -> Value {
    let mut body = json!({
        "name": name,
        "description": s.description.clone().unwrap_or_default(),
        "parameters": s.parameters.iter().map(|p| json!({
            "name": p.name, "type": p.kind,
            "description": p.description.clone().unwrap_or_default(), "required": p.required,
        })).collect::<Vec<_>>(),
    });
    if let Some(title) = &s.title {
        body["title"] = json!(title);
    }
    body
}

fn segment_body(name: &str, s: &Segment) -> Value {
    json!({
        "name": name,
        "description": s.description.clone().unwrap_or_default(),
        "constraints": s.constraints.iter().map(constraint_body).collect::<Vec<_>>(),
    })
}

fn constraint_body(c: &Constraint) -> Value {
    let mut body = json!({
        "contextName": c.context_name,
        "operator": c.operator,
        "inverted": c.inverted,
        "caseInsensitive": c.case_insensitive,
        "values": c.values,
    });
    if let Some(v) = &c.value {
        body["value"] = json!(v);
    }
    body
}

fn variant_body(v: &Variant) -> Value {
    let mut body = json!({
        "name": v.name,
        "weight": v.weight,
        "weightType": v.weight_type,
        "stickiness": v.stickiness.clone().unwrap_or_else(|| "default".into()),
    });
    if let Some(p) = &v.payload {
        body["payload"] = json!({"type": p.kind, "value": p.value});
    }
    if !v.overrides.is_empty() {
        body["overrides"] = json!(v
            .overrides
            .iter()
            .map(|o| json!({"contextName": o.context_name, "values": o.values}))
            .collect::<Vec<_>>());
    }
    body
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::client::{ClientOptions, Token};
    use crate::plan::{Action, Kind, Verb};
    use crate::state::model::{ContextField, State, Strategy};
    use crate::stub::{response, serve};

    fn client(url: &str) -> Client {
        let options = ClientOptions {
            timeout: std::time::Duration::from_secs(5),
            retries: 2,
            backoff: std::time::Duration::from_millis(1),
            ..ClientOptions::default()
        };
        Client::new("dc1", url, &Token::new("t"), options).unwrap()
    }

    fn create_region() -> (State, Action) {
        let mut hub = State::default();
        hub.context_fields
            .insert("region".into(), ContextField::default());
        (hub, create(Kind::ContextField, "region"))
    }

    async fn run(responses: Vec<String>) -> (std::result::Result<(), String>, Vec<String>) {
        let (hub, action) = create_region();
        let (mut results, seen) = run_actions(responses, &hub, BTreeMap::new(), &[action]).await;
        (results.remove(0), seen)
    }

    /// Executes `actions` in order on one stubbed spoke; returns their results and the
    /// requests the stub saw.
    async fn run_actions(
        responses: Vec<String>,
        hub: &State,
        flags: BTreeMap<String, Flag>,
        actions: &[Action],
    ) -> (Vec<std::result::Result<(), String>>, Vec<String>) {
        let (url, seen) = serve(responses).await;
        let c = client(&url);
        let actual = State::default();
        let target = Target {
            hub,
            actual: &actual,
            flags,
            environments: vec![],
        };
        let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
        let mut results = Vec::new();
        for action in actions {
            results.push(spoke.execute(action).await);
        }
        let seen = seen.lock().unwrap().clone();
        (results, seen)
    }

    fn tagged(tags: &[&str]) -> Flag {
        Flag {
            kind: "release".into(),
            tags: tags
                .iter()
                .map(|t| {
                    let (kind, value) = t.split_once(':').unwrap();
                    Tag {
                        kind: kind.into(),
                        value: value.into(),
                    }
                })
                .collect(),
            ..Flag::default()
        }
    }

    fn create(kind: Kind, name: &str) -> Action {
        Action {
            kind,
            name: name.into(),
            action: Verb::Create,
            reason: crate::plan::Reason::MissingOnSpoke,
            blocked: false,
            depends_on: vec![],
            diff: None,
            environments: vec![],
            notes: vec![],
            kept: vec![],
            drift: None,
        }
    }

    const FLAGS: &str = "POST /api/admin/projects/default/features";

    #[tokio::test]
    async fn a_flags_tags_go_with_its_create_each_made_once_on_the_spoke() {
        let flags = BTreeMap::from([
            ("f1".to_string(), tagged(&["team:aa", "team:bb"])),
            ("f2".to_string(), tagged(&["team:aa"])),
        ]);
        let (results, seen) = run_actions(
            vec![
                response("200 OK", r#"{"segments":[]}"#),
                response(
                    "200 OK",
                    r#"{"version":1,"tags":[{"type":"team","value":"bb"}]}"#,
                ),
                response("201 Created", r#"{"type":"team","value":"aa"}"#),
                response("201 Created", r#"{"name":"f1"}"#),
                response("201 Created", r#"{"name":"f2"}"#),
            ],
            &State::default(),
            flags,
            &[create(Kind::Flag, "f1"), create(Kind::Flag, "f2")],
        )
        .await;
        assert_eq!(results, [Ok(()), Ok(())]);
        assert_eq!(
            seen,
            [
                "GET /api/admin/segments",
                "GET /api/admin/tags",
                "POST /api/admin/tags",
                FLAGS,
                FLAGS,
            ],
            "team:bb exists, team:aa is made once, no flag is tagged after its create"
        );
    }

    #[tokio::test]
    async fn a_tag_made_meanwhile_elsewhere_is_looked_up_and_no_error() {
        // 409, or the 500 Unleash answers when two creates of one tag race.
        for refusal in [
            response("409 Conflict", r#"{"message":"tag already exists"}"#),
            response(
                "500 Internal Server Error",
                r#"{"message":"duplicate key value violates unique constraint \"tags_pkey\""}"#,
            ),
        ] {
            let (results, seen) = run_actions(
                vec![
                    response("200 OK", r#"{"segments":[]}"#),
                    response("200 OK", r#"{"version":1,"tags":[]}"#),
                    refusal,
                    response("200 OK", r#"{"tag":{"type":"team","value":"aa"}}"#),
                    response("201 Created", r#"{"name":"f"}"#),
                ],
                &State::default(),
                BTreeMap::from([("f".to_string(), tagged(&["team:aa"]))]),
                &[create(Kind::Flag, "f")],
            )
            .await;
            assert_eq!(results, [Ok(())]);
            assert_eq!(
                seen[2..],
                ["POST /api/admin/tags", "GET /api/admin/tags/team/aa", FLAGS]
            );
        }
    }

    #[tokio::test]
    async fn concurrent_flag_creates_share_one_create_of_a_new_tag() {
        let flags = BTreeMap::from([
            ("f1".to_string(), tagged(&["team:aa"])),
            ("f2".to_string(), tagged(&["team:aa"])),
            ("f3".to_string(), tagged(&["team:aa"])),
        ]);
        let hub = State::default();
        let mut responses = vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("200 OK", r#"{"version":1,"tags":[]}"#),
            response("201 Created", r#"{"type":"team","value":"aa"}"#),
        ];
        responses.extend((0..3).map(|_| response("201 Created", r#"{"name":"f"}"#)));
        let (url, seen) = serve(responses).await;
        let c = client(&url);
        let actual = State::default();
        let target = Target {
            hub: &hub,
            actual: &actual,
            flags,
            environments: vec![],
        };
        let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
        let actions = ["f1", "f2", "f3"].map(|f| create(Kind::Flag, f));
        let results = futures::future::join_all(actions.iter().map(|a| spoke.execute(a))).await;
        assert_eq!(results, [Ok(()), Ok(()), Ok(())]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[1..],
            [
                "GET /api/admin/tags",
                "POST /api/admin/tags",
                FLAGS,
                FLAGS,
                FLAGS
            ],
            "one tag create, before every flag create that needs it"
        );
    }

    /// A flag `f` whose production environment holds one strategy.
    fn flag_with_strategy() -> Flag {
        let strategy = Strategy {
            name: "flexibleRollout".into(),
            title: Some("half".into()),
            parameters: [("rollout".to_string(), "50".to_string())]
                .into_iter()
                .collect(),
            ..Strategy::default()
        };
        let mut flag = tagged(&[]);
        flag.environments.insert(
            "production".into(),
            FlagEnvironment {
                strategies: vec![strategy],
                ..FlagEnvironment::default()
            },
        );
        flag
    }

    /// Creates [`flag_with_strategy`] when the strategy create's answer is lost and the
    /// environment then lists `listed`.
    async fn strategy_create_after_a_lost_answer(listed: &str, then: Vec<String>) -> Vec<String> {
        let mut responses = vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("201 Created", r#"{"name":"f"}"#),
            response("502 Bad Gateway", ""),
            response("200 OK", listed),
        ];
        responses.extend(then);
        let (url, seen) = serve(responses).await;
        let c = client(&url);
        let (hub, actual) = (State::default(), State::default());
        let target = Target {
            hub: &hub,
            actual: &actual,
            flags: BTreeMap::from([("f".to_string(), flag_with_strategy())]),
            environments: vec!["production".into()],
        };
        let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
        assert_eq!(spoke.execute(&create(Kind::Flag, "f")).await, Ok(()));
        let seen = seen.lock().unwrap().clone();
        seen[2..].to_vec()
    }

    const STRATEGIES: &str =
        "/api/admin/projects/default/features/f/environments/production/strategies";

    #[tokio::test]
    async fn a_strategy_created_before_a_lost_answer_is_found_by_its_content() {
        let other =
            r#"{"id":"s1","name":"flexibleRollout","title":"half","parameters":{"rollout":"10"}}"#;
        let same =
            r#"{"id":"s2","name":"flexibleRollout","title":"half","parameters":{"rollout":"50"}}"#;
        let post = format!("POST {STRATEGIES}");
        let get = format!("GET {STRATEGIES}");
        let seen = strategy_create_after_a_lost_answer(&format!("[{other},{same}]"), vec![]).await;
        assert_eq!(seen, [post.clone(), get.clone()], "found: not sent again");

        let seen = strategy_create_after_a_lost_answer(
            &format!("[{other}]"),
            vec![response("200 OK", r#"{"id":"s3"}"#)],
        )
        .await;
        assert_eq!(
            seen,
            [post.clone(), get, post],
            "another strategy is no match"
        );
    }

    /// Creates flag `f` tagged `team:aa` and `team:bb` when the create's answer is lost
    /// but the flag exists, and the spoke answers `tags` for the flag.
    async fn create_after_a_lost_answer(tags: &str) -> Vec<String> {
        let (results, seen) = run_actions(
            vec![
                response("200 OK", r#"{"segments":[]}"#),
                response(
                    "200 OK",
                    r#"{"tags":[{"type":"team","value":"aa"},{"type":"team","value":"bb"}]}"#,
                ),
                response("502 Bad Gateway", ""),
                response("200 OK", r#"{"name":"f"}"#),
                response("200 OK", tags),
                response("200 OK", "{}"),
            ],
            &State::default(),
            BTreeMap::from([("f".to_string(), tagged(&["team:aa", "team:bb"]))]),
            &[create(Kind::Flag, "f")],
        )
        .await;
        assert_eq!(results, [Ok(())]);
        seen
    }

    #[tokio::test]
    async fn a_flag_created_before_a_lost_answer_gets_the_tags_it_lacks() {
        let seen = create_after_a_lost_answer(r#"{"tags":[{"type":"team","value":"aa"}]}"#).await;
        assert_eq!(
            seen[2..],
            [
                FLAGS,
                "GET /api/admin/projects/default/features/f",
                "GET /api/admin/features/f/tags",
                "PUT /api/admin/features/f/tags",
            ]
        );
        let both = r#"{"tags":[{"type":"team","value":"aa"},{"type":"team","value":"bb"}]}"#;
        let seen = create_after_a_lost_answer(both).await;
        assert_eq!(
            seen.last().map(String::as_str),
            Some("GET /api/admin/features/f/tags"),
            "nothing more to write when the tags came with the create"
        );
    }

    #[tokio::test]
    async fn a_create_that_took_effect_before_a_gateway_error_is_not_repeated() {
        let (result, seen) = run(vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("502 Bad Gateway", ""),
            response("200 OK", r#"{"name":"region"}"#),
        ])
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(
            seen,
            [
                "GET /api/admin/segments",
                "POST /api/admin/context",
                "GET /api/admin/context/region"
            ]
        );
    }

    #[tokio::test]
    async fn a_create_that_did_not_take_effect_is_sent_again_once() {
        let (result, seen) = run(vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("504 Gateway Timeout", ""),
            response("404 Not Found", r#"{"message":"not found"}"#),
            response("201 Created", r#"{"name":"region"}"#),
        ])
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(
            seen,
            [
                "GET /api/admin/segments",
                "POST /api/admin/context",
                "GET /api/admin/context/region",
                "POST /api/admin/context"
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_create_is_reported_with_the_servers_message() {
        let (result, seen) = run(vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("400 Bad Request", r#"{"message":"Name is already taken"}"#),
        ])
        .await;
        assert_eq!(
            result,
            Err(
                "dc1: POST /api/admin/context failed with HTTP 400: Name is already taken"
                    .to_string()
            )
        );
        assert_eq!(seen.len(), 2, "a definite refusal is not retried");
    }
}
