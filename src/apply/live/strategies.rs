//! A flag's environment: its strategies (updated in place, created, deleted,
//! re-ordered), its variants and whether it is enabled.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{json, Value};

use super::{LiveSpoke, Result};
use crate::client::Path;
use crate::state::model::{Constraint, FlagEnvironment, Strategy, Variant};
use crate::state::wire;

impl LiveSpoke<'_> {
    /// Makes one environment's strategies equal to `want` (updated in place where one
    /// exists, so ids stay stable; created or deleted where needed; re-ordered), then sets
    /// the enabled state: after the strategies exist, so the server adds no default one.
    pub(super) async fn sync_environment(
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
        self.sync_strategies(&base, &want.strategies, have).await?;
        self.sync_variants(flag, env, want, variants_now).await?;
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

    /// Makes the strategies under `base` (an environment's `.../strategies`) equal to
    /// `want`, in order.
    async fn sync_strategies(
        &self,
        base: &[&str],
        want: &[Strategy],
        have: &[wire::FeatureStrategy],
    ) -> Result<()> {
        let mut ids: Vec<String> = Vec::new();
        let mut known: HashSet<String> = have.iter().filter_map(|s| s.id.clone()).collect();
        // Strategies kept in place keep their sort order, and new ones on an empty
        // environment are created with theirs (the server keeps a create's sortOrder).
        // Only a mix of kept and new or removed ones, or an order the server left
        // ambiguous (equal sort orders), calls for an explicit re-order.
        let reorder = !have.is_empty()
            && (have.len() != want.len()
                || have.windows(2).any(|w| {
                    w[0].sort_order.unwrap_or_default() >= w[1].sort_order.unwrap_or_default()
                }));
        let segment_names = if have.is_empty() {
            HashMap::new()
        } else {
            self.segment_names()
        };
        for (i, s) in want.iter().enumerate() {
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
                    let id = self.create_strategy(base, s, i, &known).await?;
                    known.insert(id.clone());
                    ids.push(id);
                }
            }
        }
        for surplus in have.iter().skip(want.len()) {
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
        Ok(())
    }

    /// Creates strategy `s` at position `i` under `base` and returns its id.
    async fn create_strategy(
        &self,
        base: &[&str],
        s: &Strategy,
        i: usize,
        known: &HashSet<String>,
    ) -> Result<String> {
        let body = self.strategy_body(s, json!(i))?;
        // Strategies have no natural key: after a lost answer, one that is new since
        // this environment was read and holds the same content is the one this create
        // made.
        let created = self
            .create_checked(Path::new(base), &body, || async {
                let list: wire::StrategyList = self.client.get(Path::new(base)).await?;
                let names = self.segment_names();
                Ok(list
                    .into_iter()
                    .filter(|h| h.id.as_ref().is_some_and(|id| !known.contains(id)))
                    .find(|h| same_strategy(s, h, &names))
                    .map(|h| json!({"id": h.id})))
            })
            .await?;
        Ok(created
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Sets an environment's variants when the hub has some and they differ from those
    /// read when apply began (what the plan compared).
    async fn sync_variants(
        &self,
        flag: &str,
        env: &str,
        want: &FlagEnvironment,
        variants_now: Option<&Vec<Variant>>,
    ) -> Result<()> {
        let p = self.project;
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
        Ok(())
    }

    pub(super) fn strategy_body(&self, s: &Strategy, sort_order: Value) -> Result<Value> {
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
}

/// Whether the strategy the spoke holds (`have`, as the admin API returns it) is `want`.
pub(super) fn same_strategy(
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
pub(super) fn sort_order_value(order: f64) -> Value {
    if order.fract() == 0.0 && order.abs() < 1e15 {
        json!(order as i64)
    } else {
        json!(order)
    }
}

pub(super) fn constraint_body(c: &Constraint) -> Value {
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

pub(super) fn variant_body(v: &Variant) -> Value {
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
