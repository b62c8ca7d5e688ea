//! Seeds a lab server through the admin API with a rich configuration: every kind of
//! object and field that flagfleet must read and sync.

use serde_json::{json, Value};

use super::Admin;

const P: &str = "/api/admin/projects/default/features";

/// The hub configuration the end-to-end tests read, plan and apply.
pub fn rich_hub(a: &Admin) {
    rich_hub_with(a, true);
}

/// [`rich_hub`] with or without its flag link (Unleash 6.x has no links).
pub fn rich_hub_with(a: &Admin, links: bool) {
    // Scaffolding.
    a.post(
        "/api/admin/context",
        json!({"name": "region", "description": "data-center region", "stickiness": true,
               "legalValues": [{"value": "us"}, {"value": "eu", "description": "Europe"}, {"value": "apac"}]}),
    );
    a.post(
        "/api/admin/context",
        json!({"name": "tenant", "description": "customer tenant",
               "legalValues": [{"value": "t1"}, {"value": "t2"}, {"value": "t3"}]}),
    );
    // Used only inside a segment: the export does not list it; the reader must still see it.
    a.post(
        "/api/admin/context",
        json!({"name": "plan", "legalValues": [{"value": "pro"}, {"value": "enterprise"}]}),
    );
    a.post(
        "/api/admin/tag-types",
        json!({"name": "team", "description": "owning team", "icon": "group"}),
    );
    a.post(
        "/api/admin/tag-types",
        json!({"name": "sync", "description": "fleet sync scope"}),
    );
    let beta = a.post(
        "/api/admin/segments",
        json!({"name": "beta-users", "description": "early adopters",
               "constraints": [{"contextName": "tenant", "operator": "IN", "values": ["t2", "t1"]}]}),
    );
    let premium = a.post(
        "/api/admin/segments",
        json!({"name": "premium", "constraints": [
            {"contextName": "plan", "operator": "IN", "values": ["pro", "enterprise"]},
            {"contextName": "userId", "operator": "STR_ENDS_WITH", "values": ["@corp.example"], "caseInsensitive": true}]}),
    );
    a.post(
        "/api/admin/strategies",
        json!({"name": "by-tenant", "title": "By tenant", "description": "on for listed tenants",
               "parameters": [
                   {"name": "tenants", "type": "list", "description": "tenant ids", "required": true},
                   {"name": "percent", "type": "percentage", "description": "", "required": false}]}),
    );
    let (beta, premium) = (id(&beta), id(&premium));

    // checkout-v2: three strategies, created in one order and re-ordered, so that the
    // export's array order differs from the evaluation order.
    feature(a, "checkout-v2", "release", "new checkout flow", true);
    let rollout = strategy(
        a,
        "checkout-v2",
        "production",
        json!({"name": "flexibleRollout", "title": "Half of EU and US",
               "parameters": {"rollout": "50", "stickiness": "default", "groupId": "checkout-v2"},
               "constraints": [
                   {"contextName": "region", "operator": "IN", "values": ["us", "eu"]},
                   {"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2024-01-01T00:00:00.000Z"},
                   {"contextName": "appName", "operator": "STR_STARTS_WITH", "values": ["web"], "inverted": true}],
               "segments": [beta],
               "variants": [
                   {"name": "blue", "weight": 200, "weightType": "fix", "stickiness": "default",
                    "payload": {"type": "json", "value": "{\"color\":\"blue\"}"}},
                   {"name": "green", "weight": 800, "weightType": "variable", "stickiness": "default",
                    "payload": {"type": "string", "value": "green"}}]}),
    );
    let tenant = strategy(
        a,
        "checkout-v2",
        "production",
        json!({"name": "by-tenant", "parameters": {"tenants": "t1,t2", "percent": "20"},
               "constraints": [{"contextName": "tenant", "operator": "NOT_IN", "values": ["t3"]}],
               "segments": [premium, beta]}),
    );
    let kill = strategy(
        a,
        "checkout-v2",
        "production",
        json!({"name": "default", "title": "everyone (off)", "disabled": true}),
    );
    a.post(
        &format!("{P}/checkout-v2/environments/production/strategies/set-sort-order"),
        json!([{"id": tenant, "sortOrder": 0}, {"id": kill, "sortOrder": 1}, {"id": rollout, "sortOrder": 2}]),
    );
    enable(a, "checkout-v2", "production");
    strategy(
        a,
        "checkout-v2",
        "development",
        json!({"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": "checkout-v2"}}),
    );
    tag(a, "checkout-v2", "team", "payments");
    tag(a, "checkout-v2", "sync", "global");
    if links {
        a.post(
            &format!("{P}/checkout-v2/link"),
            json!({"url": "https://tracker.example.com/PAY-1", "title": "Epic"}),
        );
    }

    // A parent and a child that depends on it.
    feature(a, "parent-flag", "release", "", false);
    strategy(
        a,
        "parent-flag",
        "production",
        json!({"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "default", "groupId": "parent-flag"}}),
    );
    enable(a, "parent-flag", "production");
    feature(a, "child-flag", "experiment", "needs its parent", false);
    strategy(
        a,
        "child-flag",
        "production",
        json!({"name": "flexibleRollout", "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "child-flag"},
               "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]},
                               {"contextName": "tenant", "operator": "IN", "values": ["t1"]}],
               "variants": [
                   {"name": "a", "weight": 300, "weightType": "variable", "stickiness": "userId"},
                   {"name": "b", "weight": 700, "weightType": "variable", "stickiness": "userId"}]}),
    );
    a.post(
        &format!("{P}/child-flag/dependencies"),
        json!({"feature": "parent-flag", "enabled": true}),
    );
    tag(a, "child-flag", "sync", "global");

    // Disabled everywhere, no strategies; and a stale operational flag.
    feature(
        a,
        "kill-switch-search",
        "kill-switch",
        "turns search off",
        false,
    );
    ops_cache(a);

    // An archived flag: never read as active, but known as taken.
    feature(a, "old-flag", "release", "retired", false);
    a.send("DELETE", &format!("{P}/old-flag"), None);
}

/// A stale operational flag, the same on hub and drifted spoke.
fn ops_cache(a: &Admin) {
    feature(a, "ops-cache", "operational", "cache tuning", false);
    strategy(
        a,
        "ops-cache",
        "production",
        json!({"name": "applicationHostname", "parameters": {"hostNames": "web-1,web-2"}}),
    );
    enable(a, "ops-cache", "production");
    a.send(
        "PATCH",
        &format!("{P}/ops-cache"),
        Some(json!([{"op": "replace", "path": "/stale", "value": true}])),
    );
}

/// Adds `count` flags with one strategy each, named `bulk-0000`..., 8 requests at a time.
pub fn bulk_flags(a: &Admin, count: usize) {
    std::thread::scope(|scope| {
        let chunk = count.div_ceil(8);
        for start in (0..count).step_by(chunk) {
            scope.spawn(move || {
                for i in start..(start + chunk).min(count) {
                    let name = format!("bulk-{i:04}");
                    feature(a, &name, "release", "", false);
                    strategy(
                        a,
                        &name,
                        "production",
                        json!({"name": "flexibleRollout", "parameters": {"rollout": "10", "stickiness": "default", "groupId": name}}),
                    );
                }
            });
        }
    });
}

/// `count` flags `pair-NNNN` with two strategies in production, created as
/// flexibleRollout then default and re-ordered so that default is evaluated first.
pub fn reordered_pairs(a: &Admin, count: usize) {
    std::thread::scope(|scope| {
        let chunk = count.div_ceil(8).max(1);
        for start in (0..count).step_by(chunk) {
            scope.spawn(move || {
                for i in start..(start + chunk).min(count) {
                    let name = format!("pair-{i:04}");
                    feature(a, &name, "release", "", false);
                    let rollout = strategy(
                        a,
                        &name,
                        "production",
                        json!({"name": "flexibleRollout", "parameters": {"rollout": "10", "stickiness": "default", "groupId": name}}),
                    );
                    let fallback = strategy(a, &name, "production", json!({"name": "default"}));
                    a.post(
                        &format!("{P}/{name}/environments/production/strategies/set-sort-order"),
                        json!([{"id": fallback, "sortOrder": 0}, {"id": rollout, "sortOrder": 1}]),
                    );
                }
            });
        }
    });
}

pub fn feature(a: &Admin, name: &str, kind: &str, description: &str, impressions: bool) {
    a.post(
        P,
        json!({"name": name, "type": kind, "description": description, "impressionData": impressions}),
    );
}

/// Adds a strategy and returns its id.
pub fn strategy(a: &Admin, flag: &str, env: &str, body: Value) -> String {
    let created = a.post(&format!("{P}/{flag}/environments/{env}/strategies"), body);
    created["id"].as_str().expect("strategy id").to_string()
}

pub fn enable(a: &Admin, flag: &str, env: &str) {
    a.post(&format!("{P}/{flag}/environments/{env}/on"), json!({}));
}

pub fn tag(a: &Admin, flag: &str, kind: &str, value: &str) {
    a.post(
        &format!("/api/admin/features/{flag}/tags"),
        json!({"type": kind, "value": value}),
    );
}

fn id(v: &Value) -> Value {
    v["id"].clone()
}

/// A spoke that has drifted from [`rich_hub`]: some of the same objects with other
/// content, plus things only the spoke has.
pub fn drifted_spoke(a: &Admin) {
    // Legal values that differ both ways from the hub's (hub: us, eu, apac).
    a.post(
        "/api/admin/context",
        json!({"name": "region", "description": "data-center region", "stickiness": true,
               "legalValues": [{"value": "eu", "description": "Europe"}, {"value": "emea"}]}),
    );
    a.post(
        "/api/admin/context",
        json!({"name": "tenant", "description": "customer tenant",
               "legalValues": [{"value": "t1"}, {"value": "t2"}, {"value": "t3"}]}),
    );
    a.post(
        "/api/admin/tag-types",
        json!({"name": "sync", "description": "fleet sync scope"}),
    );
    // Same name as the hub's segment, other constraints.
    let beta = a.post(
        "/api/admin/segments",
        json!({"name": "beta-users", "description": "early adopters",
               "constraints": [{"contextName": "tenant", "operator": "IN", "values": ["t1"]}]}),
    );
    // Only the spoke has this custom strategy and this flag.
    a.post(
        "/api/admin/strategies",
        json!({"name": "geo-fence", "description": "local only",
               "parameters": [{"name": "zone", "type": "string", "description": "", "required": false}]}),
    );
    feature(a, "eu-cookie-banner", "release", "spoke-local", false);
    strategy(
        a,
        "eu-cookie-banner",
        "production",
        json!({"name": "geo-fence", "parameters": {"zone": "eu"},
               "constraints": [{"contextName": "region", "operator": "IN", "values": ["emea"]}]}),
    );
    enable(a, "eu-cookie-banner", "production");
    // The hub's checkout-v2 with drifted strategies: other rollout, one strategy missing.
    feature(a, "checkout-v2", "release", "new checkout flow", true);
    strategy(
        a,
        "checkout-v2",
        "production",
        json!({"name": "flexibleRollout", "title": "Half of EU and US",
               "parameters": {"rollout": "30", "stickiness": "default", "groupId": "checkout-v2"},
               "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
               "segments": [beta["id"].clone()]}),
    );
    enable(a, "checkout-v2", "production");
    tag(a, "checkout-v2", "sync", "global");
    // Identical to the hub: nothing to do.
    ops_cache(a);
    // Archived on the spoke: must never be revived by a sync.
    feature(
        a,
        "kill-switch-search",
        "kill-switch",
        "turns search off",
        false,
    );
    a.send("DELETE", &format!("{P}/kill-switch-search"), None);
}

/// `count` flags `fleet-NN` on top of [`rich_hub`] for the apply-under-faults tests: each
/// tagged with tags shared with others (one of four new `team` tags, one of three new
/// `simple` tags), with a rollout strategy with constraints and variants in production
/// (every third one also using segment `beta-users`), a strategy in development for every
/// other one, every fifth one depending on `parent-flag`, every fourth one with a link.
pub fn tagged_fleet(a: &Admin, count: usize) {
    let segments = a.get("/api/admin/segments");
    let beta = segments["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "beta-users")
        .map(id)
        .expect("rich_hub's segment beta-users");
    std::thread::scope(|scope| {
        let chunk = count.div_ceil(4).max(1);
        for start in (0..count).step_by(chunk) {
            let beta = beta.clone();
            scope.spawn(move || {
                for i in start..(start + chunk).min(count) {
                    tagged_flag(a, i, &beta);
                }
            });
        }
    });
}

fn tagged_flag(a: &Admin, i: usize, beta: &Value) {
    let name = format!("fleet-{i:02}");
    feature(a, &name, "release", &format!("fleet flag {i}"), i % 2 == 0);
    let segments = if i % 3 == 0 { json!([beta]) } else { json!([]) };
    strategy(
        a,
        &name,
        "production",
        json!({"name": "flexibleRollout", "title": format!("rollout {i}"),
               "parameters": {"rollout": format!("{}", 10 + i), "stickiness": "default", "groupId": name},
               "constraints": [
                   {"contextName": "region", "operator": "IN", "values": ["eu", "us"]},
                   {"contextName": "userId", "operator": "STR_ENDS_WITH", "values": [format!("@t{i}.example")], "caseInsensitive": true}],
               "segments": segments,
               "variants": [
                   {"name": "on", "weight": 500, "weightType": "variable", "stickiness": "default",
                    "payload": {"type": "string", "value": format!("v{i}")}},
                   {"name": "off", "weight": 500, "weightType": "variable", "stickiness": "default"}]}),
    );
    if i % 2 == 0 {
        strategy(
            a,
            &name,
            "production",
            json!({"name": "by-tenant", "parameters": {"tenants": "t1", "percent": "5"}}),
        );
        strategy(a, &name, "development", json!({"name": "default"}));
    }
    enable(a, &name, "production");
    tag(a, &name, "team", &format!("squad-{}", i % 4));
    tag(a, &name, "simple", &format!("wave-{}", i % 3));
    if i % 5 == 0 {
        a.post(
            &format!("{P}/{name}/dependencies"),
            json!({"feature": "parent-flag", "enabled": true}),
        );
    }
    if i % 4 == 0 {
        a.post(
            &format!("{P}/{name}/link"),
            json!({"url": format!("https://tracker.example.com/FLEET-{i}"), "title": "ticket"}),
        );
    }
}

/// What sets Unleash versions apart, added to a [`rich_hub`]: a flag with a strategy of
/// every constraint operator all versions have (and the segment `beta-users`), and, as the server can hold them, a flag
/// and a segment using `REGEX` (7.5 and later) and a flag of type `sunset` (8.0 and
/// later).
pub fn version_extras(a: &Admin, regex: bool, sunset: bool) {
    a.post("/api/admin/context", json!({"name": "score"}));
    a.post("/api/admin/context", json!({"name": "appVersion"}));
    let c = |name: &str, op: &str, value: Value| {
        let mut c = json!({"contextName": name, "operator": op});
        match value {
            Value::Array(_) => c["values"] = value,
            _ => c["value"] = value,
        }
        c
    };
    // The rich hub's segment, here too: the flag of the rich hub that uses it has a link,
    // which a 6.x spoke cannot hold.
    let beta = a.get("/api/admin/segments")["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "beta-users")
        .map(id)
        .expect("the rich hub's segment beta-users");
    feature(
        a,
        "every-operator",
        "experiment",
        "one constraint per operator",
        false,
    );
    strategy(
        a,
        "every-operator",
        "production",
        json!({"name": "flexibleRollout", "title": "operators",
               "parameters": {"rollout": "30", "stickiness": "default", "groupId": "every-operator"},
               "constraints": [
                   c("tenant", "IN", json!(["t1"])),
                   c("tenant", "NOT_IN", json!(["t3"])),
                   c("userId", "STR_CONTAINS", json!(["corp"])),
                   c("userId", "STR_STARTS_WITH", json!(["u-"])),
                   c("userId", "STR_ENDS_WITH", json!([".example"])),
                   c("score", "NUM_EQ", json!("7")),
                   c("score", "NUM_GT", json!("1")),
                   c("score", "NUM_GTE", json!("2")),
                   c("score", "NUM_LT", json!("100")),
                   c("score", "NUM_LTE", json!("99")),
                   c("currentTime", "DATE_AFTER", json!("2024-01-01T00:00:00.000Z")),
                   c("currentTime", "DATE_BEFORE", json!("2030-01-01T00:00:00.000Z")),
                   c("appVersion", "SEMVER_EQ", json!("1.2.3")),
                   c("appVersion", "SEMVER_GT", json!("1.0.0")),
                   c("appVersion", "SEMVER_LT", json!("9.0.0"))],
               "segments": [beta],
               "variants": [
                   {"name": "csv", "weight": 500, "weightType": "variable", "stickiness": "default",
                    "payload": {"type": "csv", "value": "a,b"}},
                   {"name": "num", "weight": 500, "weightType": "variable", "stickiness": "default",
                    "payload": {"type": "number", "value": "42"}}]}),
    );
    enable(a, "every-operator", "production");
    tag(a, "every-operator", "sync", "global");
    if regex {
        let by_regex = a.post(
            "/api/admin/segments",
            json!({"name": "regex-users", "constraints": [c("userId", "REGEX", json!("^admin-[0-9]+$"))]}),
        );
        feature(a, "regex-flag", "release", "REGEX in a strategy", false);
        strategy(
            a,
            "regex-flag",
            "production",
            json!({"name": "default", "constraints": [c("userId", "REGEX", json!("^u-.*"))]}),
        );
        feature(
            a,
            "regex-segment-flag",
            "release",
            "REGEX in a segment",
            false,
        );
        strategy(
            a,
            "regex-segment-flag",
            "production",
            json!({"name": "default", "segments": [id(&by_regex)]}),
        );
        enable(a, "regex-segment-flag", "production");
    }
    if sunset {
        feature(a, "retiring-flag", "sunset", "on its way out", false);
    }
}
