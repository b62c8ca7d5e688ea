//! Drift attribution: for every flag a plan overwrites on a live spoke, who changed it
//! since flagfleet last wrote it there, read from the instances' event logs
//! (`GET /api/admin/search/events`).
//!
//! flagfleet recognises its own writes by the identity its token writes events under:
//! the `username` (and `email`, if any) that `GET /api/admin/user` answers for that token.
//! For an admin API token that is the token's name (`createdBy` of its events).
//!
//! - Spoke changes: the spoke's events for the flag newer than flagfleet's last write to
//!   it there (all of them are someone else's, by construction).
//! - Hub changes: the hub's events for the flag newer than that write.
//! - Origin: `spoke`, `hub` or `both` as those lists say; `unknown` where the log cannot
//!   tell: flagfleet's last write is not in what was read (no events, log cleaned up, or
//!   past the request budget), or neither side has a change since.
//!
//! Cost, per plan: nothing unless a spoke has a flag overwrite. Then, per such spoke, one
//! `GET /api/admin/user` and at most [`REQUESTS`] event searches (1,000 events each, the
//! overwritten flags' names as the filter); and on the hub, once per plan whatever the
//! number of spokes, at most [`REQUESTS`] event searches of the project's events. Unleash
//! 8.2 puts no default rate limit on the event search.

use std::collections::BTreeMap;

use tokio::sync::OnceCell;

use crate::api::wire::Event;
use crate::api::Admin;
use crate::client::{Client, ClientError, ClientOptions};
use crate::plan::{Change, Drift, Kind, Origin, Reason, SpokePlan, Verb};
use crate::topology::{Instance, OnDrift, Spoke};

/// Event searches per instance per plan, at most.
pub const REQUESTS: usize = 4;
/// Events per search page (Unleash's maximum).
const PAGE: usize = 1000;
/// Flag names per search (keeps the URL short).
const NAMES_PER_SEARCH: usize = 100;
/// Changes listed per side of one flag, newest first.
const LISTED: usize = 10;

/// A log event as a plan's [`Change`].
fn change(e: &Event) -> Change {
    Change {
        by: e.created_by.clone(),
        at: e.created_at.clone(),
        event: e.id,
        kind: e.kind.clone(),
    }
}

/// Events read from one instance, by flag, newest first; `complete` when the whole log
/// for those flags was read (not cut by the request budget).
#[derive(Debug, Default)]
pub struct Log {
    by_flag: BTreeMap<String, Vec<Event>>,
    complete: bool,
}

/// Reads the events of `project` on an instance, for `flags` (all flags when `None`),
/// newest first, in at most [`REQUESTS`] searches.
async fn read_log(
    client: &Client,
    project: &str,
    flags: Option<&[&str]>,
) -> Result<Log, ClientError> {
    let groups: Vec<Option<String>> = match flags {
        None => vec![None],
        Some(flags) => flags
            .chunks(NAMES_PER_SEARCH)
            .map(|c| Some(format!("IS_ANY_OF:{}", c.join(","))))
            .collect(),
    };
    let project_filter = format!("IS:{project}");
    let mut log = Log {
        complete: true,
        ..Log::default()
    };
    let mut requests = 0;
    for group in &groups {
        let mut offset = 0;
        loop {
            if requests == REQUESTS {
                log.complete = false;
                return Ok(log);
            }
            requests += 1;
            let page = Admin::new(client)
                .search_events(&project_filter, group.as_deref(), PAGE, offset)
                .await?;
            let n = page.events.len();
            for e in page.events {
                if let Some(flag) = e.feature_name.clone() {
                    log.by_flag.entry(flag).or_default().push(e);
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

/// The names the instance records this client's writes under (`createdBy`).
async fn identity(client: &Client) -> Result<Vec<String>, ClientError> {
    let me = Admin::new(client).current_user().await?;
    Ok([me.user.username, me.user.email]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect())
}

/// The hub's event log, read at most once per plan (on a connection of its own) and only
/// when a spoke needs it. A hub snapshot has none.
#[derive(Debug)]
pub struct HubLog {
    hub: Instance,
    options: ClientOptions,
    cell: OnceCell<Option<Log>>,
}

impl HubLog {
    /// The log of `hub`, not read yet.
    pub fn new(hub: Instance, options: ClientOptions) -> Self {
        Self {
            hub,
            options,
            cell: OnceCell::new(),
        }
    }

    async fn get(&self) -> Option<&Log> {
        self.cell
            .get_or_init(|| async {
                let client = crate::state::connect(&self.hub, &self.options).ok()??;
                match read_log(&client, &self.hub.project, None).await {
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

/// Attributes every flag overwrite of `plan` (a live spoke's, read with `spoke_client`)
/// and, with `on_drift = "block"`, turns spoke-originated drift into a blocked skip.
/// A log that cannot be read (an older Unleash, a token without the permission) leaves
/// the origin unknown, logged at `-v`; the plan goes on.
pub async fn attribute(
    plan: &mut SpokePlan,
    spoke: &Spoke,
    spoke_client: &Client,
    hub_log: &HubLog,
) {
    let flags: Vec<&str> = plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::Flag && a.action == Verb::Overwrite)
        .map(|a| a.name.as_str())
        .collect();
    if flags.is_empty() {
        return;
    }
    let read = async {
        let me = identity(spoke_client).await?;
        let log = read_log(spoke_client, &spoke.instance.project, Some(&flags)).await?;
        Ok::<_, ClientError>((me, log))
    };
    let (me, spoke_log) = match read.await {
        Ok(read) => read,
        Err(e) => {
            tracing::info!(
                "cannot read the event log of spoke {}, drift origin left unknown: {e}",
                spoke.instance.name
            );
            (Vec::new(), Log::default())
        }
    };
    let hub_log = hub_log.get().await;
    for a in plan
        .actions
        .iter_mut()
        .filter(|a| a.kind == Kind::Flag && a.action == Verb::Overwrite)
    {
        let drift = drift_of(&a.name, &me, &spoke_log, hub_log);
        if drift.on_spoke() && spoke.on_drift == OnDrift::Block {
            let by = drift
                .spoke_changes
                .first()
                .map_or(String::new(), |c| c.by.clone());
            a.action = Verb::Skip;
            a.blocked = true;
            a.reason = Reason::DriftedOnSpoke(by);
            a.environments.clear();
        }
        a.drift = Some(drift);
    }
    plan.summary = crate::plan::Summary::of(&plan.actions);
}

/// The drift of one flag from the logs read; `me` are flagfleet's names on the spoke.
fn drift_of(flag: &str, me: &[String], spoke: &Log, hub: Option<&Log>) -> Drift {
    let empty = Vec::new();
    let events = spoke.by_flag.get(flag).unwrap_or(&empty);
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
    let hub_events = hub.and_then(|h| h.by_flag.get(flag));
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
    use super::*;

    fn event(id: i64, by: &str, at: &str) -> Event {
        Event {
            id,
            kind: "feature-updated".into(),
            created_by: by.into(),
            created_at: at.into(),
            feature_name: Some("f".into()),
        }
    }

    fn log(events: Vec<Event>, complete: bool) -> Log {
        Log {
            by_flag: BTreeMap::from([("f".to_string(), events)]),
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
        assert_eq!((d.origin, d.hub_changes.len()), (Origin::Hub, 1));
        // No hub log: a spoke change is known, the hub's side is not.
        assert_eq!(drift_of("f", &me, &spoke, None).origin, Origin::Unknown);
        // No write of flagfleet's in the log: it cannot tell since when.
        let others = log(vec![event(9, "alice", "2026-11-30T14:02:00.000Z")], true);
        let d = drift_of("f", &me, &others, Some(&hub_busy));
        assert_eq!((d.origin, d.spoke_changes.len()), (Origin::Unknown, 1));
        // Nothing on either side since: unknown, not guessed.
        assert_eq!(
            drift_of("f", &me, &own_last, Some(&hub_quiet)).origin,
            Origin::Unknown
        );
    }
}
