//! The default balancer against round robin, P2C and an oracle that knows every proxy's
//! true success at every site, in seeded worlds of the selection simulator
//! (`harvester_testbed::sim`): a real pool, virtual time, the same world for each. The
//! thresholds sit below the figures `scripts/bench.sh selection` reports for the larger
//! default worlds, so that the test fails when selection gets worse, not when a world is
//! unlucky; every run is deterministic for its seed.

use std::time::Duration;

use harvester_testbed::sim::{self, Contender, DEFAULT, ORACLE, ROUND_ROBIN, WorldConfig};

fn small_world() -> WorldConfig {
    WorldConfig {
        proxies: 120,
        duration: Duration::from_secs(240),
        regime_change: Duration::from_secs(120),
        ..WorldConfig::default()
    }
}

fn contenders(names: &[&str]) -> Vec<Contender> {
    sim::contenders().into_iter().filter(|c| names.contains(&c.name)).collect()
}

#[test]
fn the_default_balancer_closes_most_of_the_gap_to_the_oracle() {
    let comparison = sim::compare(&small_world(), &[11, 12], &contenders(&[ORACLE, ROUND_ROBIN, "p2c", DEFAULT]))
        .expect("the simulator runs");
    for seed in comparison.seeds() {
        let success = |name: &str| comparison.run(name, seed).expect("run").total.attempt_success();
        let (oracle, rr, p2c, ours) = (success(ORACLE), success(ROUND_ROBIN), success("p2c"), success(DEFAULT));
        assert!(ours >= 0.95 * oracle, "seed {seed}: {ours:.3} against the oracle's {oracle:.3}");
        assert!((ours - rr) >= 0.6 * (oracle - rr), "seed {seed}: gap closed {:.2}", (ours - rr) / (oracle - rr));
        assert!(ours > p2c + 0.03, "seed {seed}: {ours:.3} against P2C's {p2c:.3}");
        let cost = |name: &str| comparison.run(name, seed).expect("run").total.cost_per_url();
        assert!(
            cost(DEFAULT) < 0.9 * cost(ROUND_ROBIN),
            "seed {seed}: cost per URL {} against {}",
            cost(DEFAULT),
            cost(ROUND_ROBIN)
        );
    }
    let table = comparison.table();
    assert!(table.contains("| expected_success |") && table.contains("| oracle |"), "{table}");
}

#[test]
fn a_seeded_simulation_repeats_itself_exactly() {
    let config = WorldConfig { duration: Duration::from_secs(60), ..small_world() };
    let run = || sim::compare(&config, &[5], &contenders(&[DEFAULT])).expect("the simulator runs").runs[0].total;
    assert_eq!(run(), run());
}

#[test]
fn the_chart_draws_every_contender() {
    let config =
        WorldConfig { duration: Duration::from_secs(60), regime_change: Duration::from_secs(30), ..small_world() };
    let comparison =
        sim::compare(&config, &[3], &contenders(&[ORACLE, ROUND_ROBIN, DEFAULT])).expect("the simulator runs");
    let svg = sim::chart(&comparison);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in [ORACLE, ROUND_ROBIN, DEFAULT] {
        assert!(svg.contains(&format!(">{name}<")), "{name} is labelled");
    }
    assert_eq!(svg.matches("<polyline").count(), 3, "one line per main balancer in the time panel");
}
