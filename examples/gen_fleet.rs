//! Writes a synthetic fleet of snapshot files for measuring the CLI (time, memory):
//!   cargo run --release --example gen_fleet -- FLAGS SPOKES DIR
//! then `flagfleet -c DIR/flagfleet.toml plan`.

#[path = "../benches/support/fleet_gen.rs"]
mod fleet_gen;

use flagfleet::state::snapshot::{write_atomic, Snapshot, SnapshotSource};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(flags), Some(spokes), Some(dir)) = (
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3),
    ) else {
        eprintln!("usage: gen_fleet FLAGS SPOKES DIR");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    let write = |name: &str, state| {
        let source = SnapshotSource {
            instance: name.into(),
            location: "generated".into(),
            unleash_version: None,
        };
        write_atomic(
            &dir.join(format!("{name}.json")),
            &Snapshot::new(state, source).to_json(),
        )
        .expect("write snapshot");
    };
    let hub = fleet_gen::hub(flags);
    for i in 0..spokes {
        write(&format!("spoke-{i:02}"), fleet_gen::spoke(&hub, i));
    }
    write("hub", hub);
    std::fs::write(dir.join("flagfleet.toml"), fleet_gen::topology(spokes))
        .expect("write topology");
}
