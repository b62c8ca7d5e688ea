//! Planner scaling: desired state + diff + graph + rendering (human and JSON) for
//! synthetic fleets of 1,000 to 50,000 flags and 1 to 20 spokes (states in memory, so the
//! figures are the planner's own). Run with `cargo bench --bench planner`.

#[path = "support/fleet_gen.rs"]
mod fleet_gen;

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flagfleet::fleet::{FleetState, SpokeState};
use flagfleet::plan::plan_fleet;
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
                        let json = plan.to_json();
                        (text.len(), json.len())
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
