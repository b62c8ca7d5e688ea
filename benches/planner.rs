//! Planner scaling: desired state + diff + graph + rendering (human and JSON) for
//! synthetic fleets of 1,000 to 50,000 flags and 1 to 20 spokes (states generated in
//! memory, so the figures are the planner's own). JSON is written spoke by spoke to a
//! sink, as `flagfleet plan --format json` streams it to stdout. Run with
//! `cargo bench --bench planner`.

// The allocator the flagfleet binary uses (src/main.rs), so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/fleet_gen.rs"]
mod fleet_gen;

use std::io;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flagfleet::fleet::{FleetState, SpokeState};
use flagfleet::plan::{plan_fleet, JsonWriter};
use flagfleet::render::{human, Options};
use flagfleet::topology;

fn planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan+render");
    group.sample_size(10);
    for flags in [1_000, 10_000, 50_000] {
        let hub = fleet_gen::hub(flags);
        for spokes in [1, 5, 20] {
            let topo = topology::parse(Path::new("flagfleet.toml"), &fleet_gen::topology(spokes))
                .expect("generated topology is valid");
            // Fingerprints belong to reading; FleetState::new computes them outside the loop.
            let fleet = FleetState::new(
                hub.clone(),
                None,
                (0..spokes)
                    .map(|i| {
                        SpokeState::new(
                            format!("spoke-{i:02}"),
                            Ok(fleet_gen::spoke(&hub, i)),
                            None,
                        )
                    })
                    .collect(),
            );
            group.throughput(Throughput::Elements((flags * spokes) as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{flags}-flags"), format!("{spokes}-spokes")),
                &fleet,
                |b, fleet| {
                    b.iter(|| {
                        let plan = plan_fleet(&topo, String::new(), fleet);
                        let text = human::render(&plan, Options::default());
                        let mut json = JsonWriter::begin(io::sink(), "", &plan.hub).unwrap();
                        for spoke in &plan.spokes {
                            json.spoke(spoke).unwrap();
                        }
                        json.finish().unwrap();
                        text.len()
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
