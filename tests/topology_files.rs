//! Every file in tests/topologies/invalid must be refused with exactly the message in its
//! snapshot (file, line, column, hint); every file in tests/topologies/valid must load.

use std::path::{Path, PathBuf};

use flagfleet::topology;

#[test]
fn invalid_topologies_are_refused_with_located_messages() {
    insta::glob!("topologies/invalid/*.toml", |path| {
        let name = Path::new(path.file_name().unwrap());
        let source = std::fs::read_to_string(path).unwrap();
        let err = topology::parse(name, &source).expect_err("must be refused");
        insta::assert_snapshot!(err.to_string());
    });
}

#[test]
fn valid_topologies_load() {
    insta::glob!("topologies/valid/*.toml", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        if let Err(e) = topology::parse(path, &source) {
            panic!("{} should be valid:\n{e}", path.display());
        }
    });
}

/// The committed `docs/flagfleet.schema.json` is what `flagfleet schema` prints. After a
/// change to the topology's keys, regenerate it with
/// `cargo run -q -- schema > docs/flagfleet.schema.json`.
#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed = std::fs::read_to_string(root().join("docs/flagfleet.schema.json")).unwrap();
    assert!(
        committed == topology::json_schema(),
        "docs/flagfleet.schema.json is out of date: run `cargo run -q -- schema > docs/flagfleet.schema.json`"
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.toml` file under `dir`, recursively.
fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// The topology schema, compiled for validation.
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Self {
        let schema: serde_json::Value = serde_json::from_str(&topology::json_schema()).unwrap();
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        compiler
            .add_resource("flagfleet.schema.json", schema)
            .unwrap();
        let index = compiler
            .compile("flagfleet.schema.json", &mut schemas)
            .expect("a valid JSON Schema");
        Self { schemas, index }
    }

    /// The schema's complaints about a topology file (empty: it fits the schema).
    fn errors(&self, path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let json = serde_json::to_value(value).unwrap();
        match self.schemas.validate(&json, self.index) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }
}

/// Invalid topologies whose problem is one of shape (a key, a type, an allowed value, a
/// required table): the schema refuses them as `flagfleet` does. The others break rules
/// across keys or against the servers, which only `flagfleet validate` checks.
const INVALID_BY_SHAPE: [&str; 20] = [
    "bad_glob_and_tag.toml",   // tag without `type:`
    "empty_environments.toml", // an empty list
    "empty_file.toml",         // no [hub]
    "file_with_token.toml",    // a space in a name
    "hub_is_an_array.toml",    // hub is no table
    "insecure_http_not_a_bool.toml",
    "instance_name_with_control_character.toml",
    "keep_problems.toml",         // an unknown field, empty flags and fields
    "max_archive_problems.toml",  // a negative limit
    "missing_hub.toml",           // no [hub]
    "no_spokes.toml",             // no [[spokes]]
    "single_bracket_spokes.toml", // [spoke]: no such key
    "tag_without_value.toml",
    "token_value_instead_of_name.toml",
    "typo_in_hub_key.toml",
    "unknown_policy.toml",
    "unknown_spoke_key.toml",
    "url_not_http.toml", // not a URI
    "wave_below_one.toml",
    "wrong_value_type.toml",
];

/// Invalid topologies that a TOML parser refuses (syntax, a key twice, an integer past
/// 64 bits): there is no document to check against a schema.
const NOT_TOML: [&str; 4] = [
    "duplicate_key.toml",
    "max_archive_too_large.toml",
    "toml_syntax_error.toml",
    "truncated.toml",
];

#[test]
fn every_topology_in_the_repository_is_checked_against_the_schema() {
    let validator = Validator::new();

    let mut valid = Vec::new();
    toml_files(&root().join("examples"), &mut valid);
    toml_files(&root().join("tests/topologies/valid"), &mut valid);
    assert!(valid.len() >= 2, "{valid:?}");
    for path in &valid {
        let errors = validator.errors(path);
        assert!(
            errors.is_empty(),
            "{} should fit the schema: {errors}",
            path.display()
        );
    }

    let mut invalid = Vec::new();
    toml_files(&root().join("tests/topologies/invalid"), &mut invalid);
    invalid.sort();
    let mut refused = Vec::new();
    for path in &invalid {
        let name = path.file_name().unwrap().to_str().unwrap();
        if NOT_TOML.contains(&name) {
            continue; // not TOML at all, so there is nothing to check against a schema
        }
        let errors = validator.errors(path);
        if INVALID_BY_SHAPE.contains(&name) {
            assert!(
                !errors.is_empty(),
                "{name} is invalid by shape but fits the schema"
            );
            refused.push(name);
        } else {
            assert!(
                errors.is_empty(),
                "{name} breaks no rule of shape, yet: {errors}"
            );
        }
    }
    assert_eq!(refused.len(), INVALID_BY_SHAPE.len(), "{refused:?}");
}
