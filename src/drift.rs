//! Drift attribution: for every object a plan overwrites on a live spoke, who
//! changed it since flagfleet last wrote it there, read from the instances' event logs
//! (`GET /api/admin/search/events`).
//!
//! flagfleet recognises its own writes by the identity its token writes events under:
//! the `username` (and `email`, if any) that `GET /api/admin/user` answers for that token.
//! For an admin API token that is the token's name (`createdBy` of its events).
//!
//! - Spoke changes: the spoke's events for the object newer than flagfleet's last write to
//!   it there (all of them are someone else's, by construction).
//! - Hub changes: the hub's events for the object newer than that write.
//! - Origin: `spoke`, `hub` or `both` as those lists say; `unknown` where the log cannot
//!   tell: flagfleet's last write is not in what was read (no events, log cleaned up, or
//!   past the request budget), or neither side has a change since.
//!
//! A flag's events carry its name (`featureName`) and its project, so flags are searched
//! by name within the instance's project. Segment events (`segment-created`,
//! `segment-updated`, `segment-deleted` in Unleash 6.10 to 8.2) carry no flag name, and a
//! global segment's carry no project either (a `project` filter drops them): segments are
//! searched by event type alone and matched by the segment's name in the event's `data`
//! (the segment as written) or `preData` (as it was before), so a rename counts for both
//! names. The server hides project-less events from a token that is not a root admin's;
//! their segments' origin is then `unknown`. Context fields, tag types and strategy
//! definitions are server-wide too, and searched and matched the same way.
//!
//! With `on_drift = "block"`, an object changed on the spoke by someone else since
//! flagfleet's last write becomes a blocked skip naming who (also when the hub's side is
//! unknown, origin `unknown`: a hand-made change is never reverted for want of the hub's
//! log), and what needs it (the flags using a segment, the children of
//! a flag) is blocked in turn, as the planner blocks what needs blocked scaffolding.
//!
//! Cost, per plan: nothing unless a spoke has an overwrite. Then, per such spoke, one
//! `GET /api/admin/user` and at most [`REQUESTS`] event searches for its flag overwrites
//! (1,000 events each, the overwritten flags' names as the filter) plus at most
//! [`REQUESTS`] per other kind it overwrites (the newest events of that kind on the
//! instance); and on the hub, once per plan whatever the number of spokes, at most
//! [`REQUESTS`] searches per kind some spoke overwrites. Unleash 8.2 puts no default rate limit on the
//! event search.

use std::collections::BTreeMap;

use tokio::sync::OnceCell;

use crate::api::wire::Event;
use crate::api::Admin;
use crate::client::{Client, ClientError, ClientOptions};
use crate::plan::{Action, Carried, Change, Drift, Kind, Origin, Reason, SpokePlan, Verb};
use crate::topology::{Instance, OnDrift, Spoke};

/// Event searches per instance per plan and kind of object (flags, segments), at most.
pub const REQUESTS: usize = 4;
/// Events per search page (Unleash's maximum).
const PAGE: usize = 1000;
/// Flag names per search (keeps the URL short).
const NAMES_PER_SEARCH: usize = 100;
/// Changes listed per side of one object, newest first.
const LISTED: usize = 10;
/// The event types a write of a server-wide object produces (the `type` filter of the
/// event search), and the prefix they share; the same in Unleash 6.10 to 8.2.
fn global_events(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::ContextField => (
            "IS_ANY_OF:context-field-created,context-field-updated,context-field-deleted",
            "context-field-",
        ),
        Kind::TagType => (
            "IS_ANY_OF:tag-type-created,tag-type-updated,tag-type-deleted",
            "tag-type-",
        ),
        Kind::Strategy => (
            "IS_ANY_OF:strategy-created,strategy-updated,strategy-deleted,strategy-deprecated,strategy-reactivated",
            "strategy-",
        ),
        Kind::Segment | Kind::Flag => (
            "IS_ANY_OF:segment-created,segment-updated,segment-deleted",
            "segment-",
        ),
    }
}

/// A log event as a plan's [`Change`].
fn change(e: &Event) -> Change {
    Change {
        by: e.created_by.clone(),
        at: e.created_at.clone(),
        event: e.id,
        kind: e.kind.clone(),
    }
}

/// Events read from one instance, by object name, newest first; `complete` when the
/// whole log for those objects was read (not cut by the request budget).
#[derive(Debug, Default)]
pub struct Log {
    by_name: BTreeMap<String, Vec<Event>>,
    complete: bool,
}

/// Which events a log holds.
#[derive(Debug, Clone, Copy)]
enum Objects<'a> {
    /// Events of the flags of `project`: those named, or all when `None`.
    Flags {
        project: &'a str,
        names: Option<&'a [&'a str]>,
    },
    /// Events of a server-wide kind of object (context fields, tag types, strategy
    /// definitions, segments; a segment's of any project too).
    Global(Kind),
}

impl Objects<'_> {
    /// The filters of each search (one per group of names), in order.
    fn searches(self) -> Vec<Vec<(&'static str, String)>> {
        match self {
            Objects::Flags { project, names } => {
                let project = ("project", format!("IS:{project}"));
                match names {
                    None => vec![vec![project]],
                    Some(names) => names
                        .chunks(NAMES_PER_SEARCH)
                        .map(|c| {
                            vec![
                                project.clone(),
                                ("feature", format!("IS_ANY_OF:{}", c.join(","))),
                            ]
                        })
                        .collect(),
                }
            }
            Objects::Global(kind) => vec![vec![("type", global_events(kind).0.to_string())]],
        }
    }

    /// The names of the objects `e` concerns: a flag event's flag; a server-wide object's
    /// event's object, under its name after and before the change. None for an event of
    /// another kind (a server that ignored the filter).
    fn names_of(self, e: &Event) -> Vec<String> {
        match self {
            Objects::Flags { .. } => e.feature_name.iter().cloned().collect(),
            Objects::Global(kind) if e.kind.starts_with(global_events(kind).1) => {
                let mut names: Vec<String> = [&e.data_name, &e.pre_data_name]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                names.dedup();
                names
            }
            Objects::Global(_) => Vec::new(),
        }
    }
}

/// Reads the events of `objects` on an instance, newest first, in at most [`REQUESTS`]
/// searches.
async fn read_log(client: &Client, objects: Objects<'_>) -> Result<Log, ClientError> {
    let mut log = Log {
        complete: true,
        ..Log::default()
    };
    let mut requests = 0;
    for search in objects.searches() {
        let filters: Vec<(&str, &str)> = search.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut offset = 0;
        loop {
            if requests == REQUESTS {
                log.complete = false;
                return Ok(log);
            }
            requests += 1;
            let page = Admin::new(client)
                .search_events(&filters, PAGE, offset)
                .await?;
            let n = page.events.len();
            for e in page.events {
                for name in objects.names_of(&e) {
                    log.by_name.entry(name).or_default().push(e.clone());
                }
            }
            if n < PAGE {
                break;
            }
            offset += n;
        }
    }
    Ok(log)
}

/// The log of `objects` on `instance`, or an empty one (every origin `unknown`) when it
/// cannot be read (an older Unleash, a token without the permission), logged at `-v`.
async fn read_log_or_empty(client: &Client, instance: &str, objects: Objects<'_>) -> Log {
    read_log(client, objects).await.unwrap_or_else(|e| {
        tracing::info!("cannot read the event log of {instance}, drift origin left unknown: {e}");
        Log::default()
    })
}

/// The names the instance records this client's writes under (`createdBy`).
async fn identity(client: &Client) -> Result<Vec<String>, ClientError> {
    let me = Admin::new(client).current_user().await?;
    Ok([me.user.username, me.user.email]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect())
}

/// The hub's event logs (flags of its project, each server-wide kind), each read at most
/// once per plan (on a connection of its own) and only when a spoke needs it. A hub
/// snapshot has none.
#[derive(Debug)]
pub struct HubLog {
    hub: Instance,
    options: ClientOptions,
    /// By kind, in [`KINDS`] order.
    logs: [OnceCell<Option<Log>>; KINDS.len()],
}

/// The kinds of object whose overwrites are attributed, in the order of [`HubLog::logs`].
const KINDS: [Kind; 5] = [
    Kind::Flag,
    Kind::Segment,
    Kind::ContextField,
    Kind::TagType,
    Kind::Strategy,
];

impl HubLog {
    /// The logs of `hub`, not read yet.
    pub fn new(hub: Instance, options: ClientOptions) -> Self {
        Self {
            hub,
            options,
            logs: Default::default(),
        }
    }

    /// The hub's log of the events of `kind`.
    async fn get(&self, kind: Kind) -> Option<&Log> {
        let cell = &self.logs[KINDS.iter().position(|k| *k == kind)?];
        let objects = match kind {
            Kind::Flag => Objects::Flags {
                project: &self.hub.project,
                names: None,
            },
            _ => Objects::Global(kind),
        };
        cell.get_or_init(|| async {
            let client = crate::state::connect(&self.hub, &self.options).ok()??;
            match read_log(&client, objects).await {
                Ok(log) => Some(log),
                Err(e) => {
                    tracing::info!(
                        "cannot read the hub's event log, drift origin left unknown: {e}"
                    );
                    None
                }
            }
        })
        .await
        .as_ref()
    }
}

/// The names of the objects of `kind` that `actions` overwrite.
fn overwrites(actions: &[Action], kind: Kind) -> Vec<&str> {
    actions
        .iter()
        .filter(|a| a.kind == kind && a.action == Verb::Overwrite)
        .map(|a| a.name.as_str())
        .collect()
}

/// Attributes every overwrite of `plan` (a live spoke's, read with `spoke_client`) and,
/// with `on_drift = "block"`, turns spoke-originated drift into a blocked skip and blocks
/// what needs it. A log that cannot be read (an older Unleash, a token without the
/// permission) leaves the origin unknown, logged at `-v`; the plan goes on.
pub async fn attribute(
    plan: &mut SpokePlan,
    spoke: &Spoke,
    spoke_client: &Client,
    hub_log: &HubLog,
) {
    let wanted: Vec<(Kind, Vec<&str>)> = KINDS
        .iter()
        .map(|k| (*k, overwrites(&plan.actions, *k)))
        .filter(|(_, names)| !names.is_empty())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let name = &spoke.instance.name;
    let me = identity(spoke_client).await.unwrap_or_else(|e| {
        tracing::info!(
            "cannot tell who spoke {name}'s token writes as, drift origin left unknown: {e}"
        );
        Vec::new()
    });
    // Without flagfleet's own name no write of its can be found: nothing more to read.
    let mut logs: Vec<(Kind, Log, Option<&Log>)> = Vec::new();
    if !me.is_empty() {
        let instance = format!("spoke {name}");
        for (kind, names) in &wanted {
            let objects = match kind {
                Kind::Flag => Objects::Flags {
                    project: &spoke.instance.project,
                    names: Some(names),
                },
                _ => Objects::Global(*kind),
            };
            let spoke_log = read_log_or_empty(spoke_client, &instance, objects).await;
            logs.push((*kind, spoke_log, hub_log.get(*kind).await));
        }
    }

    let empty = Log::default();
    let mut blocked = Vec::new();
    for a in plan
        .actions
        .iter_mut()
        .filter(|a| a.action == Verb::Overwrite)
    {
        let (spoke_log, hub) = logs
            .iter()
            .find(|(k, ..)| *k == a.kind)
            .map_or((&empty, None), |(_, log, hub)| (log, *hub));
        let drift = drift_of(&a.name, &me, spoke_log, hub);
        if spoke.on_drift == OnDrift::Block && changed_on_spoke(&a.name, &me, spoke_log) {
            let by = drift
                .spoke_changes
                .first()
                .map_or(String::new(), |c| c.by.clone());
            a.action = Verb::Skip;
            a.blocked = true;
            a.reason = Reason::DriftedOnSpoke(by);
            a.environments.clear();
            blocked.push((a.kind, a.name.clone(), a.reason.clone()));
        }
        a.drift = Some(drift);
    }
    block_dependents(&mut plan.actions, blocked);
    plan.summary = crate::plan::Summary::of(&plan.actions);
}

/// Blocks every action (of `actions`, in plan order: dependencies first) that needs one
/// of `blocked` (kind, name, why), or needs an action blocked here in turn, with the
/// reasons the planner gives: `parent blocked: <flag>`, `needs <kind> <name> (<why>)`.
fn block_dependents(actions: &mut [Action], mut blocked: Vec<(Kind, String, Reason)>) {
    if blocked.is_empty() {
        return;
    }
    for a in actions.iter_mut() {
        // As the planner: a blocked skip stays as it is.
        if !a.changes() && a.blocked {
            continue;
        }
        let Some((kind, name, why)) = a
            .depends_on
            .iter()
            .find_map(|(kind, name)| blocked.iter().find(|(k, n, _)| k == kind && n == name))
        else {
            continue;
        };
        let reason = match kind {
            Kind::Flag => Reason::ParentBlocked(name.clone()),
            _ => Reason::Needs {
                kind: *kind,
                name: name.clone(),
                why: Box::new(why.clone()),
                missing: false,
            },
        };
        a.action = Verb::Skip;
        a.blocked = true;
        a.reason = reason;
        a.diff = None;
        a.environments.clear();
        a.notes.clear();
        a.kept.clear();
        a.object = Carried::default();
        blocked.push((a.kind, a.name.clone(), a.reason.clone()));
    }
}

/// Whether someone other than flagfleet changed `name` on the spoke since flagfleet's last
/// write there, as the spoke's log shows: true for origins `spoke` and `both`, and also
/// known when the hub's side is not (a hub snapshot, a hub log that cannot be read: origin
/// `unknown`), which `block` must not let through.
fn changed_on_spoke(name: &str, me: &[String], spoke: &Log) -> bool {
    spoke
        .by_name
        .get(name)
        .and_then(|events| events.iter().position(|e| me.contains(&e.created_by)))
        .is_some_and(|last_own| last_own > 0)
}

/// The drift of one object from the logs read; `me` are flagfleet's names on the spoke.
fn drift_of(name: &str, me: &[String], spoke: &Log, hub: Option<&Log>) -> Drift {
    let empty = Vec::new();
    let events = spoke.by_name.get(name).unwrap_or(&empty);
    let last_own = events.iter().position(|e| me.contains(&e.created_by));
    let spoke_changes: Vec<Change> = events[..last_own.unwrap_or(events.len())]
        .iter()
        .take(LISTED)
        .map(change)
        .collect();
    let Some(last_own) = last_own.map(|i| &events[i]) else {
        return Drift {
            origin: Origin::Unknown,
            spoke_changes,
            hub_changes: Vec::new(),
        };
    };
    let hub_events = hub.and_then(|h| h.by_name.get(name));
    let hub_changes: Vec<Change> = hub_events
        .map(|events| {
            events
                .iter()
                .filter(|e| e.created_at.as_str() > last_own.created_at.as_str())
                .take(LISTED)
                .map(change)
                .collect()
        })
        .unwrap_or_default();
    // The hub's side is known when its log was read back to flagfleet's last write.
    let hub_known = hub.is_some_and(|h| {
        h.complete
            || hub_events.is_some_and(|e| {
                e.last().is_some_and(|oldest| {
                    oldest.created_at.as_str() <= last_own.created_at.as_str()
                })
            })
    });
    let origin = match (
        !spoke_changes.is_empty(),
        !hub_changes.is_empty(),
        hub_known,
    ) {
        (true, true, _) => Origin::Both,
        (true, false, true) => Origin::Spoke,
        (false, true, _) => Origin::Hub,
        _ => Origin::Unknown,
    };
    Drift {
        origin,
        spoke_changes,
        hub_changes,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn event(id: i64, by: &str, at: &str) -> Event {
        Event {
            id,
            kind: "feature-updated".into(),
            created_by: by.into(),
            created_at: at.into(),
            feature_name: Some("f".into()),
            data_name: None,
            pre_data_name: None,
        }
    }

    fn log(events: Vec<Event>, complete: bool) -> Log {
        Log {
            by_name: BTreeMap::from([("f".to_string(), events)]),
            complete,
        }
    }

    #[test]
    fn origin_follows_the_changes_since_flagfleets_last_write() {
        let me = vec!["flagfleet".to_string()];
        let spoke = log(
            vec![
                event(9, "alice@example.com", "2026-11-30T14:02:00.000Z"),
                event(8, "alice@example.com", "2026-11-30T14:01:00.000Z"),
                event(7, "flagfleet", "2026-11-29T10:00:00.000Z"),
                event(3, "bob", "2026-11-01T10:00:00.000Z"),
            ],
            true,
        );
        let hub_quiet = log(vec![event(4, "carol", "2026-11-28T10:00:00.000Z")], true);
        let d = drift_of("f", &me, &spoke, Some(&hub_quiet));
        assert_eq!(d.origin, Origin::Spoke);
        assert_eq!(d.spoke_changes.len(), 2);
        assert_eq!(
            d.summary(),
            "drifted on spoke: 2 changes by alice@example.com, last 2026-11-30 14:02 UTC"
        );
        let hub_busy = log(vec![event(5, "carol", "2026-11-30T09:00:00.000Z")], true);
        assert_eq!(
            drift_of("f", &me, &spoke, Some(&hub_busy)).origin,
            Origin::Both
        );

        let own_last = log(
            vec![event(7, "flagfleet", "2026-11-29T10:00:00.000Z")],
            true,
        );
        let d = drift_of("f", &me, &own_last, Some(&hub_busy));
        assert!(!changed_on_spoke("f", &me, &own_last));
        assert_eq!((d.origin, d.hub_changes.len()), (Origin::Hub, 1));
        // No hub log: a spoke change is known, the hub's side is not; `block` holds it.
        let d = drift_of("f", &me, &spoke, None);
        assert_eq!(d.origin, Origin::Unknown);
        assert_eq!(
            d.summary(),
            "drift origin unknown: the logs do not tell both sides since flagfleet last wrote it; on spoke: 2 changes by alice@example.com, last 2026-11-30 14:02 UTC"
        );
        assert!(changed_on_spoke("f", &me, &spoke));
        // No write of flagfleet's in the log: it cannot tell since when.
        let others = log(vec![event(9, "alice", "2026-11-30T14:02:00.000Z")], true);
        let d = drift_of("f", &me, &others, Some(&hub_busy));
        assert!(!changed_on_spoke("f", &me, &others));
        assert_eq!((d.origin, d.spoke_changes.len()), (Origin::Unknown, 1));
        // Nothing on either side since: unknown, not guessed.
        assert_eq!(
            drift_of("f", &me, &own_last, Some(&hub_quiet)).origin,
            Origin::Unknown
        );
    }

    fn segment_event(id: i64, kind: &str, data: Option<&str>, pre: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            feature_name: None,
            data_name: data.map(Into::into),
            pre_data_name: pre.map(Into::into),
            ..event(id, "alice", "2026-11-30T14:02:00.000Z")
        }
    }

    #[test]
    fn a_segment_event_counts_for_its_name_before_and_after_the_change() {
        let names = |e: &Event| Objects::Global(Kind::Segment).names_of(e);
        assert_eq!(
            names(&segment_event(1, "segment-created", Some("beta"), None)),
            ["beta"]
        );
        assert_eq!(
            names(&segment_event(
                2,
                "segment-updated",
                Some("beta"),
                Some("beta")
            )),
            ["beta"]
        );
        assert_eq!(
            names(&segment_event(
                3,
                "segment-updated",
                Some("beta"),
                Some("old")
            )),
            ["beta", "old"]
        );
        assert_eq!(
            names(&segment_event(4, "segment-deleted", None, Some("beta"))),
            ["beta"]
        );
        // A server that ignored the type filter: other events are no segment's changes.
        assert!(names(&segment_event(5, "feature-created", Some("beta"), None)).is_empty());
        // The other server-wide kinds, as Unleash 8.2 writes their events.
        for (kind, event, other) in [
            (
                Kind::ContextField,
                "context-field-updated",
                "tag-type-updated",
            ),
            (Kind::TagType, "tag-type-created", "context-field-created"),
            (Kind::Strategy, "strategy-deprecated", "segment-updated"),
        ] {
            let objects = Objects::Global(kind);
            let e = segment_event(7, event, Some("zone"), Some("zone"));
            assert_eq!(objects.names_of(&e), ["zone"], "{event}");
            let e = segment_event(8, other, Some("zone"), None);
            assert!(objects.names_of(&e).is_empty(), "{other} for {kind:?}");
        }
        // A flag search files by flag name only.
        let flags = Objects::Flags {
            project: "default",
            names: None,
        };
        assert_eq!(flags.names_of(&event(6, "alice", "")), ["f"]);
    }

    #[test]
    fn wire_events_give_the_name_their_data_holds_whatever_its_shape() {
        let page: crate::api::wire::EventPage = serde_json::from_value(serde_json::json!({
            "events": [
                {"id": 7, "type": "segment-updated", "createdBy": "alice",
                 "createdAt": "2026-12-02T06:45:48.878Z", "featureName": null,
                 "data": {"id": 1, "name": "beta", "constraints": []},
                 "preData": {"id": 1, "name": "old"}},
                {"id": 8, "type": "feature-tagged", "createdBy": "bob",
                 "createdAt": "2026-12-02T06:45:49.000Z", "featureName": "f",
                 "data": ["not", "an", "object"], "preData": "text"},
                {"id": 9, "type": "feature-created", "createdBy": "bob",
                 "createdAt": "2026-12-02T06:45:50.000Z", "data": {"name": 3}}
            ]
        }))
        .unwrap();
        let names: Vec<_> = page
            .events
            .iter()
            .map(|e| (e.data_name.as_deref(), e.pre_data_name.as_deref()))
            .collect();
        assert_eq!(
            names,
            [(Some("beta"), Some("old")), (None, None), (None, None)]
        );
    }

    fn action(kind: &str, name: &str, verb: &str, reason: &str, depends_on: Value) -> Action {
        serde_json::from_value(serde_json::json!({
            "kind": kind, "name": name, "action": verb, "reason": reason,
            "blocked": verb == "skip" && reason != "unchanged",
            "depends_on": depends_on, "diff": "-a\n+b", "environments": ["production"],
        }))
        .unwrap()
    }

    #[test]
    fn what_needs_a_segment_blocked_for_drift_is_blocked_in_turn() {
        let drifted = Reason::DriftedOnSpoke("alice@example.com".into());
        let mut actions = vec![
            action("segment", "beta", "skip", &drifted.to_string(), json!([])),
            action(
                "flag",
                "parent",
                "overwrite",
                "differs: description",
                json!([["segment", "beta"]]),
            ),
            action(
                "flag",
                "child",
                "skip",
                "unchanged",
                json!([["flag", "parent"]]),
            ),
            action(
                "flag",
                "other",
                "overwrite",
                "differs: description",
                json!([]),
            ),
            action(
                "flag",
                "held",
                "skip",
                "archived on spoke",
                json!([["segment", "beta"]]),
            ),
        ];
        let before = actions.clone();
        block_dependents(
            &mut actions,
            vec![(Kind::Segment, "beta".into(), drifted.clone())],
        );
        let parent = &actions[1];
        assert_eq!(
            parent.reason.to_string(),
            "needs segment beta (changed on the spoke by alice@example.com since flagfleet last wrote it (on_drift = block))"
        );
        assert_eq!(
            (
                parent.action,
                parent.blocked,
                &parent.diff,
                parent.environments.len()
            ),
            (Verb::Skip, true, &None, 0)
        );
        assert_eq!(parent.depends_on, [(Kind::Segment, "beta".to_string())]);
        assert_eq!(
            (actions[2].reason.to_string(), actions[2].blocked),
            ("parent blocked: parent".to_string(), true)
        );
        // Unrelated, or blocked for a reason of its own already: as they were.
        assert_eq!(actions[3], before[3]);
        assert_eq!(actions[4], before[4]);
        assert_eq!(actions[0], before[0]);
    }
}
