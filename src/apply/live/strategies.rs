//! A flag's environment: its strategies (updated in place, created, deleted,
//! re-ordered), its variants and whether it is enabled.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::{LiveSpoke, Result};
use crate::api::body::{
    ConstraintBody, OverrideBody, PayloadBody, SortOrder, StrategyBody, VariantBody,
};
use crate::api::{wire, Created, FlagEnv};
use crate::state::model::{Constraint, FlagEnvironment, Strategy, Variant};

impl LiveSpoke<'_> {
    /// Makes one environment's strategies and variants equal to `want` ([`Self::sync_contents`]),
    /// then sets the enabled state: after the strategies exist, so the server adds no
    /// default one.
    pub(super) async fn sync_environment(
        &self,
        flag: &str,
        env: &str,
        want: &FlagEnvironment,
        have: &[wire::FeatureStrategy],
        enabled_now: bool,
        variants_now: Option<&Vec<Variant>>,
    ) -> Result<()> {
        let at = FlagEnv {
            project: self.project,
            flag,
            environment: env,
        };
        self.sync_contents(at, want, have, variants_now).await?;
        if want.enabled != enabled_now {
            self.api.set_enabled(at, want.enabled).await?;
        }
        Ok(())
    }

    /// Makes one environment's strategies equal to `want`'s (updated in place where one
    /// exists, so ids stay stable; created or deleted where needed; re-ordered), and its
    /// variants, compared with `variants_now` (as read when apply began: what the plan
    /// compared).
    pub(super) async fn sync_contents(
        &self,
        at: FlagEnv<'_>,
        want: &FlagEnvironment,
        have: &[wire::FeatureStrategy],
        variants_now: Option<&Vec<Variant>>,
    ) -> Result<()> {
        self.sync_strategies(at, &want.strategies, have).await?;
        if !want.variants.is_empty() && variants_now != Some(&want.variants) {
            let variants: Vec<VariantBody> = want.variants.iter().map(variant_body).collect();
            self.api.set_variants(at, &variants).await?;
        }
        Ok(())
    }

    /// Makes the strategies of one environment equal to `want`, in order.
    async fn sync_strategies(
        &self,
        at: FlagEnv<'_>,
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
                        self.api.update_strategy(at, &id, &body).await?;
                    }
                    ids.push(id);
                }
                None => {
                    let id = self.create_strategy(at, s, i, &known).await?;
                    known.insert(id.clone());
                    ids.push(id);
                }
            }
        }
        for surplus in have.iter().skip(want.len()) {
            if let Some(id) = &surplus.id {
                self.api.delete_strategy(at, id).await?;
            }
        }
        if reorder && ids.len() > 1 {
            let order: Vec<SortOrder> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| SortOrder { id, sort_order: i })
                .collect();
            self.api.set_sort_order(at, &order).await?;
        }
        Ok(())
    }

    /// Creates strategy `s` at position `i` and returns its id.
    async fn create_strategy(
        &self,
        at: FlagEnv<'_>,
        s: &Strategy,
        i: usize,
        known: &HashSet<String>,
    ) -> Result<String> {
        let body = self.strategy_body(s, json!(i))?;
        // Strategies have no natural key: after a lost answer, one that is new since
        // this environment was read and holds the same content is the one this create
        // made.
        let created = self
            .create_checked(
                || self.api.create_strategy(at, &body),
                || async {
                    let list = self.api.strategies(at).await?;
                    let names = self.segment_names();
                    Ok(list
                        .into_iter()
                        .filter(|h| h.id.as_ref().is_some_and(|id| !known.contains(id)))
                        .find(|h| same_strategy(s, h, &names))
                        .map(|h| Created::found(h.id)))
                },
            )
            .await?;
        Ok(created.text_id().unwrap_or_default().to_string())
    }

    /// The strategy as the spoke takes it: segments by the spoke's ids.
    pub(super) fn strategy_body(&self, s: &Strategy, sort_order: Value) -> Result<StrategyBody> {
        let segments = s
            .segments
            .iter()
            .map(|name| self.segment_id(name))
            .collect::<Result<Vec<i64>>>()?;
        Ok(StrategyBody {
            name: s.name.clone(),
            title: s.title.clone().unwrap_or_default(),
            disabled: s.disabled,
            parameters: s
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            constraints: s.constraints.iter().map(constraint_body).collect(),
            variants: s.variants.iter().map(variant_body).collect(),
            segments,
            sort_order,
        })
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

pub(super) fn constraint_body(c: &Constraint) -> ConstraintBody {
    ConstraintBody {
        context_name: c.context_name.clone(),
        operator: c.operator.clone(),
        inverted: c.inverted,
        case_insensitive: c.case_insensitive,
        values: c.values.clone(),
        value: c.value.clone(),
    }
}

pub(super) fn variant_body(v: &Variant) -> VariantBody {
    VariantBody {
        name: v.name.clone(),
        weight: v.weight,
        weight_type: v.weight_type.clone(),
        stickiness: v.stickiness.clone().unwrap_or_else(|| "default".into()),
        payload: v.payload.as_ref().map(|p| PayloadBody {
            kind: p.kind.clone(),
            value: p.value.clone(),
        }),
        overrides: v
            .overrides
            .iter()
            .map(|o| OverrideBody {
                context_name: o.context_name.clone(),
                values: o.values.clone(),
            })
            .collect(),
    }
}
