//! Reads a live instance with as few requests as the API allows, concurrently, and
//! without the requests Unleash rate-limits where another way exists.
//!
//! Per read: one batch export per environment, the four scaffolding lists, the project
//! list before and after the exports (its flag count checks the exports), and the server's
//! version (`ui-config`, read with the first project list; a plan blocks by it, see
//! [`crate::capability`]). On Unleash 6.x, whose batch export reports every flag enabled
//! in every environment, one more request (the project's flag list) gives the enabled
//! states; see [`crate::api::version::export_reports_enabled`]. The export
//! does not carry strategy order, and no admin endpoint lists a project's strategies
//! with their order in one request (checked in the source of 8.2.0, 7.6.5 and 6.10.1).
//! Where a flag has two or more strategies in an environment, the order comes from one
//! request per such flag when there are a few (at most [`PER_FLAG_LIMIT`]), else from one
//! playground evaluation of the environment (which lists every flag's strategies in
//! evaluation order, but evaluates every flag of the project), where only flags the
//! playground does not account for exactly (or a server without it) cost one request each.
//! Nothing else grows with the number of flags of the project.
//!
//! Flag names taken outside the project's active flags (archived, or in another project)
//! are read in one of two ways ([`Taken`]). A plan needs only the names it could create,
//! the hub's flags missing on a spoke: [`look_up_taken`] asks for exactly those with a
//! batch export by name (none in the steady state, when the spoke has them all). A
//! snapshot holds them all: archived flags come from the flag search, the one endpoint
//! that lists them, which Unleash 8.2 limits to 15 requests a minute by default; other
//! projects' flags from the project list and, when another project holds flags, one batch
//! export of all projects.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::{stream, StreamExt, TryStreamExt};

use super::model::{Elsewhere, State};
use super::normalize::{normalize, Parts};
use super::wire;
use super::ReadError;
use crate::api::body::{ExportRequest, PlaygroundContext, PlaygroundRequest};
use crate::api::version::{export_reports_enabled, Version};
use crate::api::{Admin, FlagEnv};
use crate::client::{Client, ClientError};

/// How many per-flag strategy-order requests run at once.
const ORDER_CONCURRENCY: usize = 8;
/// Up to this many flags with two or more strategies in an environment, their order is
/// read flag by flag instead of from a playground evaluation of the whole project: one
/// round of requests at once, so never more round trips than the playground, and less
/// work for the server than evaluating every flag (measured on the lab: with 10 such
/// flags of 100, two rounds made 20 spokes' reads slower than the playground).
const PER_FLAG_LIMIT: usize = ORDER_CONCURRENCY;
/// Page size of the flag search (the server's maximum).
const SEARCH_PAGE: u64 = 100;
/// Flag names asked for in one batch export: well under the server's body limit of
/// 500 kB even for long names.
const NAMES_PER_EXPORT: usize = 1_000;

/// Which flag names outside the project's active flags a live read finds out about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// All of them, as a snapshot holds them: one flag search per 100 archived flags
    /// (rate-limited by Unleash 8.2), the project list, and a batch export of all projects
    /// when another project holds flags.
    All,
    /// None: the caller asks for the names it needs with [`look_up_taken`] (a spoke of a
    /// plan), or needs none (the hub of a plan, whose other names change no action).
    Later,
}

/// Reads `project` in `environments` from a live instance.
///
/// What waits on what: the scaffolding lists (and the names taken elsewhere) start at
/// once; the exports start when the project's flag count and the version are in (the count
/// must be read before the exports, see [`check_counts`]); the count is read again while
/// the strategy order is read, which needs the exports. So a read costs three round trips
/// after the exports' own time, whatever the number of environments.
pub async fn read_live(
    client: &Client,
    project: &str,
    environments: &[String],
    taken: Taken,
) -> Result<State, ReadError> {
    let api = Admin::new(client);
    let elsewhere = async {
        match taken {
            Taken::All => read_elsewhere(client, project, environments).await,
            Taken::Later => Ok(BTreeMap::new()),
        }
    };
    let flags = read_flags(client, project, environments);
    let (flags, segments, strategies, context, tag_types, elsewhere) = tokio::try_join!(
        flags,
        api.segments(),
        api.strategy_definitions(),
        api.context_fields(),
        api.tag_types(),
        elsewhere
    )?;
    check_counts(
        client,
        project,
        &flags.exports,
        [&flags.before, &flags.after],
    )?;

    let mut state = normalize(Parts {
        project: project.to_string(),
        exports: flags.exports,
        order: flags.order,
        segments: Some(segments.segments),
        strategies: strategies.strategies,
        context_fields: context,
        tag_types: tag_types.tag_types,
        elsewhere,
    })
    .map_err(|source| ReadError::Normalize {
        instance: client.instance().to_string(),
        source,
    })?;
    if let Some(list) = &flags.enabled {
        set_enabled(&mut state, list);
    }
    state.unleash_version = flags.version;
    Ok(state)
}

/// The project's flags as read: the exports with what completes them.
struct Flags {
    /// The project list before the exports and after them (flag counts).
    before: wire::Projects,
    after: wire::Projects,
    version: Option<Version>,
    exports: Vec<(String, wire::Export)>,
    /// The project's flag list, for a server whose export misreports enabled states.
    enabled: Option<wire::ProjectFeatures>,
    order: HashMap<(String, String), Vec<String>>,
}

/// Reads the project's flags: its flag count and the server's version, then the exports
/// (and on 6.x the flag list), then the count again and the strategy order at once.
async fn read_flags(
    client: &Client,
    project: &str,
    environments: &[String],
) -> Result<Flags, ClientError> {
    let api = Admin::new(client);
    let (before, version) = tokio::try_join!(api.projects(), read_version(client))?;
    let version = version.as_deref().and_then(Version::parse);
    let exports = futures::future::try_join_all(environments.iter().map(|env| async move {
        let request = ExportRequest {
            environment: env,
            project: Some(project),
            features: None,
        };
        let export: wire::Export = api.export(&request).await?;
        Ok::<_, ClientError>((env.clone(), export))
    }));
    let enabled = async {
        match version {
            Some(v) if !export_reports_enabled(v) => api.project_features(project).await.map(Some),
            _ => Ok(None),
        }
    };
    let (exports, enabled) = tokio::try_join!(exports, enabled)?;
    let (after, order) = tokio::try_join!(api.projects(), read_order(client, project, &exports))?;
    Ok(Flags {
        before,
        after,
        version,
        exports,
        enabled,
        order,
    })
}

/// Takes each flag's enabled state per environment from the project's flag list (for a
/// server whose export misreports it).
fn set_enabled(state: &mut State, list: &wire::ProjectFeatures) {
    for f in &list.features {
        let Some(flag) = state.flags.get_mut(&f.name).map(std::sync::Arc::make_mut) else {
            continue;
        };
        for e in &f.environments {
            if let Some(env) = flag.environments.get_mut(&e.name) {
                env.enabled = e.enabled;
            }
        }
    }
}

/// Checks each export's count of the project's active flags against the project list's
/// `featureCount`: an export that lost flags on the way (a proxy's truncated or substituted
/// answer) must not read as a project without them.
///
/// The count is read before and after the exports; when the two differ, flags were
/// created or archived meanwhile (by someone else, or by an apply that was just
/// interrupted) and no count is stable enough to compare with: the export is taken as it
/// is, like any read of a server that changes.
fn check_counts(
    client: &Client,
    project: &str,
    exports: &[(String, wire::Export)],
    [before, after]: [&wire::Projects; 2],
) -> Result<(), ReadError> {
    let count = |list: &wire::Projects| {
        list.projects
            .iter()
            .find(|p| p.id == project)
            .and_then(|p| p.feature_count)
    };
    let listed = match (count(before), count(after)) {
        (Some(b), Some(a)) if a == b => a,
        (Some(b), Some(a)) => {
            tracing::debug!(instance = %client.instance(), before = b, after = a,
                "the project's flags changed while being read; counts not compared");
            return Ok(());
        }
        // A server that does not count (or a project the token cannot list): nothing to
        // compare with.
        _ => return Ok(()),
    };
    for (environment, export) in exports {
        let exported = export
            .features
            .iter()
            .filter(|f| f.project.as_deref().is_none_or(|p| p == project))
            .filter(|f| !f.archived.unwrap_or(false))
            .count() as u64;
        if exported != listed {
            return Err(ReadError::CountMismatch {
                instance: client.instance().to_string(),
                project: project.to_string(),
                environment: environment.clone(),
                exported,
                listed,
            });
        }
    }
    Ok(())
}

/// Reads the evaluation order of every (flag, environment) with two or more strategies.
///
/// Per environment: when at most [`PER_FLAG_LIMIT`] flags have two or more strategies, one
/// request per such flag (a few quick requests cost less than evaluating the whole
/// project); otherwise one playground evaluation, and one request per flag only for
/// flags the playground does not account for exactly. The environments are read at once,
/// and the per-flag requests [`ORDER_CONCURRENCY`] at a time: at most
/// `PER_FLAG_LIMIT` requests per environment, plus the playground's misses.
async fn read_order(
    client: &Client,
    project: &str,
    exports: &[(String, wire::Export)],
) -> Result<HashMap<(String, String), Vec<String>>, ClientError> {
    let mut few: Vec<(String, String)> = Vec::new();
    let mut many: Vec<(&str, BTreeMap<&str, Vec<&str>>)> = Vec::new();
    for (env, export) in exports {
        let ids = multi_strategy_ids(project, export);
        if ids.len() > PER_FLAG_LIMIT {
            many.push((env, ids));
        } else {
            few.extend(ids.into_keys().map(|f| (f.to_string(), env.clone())));
        }
    }
    let played = futures::future::join_all(many.into_iter().map(|(env, ids)| async move {
        let played = playground_order(client, project, env).await;
        (env, ids, played)
    }));
    let (played, direct) = tokio::join!(played, flags_order(client, project, few));
    let mut order = direct?;
    let mut missed: Vec<(String, String)> = Vec::new();
    for (env, ids, played) in played {
        for (flag, mut want) in ids {
            want.sort_unstable();
            let found = played.as_ref().and_then(|p| p.get(flag)).filter(|got| {
                let mut got: Vec<&str> = got.iter().map(String::as_str).collect();
                got.sort_unstable();
                got == want
            });
            match found {
                Some(got) => {
                    order.insert((flag.to_string(), env.to_string()), got.clone());
                }
                None => missed.push((flag.to_string(), env.to_string())),
            }
        }
    }
    if !missed.is_empty() {
        tracing::debug!(
            instance = %client.instance(),
            flags = missed.len(),
            "strategy order read flag by flag where the playground did not account for it"
        );
    }
    order.extend(flags_order(client, project, missed).await?);
    Ok(order)
}

/// The export's strategy ids of each of the project's active flags with two or more
/// strategies in the export's environment.
fn multi_strategy_ids<'e>(
    project: &str,
    export: &'e wire::Export,
) -> BTreeMap<&'e str, Vec<&'e str>> {
    let ours: HashSet<&str> = export
        .features
        .iter()
        .filter(|f| f.project.as_deref().is_none_or(|p| p == project))
        .filter(|f| !f.archived.unwrap_or(false))
        .map(|f| f.name.as_str())
        .collect();
    let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &export.feature_strategies {
        if let Some(f) = s.feature_name.as_deref().filter(|f| ours.contains(f)) {
            ids.entry(f)
                .or_default()
                .push(s.id.as_deref().unwrap_or_default());
        }
    }
    ids.retain(|_, ids| ids.len() >= 2);
    ids
}

/// The order of each (flag, environment) in `which`, one request each,
/// [`ORDER_CONCURRENCY`] at a time.
async fn flags_order(
    client: &Client,
    project: &str,
    which: Vec<(String, String)>,
) -> Result<HashMap<(String, String), Vec<String>>, ClientError> {
    stream::iter(which)
        .map(|(flag, env)| async move {
            let ids = flag_order(client, project, &flag, &env).await?;
            Ok::<_, ClientError>(((flag, env), ids))
        })
        .buffer_unordered(ORDER_CONCURRENCY)
        .try_collect()
        .await
}

/// Every flag's strategy ids in evaluation order in one environment, from the playground
/// (which evaluates the project's flags as an SDK would, strategies in their order).
/// `None` when the server has no playground or refuses it: the caller reads flag by flag.
async fn playground_order(
    client: &Client,
    project: &str,
    env: &str,
) -> Option<HashMap<String, Vec<String>>> {
    let request = PlaygroundRequest {
        environment: env,
        projects: [project],
        context: PlaygroundContext {
            app_name: "flagfleet",
        },
    };
    let played = match Admin::new(client).playground(&request).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(instance = %client.instance(), error = %e, "no playground");
            return None;
        }
    };
    Some(
        played
            .features
            .into_iter()
            .map(|f| {
                let ids = f.strategies.data.into_iter().filter_map(|s| s.id).collect();
                (f.name, ids)
            })
            .collect(),
    )
}

/// One flag's strategy ids in evaluation order in one environment.
async fn flag_order(
    client: &Client,
    project: &str,
    flag: &str,
    env: &str,
) -> Result<Vec<String>, ClientError> {
    let at = FlagEnv {
        project,
        flag,
        environment: env,
    };
    let mut list = Admin::new(client).strategies(at).await?;
    list.sort_by(wire::FeatureStrategy::by_sort_order);
    Ok(list.into_iter().filter_map(|s| s.id).collect())
}

/// Flag names taken outside the project's active flags: archived anywhere, or active in
/// another project.
async fn read_elsewhere(
    client: &Client,
    project: &str,
    environments: &[String],
) -> Result<BTreeMap<String, Elsewhere>, ClientError> {
    let archived_filter = [("archived", "IS:true")];
    let (archived, foreign) = tokio::try_join!(
        search(client, &archived_filter),
        other_projects_flags(client, project, environments),
    )?;
    let mut out = BTreeMap::new();
    for f in foreign {
        out.insert(
            f.name,
            Elsewhere {
                project: f.project.unwrap_or_default(),
                archived: false,
            },
        );
    }
    for f in archived {
        out.insert(
            f.name,
            Elsewhere {
                project: f.project,
                archived: true,
            },
        );
    }
    Ok(out)
}

/// The active flags of every project but `project`: none asked for when the project list
/// shows no other project with flags (always so on the open-source edition, which has one
/// project), else one batch export of all projects (which leaves archived flags out).
async fn other_projects_flags(
    client: &Client,
    project: &str,
    environments: &[String],
) -> Result<Vec<wire::ExportFeature>, ClientError> {
    let api = Admin::new(client);
    let projects = api.projects().await?;
    let others_have_flags = projects
        .projects
        .iter()
        .any(|p| p.id != project && p.feature_count != Some(0));
    let Some(env) = environments.first().filter(|_| others_have_flags) else {
        return Ok(Vec::new());
    };
    // An empty `features` list exports every active flag of every project.
    let request = ExportRequest {
        environment: env,
        project: None,
        features: Some(&[]),
    };
    let all: wire::ExportedFlags = api.export(&request).await?;
    Ok(all
        .features
        .into_iter()
        .filter(|f| f.project.as_deref().is_some_and(|p| p != project))
        .filter(|f| !f.archived.unwrap_or(false))
        .collect())
}

/// Finds out which of `names` are taken on the instance outside `state`'s active flags
/// (archived, or in another project) and records them in `state.elsewhere`: one batch
/// export by name per 1,000 names that are not active flags of the project, none when all
/// are. The export by name returns flags of any project, archived ones included, on every
/// Unleash version flagfleet reads; unlike the flag search, no server rate-limits it.
pub async fn look_up_taken<'n>(
    client: &Client,
    state: &mut State,
    names: impl IntoIterator<Item = &'n str>,
) -> Result<(), ClientError> {
    let wanted: Vec<&str> = names
        .into_iter()
        .filter(|n| !state.flags.contains_key(*n))
        .collect();
    let Some(env) = state.environments.first() else {
        return Ok(());
    };
    // Built before they are polled: a closure held across the awaits would make this
    // future's `Send` depend on lifetimes the compiler cannot name.
    let exports: Vec<_> = wanted
        .chunks(NAMES_PER_EXPORT)
        .map(|chunk| export_by_name(client, env, chunk))
        .collect();
    let found: Vec<Vec<wire::ExportFeature>> = stream::iter(exports)
        .buffered(ORDER_CONCURRENCY)
        .try_collect()
        .await?;
    for f in found.into_iter().flatten() {
        let archived = f.archived.unwrap_or(false);
        let project = f.project.unwrap_or_else(|| state.project.clone());
        // A flag of the project made since its export was read is no name taken
        // elsewhere; the next read sees it as a flag.
        // A name the server made up (not one Unleash allows) cannot be a hub flag's.
        let allowed = crate::api::names::NameKind::Flag.allows(&f.name);
        if allowed && (archived || project != state.project) {
            state
                .elsewhere
                .insert(f.name, Elsewhere { project, archived });
        }
    }
    Ok(())
}

/// The flags named `names` in any project, archived ones included, in one batch export.
async fn export_by_name(
    client: &Client,
    env: &str,
    names: &[&str],
) -> Result<Vec<wire::ExportFeature>, ClientError> {
    let request = ExportRequest {
        environment: env,
        project: None,
        features: Some(names),
    };
    let export: wire::ExportedFlags = Admin::new(client).export(&request).await?;
    Ok(export.features)
}

/// Every page of a flag search. The pages end where the server's `total` says, and at the
/// latest at the first page that adds no name not seen before: a server that ignores
/// `offset` while reporting a large total would otherwise be asked forever.
async fn search(
    client: &Client,
    filters: &[(&str, &str)],
) -> Result<Vec<wire::SearchFeature>, ClientError> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut offset = 0u64;
    let api = Admin::new(client);
    loop {
        let page = api.search_features(SEARCH_PAGE, offset, filters).await?;
        let got = page.features.len() as u64;
        let before = seen.len();
        for f in page.features {
            if seen.insert(f.name.clone()) {
                out.push(f);
            }
        }
        offset += got;
        let total = page.total.unwrap_or(offset);
        if got > 0 && seen.len() == before {
            tracing::warn!(
                instance = %client.instance(), offset, total,
                "flag search: a page repeated names already read; stopping there"
            );
            return Ok(out);
        }
        if got == 0 || offset >= total {
            return Ok(out);
        }
    }
}

/// What `validate` reports about a live instance besides its state.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Unleash version.
    pub version: Option<String>,
    /// Projects that exist.
    pub projects: Vec<String>,
    /// Environments that exist, with whether they are enabled.
    pub environments: Vec<(String, bool)>,
}

/// Reads the server's version, projects and environments (also proves the token works).
pub async fn read_server_info(client: &Client) -> Result<ServerInfo, ClientError> {
    let api = Admin::new(client);
    let (ui, projects, environments) =
        tokio::try_join!(api.ui_config(), api.projects(), api.environments())?;
    // Shown in a table as they are: cleaned like any other server text.
    let shown = |text: &str| crate::redact::clean(text, 100);
    Ok(ServerInfo {
        version: ui.version.as_deref().map(shown),
        projects: projects.projects.iter().map(|p| shown(&p.id)).collect(),
        environments: environments
            .environments
            .iter()
            .map(|e| (shown(&e.name), e.enabled.unwrap_or(true)))
            .collect(),
    })
}

/// Reads the server's Unleash version.
pub async fn read_version(client: &Client) -> Result<Option<String>, ClientError> {
    let ui = Admin::new(client).ui_config().await?;
    Ok(ui.version.as_deref().map(|v| crate::redact::clean(v, 100)))
}
