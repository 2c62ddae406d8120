//! Render time: one SLO of each kind, and 10,000 SLOs (goal: under 1 s in total).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use plimsoll::manifests::{self, Decoded};
use plimsoll::model::Slo;
use plimsoll::rules;

fn examples() -> Vec<Slo> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let files = manifests::expand(&[dir.into()]).unwrap();
    let (checked, _) = manifests::check_files(&files);
    checked
        .into_iter()
        .filter_map(|c| match c.outcome {
            manifests::Outcome::Decoded(Decoded::Valid(v)) => Some(v.1),
            _ => None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let examples = examples();
    for slo in &examples {
        c.bench_function(&format!("render/{}", slo.name), |b| {
            b.iter(|| rules::render(black_box(slo), "default"))
        });
    }
    let fleet: Vec<Slo> = (0..10_000)
        .map(|i| {
            let mut slo = examples[i % examples.len()].clone();
            slo.name = format!("{}-{i}", slo.name);
            slo
        })
        .collect();
    let mut group = c.benchmark_group("fleet");
    group.sample_size(10);
    group.bench_function("render 10000 SLOs", |b| {
        b.iter_batched(
            || fleet.clone(),
            |fleet| {
                fleet
                    .iter()
                    .map(|slo| rules::render(slo, "default").len())
                    .sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("render and serialize 10000 SLOs", |b| {
        b.iter(|| {
            let groups: Vec<rules::RuleGroup> = fleet
                .iter()
                .flat_map(|slo| rules::render(slo, "default"))
                .collect();
            rules::rule_file(&groups).unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
