use std::path::Path;

use super::*;

#[track_caller]
fn ok(source: &str) -> Topology {
    match parse(Path::new("dir/flagfleet.toml"), source) {
        Ok(t) => t,
        Err(e) => panic!("expected a valid topology, got:\n{e}"),
    }
}

#[track_caller]
fn problems(source: &str) -> Vec<String> {
    match parse(Path::new("flagfleet.toml"), source) {
        Ok(_) => panic!("expected problems"),
        Err(TopologyError::Invalid { diagnostics }) => {
            diagnostics.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

const MINIMAL: &str = r#"
[hub]
file = "hub.json"

[[spokes]]
name = "eu-west"
url = "https://eu.example.com/"
token_env = "EU_TOKEN"
"#;

#[test]
fn defaults_fill_in_what_is_left_out() {
    let t = ok(MINIMAL);
    assert_eq!(t.hub.instance.name, "hub");
    assert_eq!(t.hub.instance.project, "default");
    assert_eq!(t.hub.environments, vec!["production"]);
    assert_eq!(
        t.hub.instance.location,
        Location::File(PathBuf::from("dir/hub.json"))
    );
    let spoke = &t.spokes[0];
    assert_eq!(
        spoke.environments,
        BTreeMap::from([("production".to_string(), "production".to_string())])
    );
    assert_eq!(spoke.scaffolding, Scaffolding::default());
    assert!(t.select.selects_everything());
    match &spoke.instance.location {
        Location::Live { url, token, .. } => {
            assert_eq!(url, "https://eu.example.com");
            assert_eq!(
                token,
                &TokenSource::Env {
                    var: "EU_TOKEN".into(),
                    at: "dir/flagfleet.toml:8".into()
                }
            );
        }
        other => panic!("expected live, got {other:?}"),
    }
}

#[test]
fn full_example_parses_every_key() {
    let t = ok(r#"
[hub]
name = "central"
url = "http://127.0.0.1:4242"
token_env = "HUB_TOKEN"
project = "default"
environments = ["production", "development"]

[select]
tags = ["sync:global"]
names = ["checkout-*"]
exclude = ["*-local"]

[scaffolding]
segments = "create-only"
tag_types = "ignore"

[[spokes]]
name = "eu-west"
url = "http://127.0.0.1:4243"
token_file = "secrets/eu"
environments = { production = "prod", development = "dev" }
select = { exclude = ["beta-*"] }
scaffolding = { segments = "sync" }
prune = true

[[spokes.overrides]]
flags = ["checkout-*"]
environment = "prod"
enabled = false
parameters = { rollout = 10 }
"#);
    assert_eq!(t.hub.instance.name, "central");
    let s = &t.spokes[0];
    assert_eq!(s.environments["development"], "dev");
    assert_eq!(s.scaffolding.segments, Policy::Sync);
    assert_eq!(s.scaffolding.tag_types, Policy::Ignore);
    assert_eq!(t.scaffolding.segments, Policy::CreateOnly);
    assert!(s.prune);
    let o = &s.overrides[0];
    assert_eq!(o.parameters["rollout"], "10");
    assert_eq!(o.enabled, Some(false));
    assert!(o.matches("checkout-v2") && !o.matches("search"));
    assert!(matches!(
        &s.instance.location,
        Location::Live { token: TokenSource::File { path, .. }, .. } if path == Path::new("dir/secrets/eu")
    ));
}

#[test]
fn selection_is_union_of_tags_and_names_minus_exclusions() {
    let t = ok(&format!(
        "{MINIMAL}\n[select]\ntags = [\"sync:global\"]\nnames = [\"checkout-*\"]\nexclude = [\"*-local\"]\n"
    ));
    let s = &t.select;
    assert!(s.matches("checkout-v2", std::iter::empty()));
    assert!(s.matches("search", [("sync", "global")].into_iter()));
    assert!(!s.matches("search", [("team", "x")].into_iter()));
    assert!(!s.matches("checkout-local", std::iter::empty()));
    assert!(!s.matches("x-local", [("sync", "global")].into_iter()));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let p = problems(
        r#"
[hub]
url = "https://a.invalid"

[[spokes]]
name = "x"
file = "x.json"

[[spokes]]
name = "x"
"#,
    );
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].contains("[hub] has a `url` but no `token_env`"));
    // Sorted by position: the second spoke's table starts before its `name` key.
    assert!(p[1].starts_with("flagfleet.toml:9:1: spoke `x` has neither `url` nor `file`"));
    assert!(
        p[2].starts_with("flagfleet.toml:10:8: duplicate instance name `x` (first used on line 6)")
    );
}

#[test]
fn a_token_in_the_url_is_refused_without_echoing_it() {
    let p = problems(
        r#"
[hub]
url = "https://user:s3cret@example.com"
token_env = "T"
[[spokes]]
name = "a"
file = "a.json"
"#,
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("carries credentials"));
    assert!(!p[0].contains("s3cret"));
}
