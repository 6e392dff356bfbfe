//! The `helios` binary end to end: output shapes and argument errors.

use std::process::Command;

fn helios(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_helios"))
        .args(args)
        .output()
        .expect("the helios binary runs")
}

/// The rows of a successful `--json` run: one object per line.
fn json_rows(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn bench_latency_json_has_every_row() {
    let out = helios(&[
        "bench",
        "latency",
        "--json",
        "--threads",
        "1",
        "--ops",
        "200000",
        "--rounds",
        "1",
        // Refresh often enough that the short warm-up fills the hot tier.
        "--hot-refresh-ms",
        "1",
    ]);
    let rows = json_rows(&out);
    let has = |imp: &str, op: &str| rows.iter().any(|r| r["impl"] == imp && r["op"] == op);
    for imp in ["helios", "helios_nohot", "quick_cache", "moka"] {
        for op in ["main_hit", "miss", "insert", "read_throughput"] {
            assert!(has(imp, op), "no {imp} {op} row in {rows:?}");
        }
    }
    assert!(
        has("helios", "hot_hit"),
        "the hot tier served hits: {rows:?}"
    );
    for r in rows.iter().filter(|r| r["op"] != "read_throughput") {
        let p50 = r["p50_ns"].as_u64().expect("p50_ns");
        let p999 = r["p999_ns"].as_u64().expect("p999_ns");
        assert!(p50 >= 1 && p999 >= p50, "{r}");
        assert_eq!(r["threads"], 1);
    }
    for r in rows.iter().filter(|r| r["op"] == "read_throughput") {
        assert!(r["ops_per_sec"].as_f64().expect("ops_per_sec") > 0.0);
        assert_eq!(r["threads"], 2);
    }
}

/// A reader that stops early (`helios ... | head -1`) must not make the
/// program panic on its next write.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_helios"))
        .args([
            "bench",
            "latency",
            "--json",
            "--threads",
            "1",
            "--ops",
            "20000",
            "--rounds",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the helios binary runs");
    // Read one byte of the first row, then close the pipe.
    let mut first = [0u8; 1];
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_exact(&mut first)
        .expect("a first row");
    let out = child.wait_with_output().expect("the program ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(first[0], b'{');
}

#[test]
fn bench_latency_rejects_bad_arguments() {
    for args in [
        &["bench", "latency", "--sample", "0"][..],
        &["bench", "latency", "--threads", "0"][..],
    ] {
        let out = helios(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("helios:"));
    }
}

#[test]
fn bench_noisy_neighbour_json_has_one_row_per_system() {
    let out = helios(&[
        "bench",
        "noisy-neighbour",
        "--json",
        "--agents",
        "20",
        "--working-set",
        "100",
        "--reads",
        "200",
    ]);
    let rows = json_rows(&out);
    let systems: Vec<&str> = rows.iter().filter_map(|r| r["system"].as_str()).collect();
    assert_eq!(
        systems,
        [
            "helios_reserved",
            "helios_agents",
            "helios",
            "quick_cache",
            "moka"
        ]
    );
    for r in &rows {
        assert_eq!(r["agents"], 20);
        let (median, p90, worst) = (
            r["median_drop_pp"].as_f64().expect("median"),
            r["p90_drop_pp"].as_f64().expect("p90"),
            r["worst_drop_pp"].as_f64().expect("worst"),
        );
        assert!(median <= p90 && p90 <= worst, "{r}");
        let scanner = r["scanner_hit_ratio"].as_f64().expect("scanner");
        assert!((0.0..=100.0).contains(&scanner));
    }
    let bad = helios(&["bench", "noisy-neighbour", "--agents", "0"]);
    assert_eq!(bad.status.code(), Some(1));
}
