//! Writes a synthetic fleet of snapshot files for measuring the CLI (time, memory):
//!   cargo run --release --example gen_fleet -- FLAGS SPOKES DIR
//! then `flagfleet -c DIR/flagfleet.toml plan`.

#[path = "../benches/support/fleet_gen.rs"]
mod fleet_gen;

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
    fleet_gen::write_fleet(std::path::Path::new(dir), flags, spokes).expect("write the fleet");
}
