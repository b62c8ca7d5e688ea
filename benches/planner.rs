//! Planner scaling: desired state + diff + graph + rendering (JSON and terminal) for
//! synthetic fleets of 1,000 to 50,000 flags and 1 to 20 spokes. Run with
//! `cargo bench --bench planner`.
//!
//! The fleets are snapshot files generated into a temporary directory and read once,
//! through the same reader as the CLI, before measuring. Each iteration then does what
//! `flagfleet plan --out plan.json` does once the states are read: every spoke is planned
//! and serialized on its own thread, the JSON is written (to a sink) spoke by spoke, and
//! the terminal rendering is made from the review copies.

// The allocator the flagfleet binary uses (src/main.rs), so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/fleet_gen.rs"]
mod fleet_gen;

use std::io;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flagfleet::client::ClientOptions;
use flagfleet::fleet::{self, FleetState};
use flagfleet::plan::{self, JsonWriter, Plan};
use flagfleet::render::{self, human, Options};
use flagfleet::topology::{self, Topology};

const SPOKES: [usize; 3] = [1, 5, 20];

fn planner(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut group = c.benchmark_group("plan+render");
    group.sample_size(10);
    for flags in [1_000, 10_000, 50_000] {
        // One set of files per size, each spoke count planning the first N spokes; made
        // only when a benchmark of that size runs (`cargo bench -- 10000-flags`).
        let files = std::cell::OnceCell::new();
        for spokes in SPOKES {
            let mut read: Option<(Topology, FleetState)> = None;
            group.throughput(Throughput::Elements((flags * spokes) as u64));
            let id = BenchmarkId::new(format!("{flags}-flags"), format!("{spokes}-spokes"));
            group.bench_function(id, |b| {
                let (topology, fleet) = read.get_or_insert_with(|| {
                    let dir: &tempfile::TempDir = files.get_or_init(|| {
                        let dir = tempfile::tempdir().expect("a temporary directory");
                        fleet_gen::write_fleet(dir.path(), flags, SPOKES[SPOKES.len() - 1])
                            .expect("write the fleet");
                        dir
                    });
                    let path = dir.path().join("flagfleet.toml");
                    let topology = topology::parse(&path, &fleet_gen::topology(spokes))
                        .expect("generated topology is valid");
                    let fleet = runtime
                        .block_on(fleet::read(&topology, &[], &ClientOptions::default()))
                        .expect("generated snapshots read");
                    assert!(fleet.spokes.iter().all(|s| s.state.is_ok()));
                    (topology, fleet)
                });
                b.iter(|| plan_and_render(topology, fleet))
            });
        }
    }
    group.finish();
}

/// What `flagfleet plan --out FILE` does with states already read; returns the size of
/// the terminal rendering.
fn plan_and_render(topology: &Topology, fleet: &FleetState) -> usize {
    let options = Options::default();
    let finished = plan::parallel_map(&fleet.spokes, |read| {
        let plan = plan::plan_one(topology, &fleet.hub, read).expect("a spoke of the topology");
        let json = plan::spoke_json(&plan).expect("plans serialize");
        (json, render::for_review(plan, options))
    });
    let hub = plan::hub_info(topology, fleet.hub_fingerprint.clone());
    let mut json = JsonWriter::begin(io::sink(), "", &hub).unwrap();
    let mut review = Plan {
        format_version: plan::FORMAT_VERSION,
        topology_fingerprint: String::new(),
        hub,
        spokes: Vec::with_capacity(finished.len()),
    };
    for (spoke_json, copy) in finished {
        json.spoke_json(&spoke_json).unwrap();
        review.spokes.push(copy);
    }
    json.finish().unwrap();
    human::render(&review, options).len()
}

criterion_group!(benches, planner);
criterion_main!(benches);
