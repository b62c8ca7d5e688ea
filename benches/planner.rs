//! Planner scaling on synthetic fleets of 1,000 to 50,000 flags and 1 to 20 spokes of
//! snapshot files. Run with `cargo bench --bench planner`.
//!
//! Two groups, both through the library's one pipeline ([`flagfleet::pipeline`]):
//! - `plan+render`: the states are read once, by the pipeline, before measuring; each
//!   iteration then does what `flagfleet plan --out plan.json` does once the states are
//!   read: every spoke is planned and serialized on a thread of its own, the JSON is
//!   written (to a sink) spoke by spoke, and the terminal rendering is made from the
//!   review copies.
//! - `pipeline`: `flagfleet plan --out plan.json` as a whole, reading the files included:
//!   each iteration runs the pipeline as the CLI does (4 spokes at once).

// The allocator the flagfleet binary uses (src/main.rs), so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/fleet_gen.rs"]
mod fleet_gen;

use std::io;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flagfleet::pipeline::{self, Fleet};
use flagfleet::plan::{self, HubInfo, JsonWriter, SpokePlan};
use flagfleet::render::{self, human, Options, Review, ReviewCopy};
use flagfleet::topology::{self, Topology};

const SPOKES: [usize; 3] = [1, 5, 20];

/// How the pipeline reads: 4 spokes at once (the CLI's default for files on 4 or more cores).
fn reading() -> pipeline::Options {
    pipeline::Options {
        client: Default::default(),
        parallelism: 4,
    }
}

fn planner(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    for (group_name, whole) in [("plan+render", false), ("pipeline", true)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        for flags in [1_000, 10_000, 50_000] {
            // One set of files per size, each spoke count planning the first N spokes; made
            // only when a benchmark of that size runs (`cargo bench -- 10000-flags`).
            let files = std::cell::OnceCell::new();
            for spokes in SPOKES {
                let mut read: Option<(Arc<Topology>, Fleet)> = None;
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
                        let topology = Arc::new(
                            topology::parse(&path, &fleet_gen::topology(spokes))
                                .expect("generated topology is valid"),
                        );
                        // Planned only to keep the states: `plan+render` plans them again.
                        let keep = if whole {
                            |_: &SpokePlan| false
                        } else {
                            |_: &SpokePlan| true
                        };
                        let (fleet, _) = runtime
                            .block_on(pipeline::plan_fleet(
                                topology.clone(),
                                String::new(),
                                &[],
                                &reading(),
                                keep,
                            ))
                            .expect("generated snapshots read");
                        assert!(fleet.spokes.iter().all(|s| s.state.is_ok()));
                        (topology, fleet)
                    });
                    if whole {
                        b.iter(|| runtime.block_on(read_plan_and_render(topology.clone())))
                    } else {
                        b.iter(|| plan_and_render(topology, fleet))
                    }
                });
            }
        }
        group.finish();
    }
}

/// What `flagfleet plan --out FILE` does with states already read; returns the size of
/// the terminal rendering.
fn plan_and_render(topology: &Topology, fleet: &Fleet) -> usize {
    let options = Options::default();
    let finished = std::thread::scope(|scope| {
        let tasks: Vec<_> = fleet
            .spokes
            .iter()
            .map(|read| {
                scope.spawn(move || {
                    let spoke = topology.spoke(&read.name).expect("a spoke of the topology");
                    let state = read.state.as_ref();
                    let plan = plan::plan_one(topology, &fleet.hub.state, spoke, state, None);
                    let json = plan::spoke_json(&plan).expect("plans serialize");
                    (json, render::for_review(plan, options))
                })
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().expect("planning does not panic"))
            .collect::<Vec<_>>()
    });
    write_and_render(fleet.hub.info.clone(), finished, options)
}

/// What `flagfleet plan --out FILE` does, reading included.
async fn read_plan_and_render(topology: Arc<Topology>) -> usize {
    let options = Options::default();
    let mut running = pipeline::start(topology, &[], &reading(), move |_, plan| {
        let json = plan::spoke_json(&plan).expect("plans serialize");
        (json, render::for_review(plan, options))
    })
    .await
    .expect("the generated hub reads");
    let mut finished = Vec::new();
    while let Some(spoke) = running.next().await {
        finished.push(spoke);
    }
    write_and_render(running.hub.info.clone(), finished, options)
}

/// Writes the spokes' JSON (to a sink) and renders the review copies for a terminal;
/// returns the size of the rendering.
fn write_and_render(hub: HubInfo, finished: Vec<(Vec<u8>, ReviewCopy)>, options: Options) -> usize {
    let mut json = JsonWriter::begin(io::sink(), "", &hub).unwrap();
    let mut review = Review {
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
