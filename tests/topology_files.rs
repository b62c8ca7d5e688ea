//! Every file in tests/topologies/invalid must be refused with exactly the message in its
//! snapshot (file, line, column, hint); every file in tests/topologies/valid must load.

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
