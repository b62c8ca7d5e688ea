use std::collections::BTreeMap;

use super::*;
use crate::client::{ClientOptions, Token};
use std::sync::Arc;

use crate::apply::Outcome;
use crate::plan::{Action, Carried, Kind, Object, Verb};
use crate::state::model::{ContextField, Flag, FlagEnvironment, State, Strategy, Tag};
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
        actual: &actual,
        environments: vec![],
    };
    let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
    let mut results = Vec::new();
    for action in actions {
        let action = carrying(action, hub, &flags);
        results.push(spoke.execute(&action).await.map_err(|e| e.to_string()));
    }
    let seen = seen.lock().unwrap().clone();
    (results, seen)
}

/// `a` carrying its object as the planner would: the hub's scaffolding, the flag of
/// `flags` (none when they do not hold it).
fn carrying(a: &Action, hub: &State, flags: &BTreeMap<String, Flag>) -> Action {
    let name = &a.name;
    let object = match a.kind {
        Kind::ContextField => hub
            .context_fields
            .get(name)
            .cloned()
            .map(Object::ContextField),
        Kind::TagType => hub.tag_types.get(name).cloned().map(Object::TagType),
        Kind::Strategy => hub.strategies.get(name).cloned().map(Object::Strategy),
        Kind::Segment => hub.segments.get(name).cloned().map(Object::Segment),
        Kind::Flag => flags.get(name).cloned().map(|f| Object::Flag(Arc::new(f))),
    };
    Action {
        object: Carried(object.map(Arc::new)),
        ..a.clone()
    }
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
        object: Default::default(),
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
        actual: &actual,
        environments: vec![],
    };
    let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
    let actions = ["f1", "f2", "f3"].map(|f| carrying(&create(Kind::Flag, f), &hub, &flags));
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
    let (result, seen) = create_in_production(flag_with_strategy(), responses).await;
    assert_eq!(result, Ok(()));
    seen[2..].to_vec()
}

/// Creates `flag` as `f` on a stubbed spoke that syncs `production`; returns the result
/// and the requests the stub saw.
async fn create_in_production(
    flag: Flag,
    responses: Vec<String>,
) -> (std::result::Result<(), ApplyError>, Vec<String>) {
    let (url, seen) = serve(responses).await;
    let c = client(&url);
    let actual = State::default();
    let target = Target {
        actual: &actual,
        environments: vec!["production".into()],
    };
    let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
    let mut action = create(Kind::Flag, "f");
    action.object = Carried(Some(Arc::new(Object::Flag(Arc::new(flag)))));
    let result = spoke.execute(&action).await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
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
        Err("dc1: POST /api/admin/context failed with HTTP 400: Name is already taken".to_string())
    );
    assert_eq!(seen.len(), 2, "a definite refusal is not retried");
}

#[tokio::test]
async fn an_object_missing_from_the_desired_state_fails_without_a_request() {
    let (results, seen) = run_actions(
        vec![response("200 OK", r#"{"segments":[]}"#)],
        &State::default(),
        BTreeMap::new(),
        &[
            create(Kind::ContextField, "region"),
            create(Kind::Flag, "f"),
        ],
    )
    .await;
    assert_eq!(
        results,
        [
            Err(ApplyError::NotOnHub {
                kind: Kind::ContextField,
                name: "region".into()
            }
            .to_string()),
            Err(ApplyError::NotOnHub {
                kind: Kind::Flag,
                name: "f".into()
            }
            .to_string()),
        ]
    );
    assert!(results[1]
        .as_ref()
        .is_err_and(|e| e.ends_with("f is not defined on the hub")));
    assert_eq!(seen, ["GET /api/admin/segments"]);
}

#[tokio::test]
async fn a_strategy_on_a_segment_the_spoke_lacks_fails_naming_it_before_its_write() {
    let mut flag = flag_with_strategy();
    let mut production = flag.environments.get("production").unwrap().clone();
    production.strategies[0].segments = vec!["beta-users".into()];
    flag.environments.insert("production".into(), production);
    let (result, seen) = create_in_production(
        flag,
        vec![
            response("200 OK", r#"{"segments":[]}"#),
            response("201 Created", r#"{"name":"f"}"#),
        ],
    )
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ApplyError::MissingSegment { name, .. } if name == "beta-users"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "dc1: segment `beta-users` does not exist on the spoke"
    );
    assert_eq!(
        seen,
        ["GET /api/admin/segments", FLAGS],
        "the strategy is never sent"
    );
}

/// Creates `f1` and `f2`, each on in production with one strategy, on a stubbed spoke
/// whose answers after the creates are `then`, and switches the new flags on (after an
/// interrupt if `interrupted`); returns the outcomes and the requests sent from the
/// first create on, and how many flags were left off.
async fn create_two_enabled(
    then: Vec<String>,
    interrupted: bool,
) -> (Vec<(String, Outcome)>, Vec<String>, usize) {
    let mut responses = vec![response("200 OK", r#"{"segments":[]}"#)];
    for id in ["s1", "s2"] {
        responses.push(response("201 Created", r#"{}"#));
        responses.push(response("201 Created", &format!(r#"{{"id":"{id}"}}"#)));
    }
    responses.extend(then);
    let (url, seen) = serve(responses).await;
    let c = client(&url);
    let actual = State::default();
    let target = Target {
        actual: &actual,
        environments: vec!["production".into()],
    };
    let spoke = LiveSpoke::new(&c, "default", &target).await.unwrap();
    let mut flag = flag_with_strategy();
    flag.environments.get_mut("production").unwrap().enabled = true;
    let mut outcomes = Vec::new();
    for name in ["f1", "f2"] {
        let mut action = create(Kind::Flag, name);
        action.object = Carried(Some(Arc::new(Object::Flag(Arc::new(flag.clone())))));
        spoke.execute(&action).await.unwrap();
        outcomes.push((format!("flag:{name}"), Outcome::Applied));
    }
    assert_eq!(spoke.waiting_to_be_enabled(), 2);
    let left_off = spoke.enable_new_flags(&mut outcomes, interrupted).await;
    assert_eq!(spoke.waiting_to_be_enabled(), 0);
    let seen = seen.lock().unwrap()[1..].to_vec();
    (outcomes, seen, left_off)
}

const BULK_ON: &str = "POST /api/admin/projects/default/bulk_features/environments/production/on";

#[tokio::test]
async fn new_flags_are_switched_on_together_after_their_creates() {
    let (outcomes, seen, left_off) = create_two_enabled(vec![response("200 OK", "")], false).await;
    assert_eq!(left_off, 0);
    let strategies = |f: &str| {
        format!("POST /api/admin/projects/default/features/{f}/environments/production/strategies")
    };
    assert_eq!(
        seen,
        [
            FLAGS.to_string(),
            strategies("f1"),
            FLAGS.into(),
            strategies("f2"),
            BULK_ON.into()
        ],
        "created off, then one request switches both on"
    );
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Applied));
}

#[tokio::test]
async fn a_refused_bulk_switch_goes_flag_by_flag_and_names_the_flag_left_off() {
    let refused = r#"{"name":"PermissionError","message":"no"}"#;
    let (outcomes, seen, left_off) = create_two_enabled(
        vec![
            response("400 Bad Request", r#"{"message":"bad"}"#),
            response("200 OK", ""),
            response("403 Forbidden", refused),
        ],
        false,
    )
    .await;
    let on = |f: &str| {
        format!("POST /api/admin/projects/default/features/{f}/environments/production/on")
    };
    assert_eq!(seen[4..], [BULK_ON.to_string(), on("f1"), on("f2")]);
    assert_eq!(outcomes[0].1, Outcome::Applied);
    assert_eq!(left_off, 1);
    let Outcome::Failed(e) = &outcomes[1].1 else {
        panic!("f2 should have failed: {outcomes:?}");
    };
    let e = e.to_string();
    assert!(
        e.starts_with("created, but left off in production: "),
        "{e}"
    );
    assert!(e.contains("403"), "{e}");
}

#[tokio::test]
async fn after_an_interrupt_no_flag_is_switched_on_and_each_says_so() {
    let (outcomes, seen, left_off) = create_two_enabled(vec![], true).await;
    assert_eq!(seen.len(), 4, "nothing sent after the interrupt: {seen:?}");
    assert_eq!(left_off, 2);
    for (_, o) in outcomes {
        let Outcome::Failed(e) = o else {
            panic!("should have failed: {o:?}");
        };
        assert_eq!(
            e.to_string(),
            "created, but left off in production: interrupted before new flags were switched \
             on; apply again to switch it on"
        );
    }
}
