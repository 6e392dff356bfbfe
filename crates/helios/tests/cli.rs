//! The `helios` binary end to end: output shapes and argument errors.

use std::process::Command;

/// The `helios` binary with `args`, to run.
fn helios_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_helios"));
    command.args(args);
    command
}

fn helios(args: &[&str]) -> std::process::Output {
    helios_command(args)
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
        &["bench", "latency", "--zipf=-1"][..],
        &["bench", "latency", "--zipf", "NaN"][..],
        &["bench", "latency", "--hot-min-hit-share", "101"][..],
        &["bench", "latency", "--rounds", "0"][..],
        // More keys than memory can hold: an error, not a panic or abort.
        &["bench", "latency", "--ops", "18446744073709551615"][..],
    ] {
        let out = helios(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
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
    for agents in ["0", "1048576", "1000000000000000000"] {
        let bad = helios(&["bench", "noisy-neighbour", "--agents", agents]);
        assert_eq!(bad.status.code(), Some(2), "--agents {agents}");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("--agents"),
            "--agents {agents}: {}",
            String::from_utf8_lossy(&bad.stderr)
        );
    }
}

#[test]
fn bench_noisy_neighbour_writes_every_agents_hit_ratios() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let csv = dir.path().join("agents.csv");
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
        "--per-agent",
        csv.to_str().expect("utf-8 temp path"),
    ]);
    let rows = json_rows(&out);
    let text = std::fs::read_to_string(&csv).expect("the CSV was written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("system,agent,alone_pct,scanned_pct,drop_pp")
    );
    let records: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(
        records.len(),
        rows.len() * 20,
        "one line per system and victim"
    );
    for row in &rows {
        let system = row["system"].as_str().expect("system");
        let mut drops: Vec<f64> = records
            .iter()
            .filter(|r| r[0] == system)
            .map(|r| {
                let field = |i: usize| r[i].parse::<f64>().expect("a number");
                assert!((field(2) - field(3) - field(4)).abs() < 0.011, "{r:?}");
                field(4)
            })
            .collect();
        drops.sort_by(f64::total_cmp);
        let worst = row["worst_drop_pp"].as_f64().expect("worst");
        assert!(
            (drops[19] - worst).abs() < 0.011,
            "{system}: {drops:?} vs {worst}"
        );
    }
    let bad = helios(&[
        "bench",
        "noisy-neighbour",
        "--agents",
        "2",
        "--per-agent",
        "/nonexistent-dir/agents.csv",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--per-agent /nonexistent-dir/agents.csv"),
        "{stderr}"
    );
    assert_eq!(bad.status.code(), Some(1));
}

/// A gzip-compressed `lirs` trace of `text` in `dir`.
fn lirs_trace(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.path().join(name);
    let file = std::fs::File::create(&path).expect("create the trace");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("write the trace");
    gz.finish().expect("finish the gzip stream");
    path
}

#[test]
fn replay_json_has_one_row_per_policy_and_size_and_draws_the_plot() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // A loop over 50 keys, 20 times: 1,000 events. `*` and empty lines are
    // not events (traces/README.md).
    let mut text = String::from("*\n\n");
    for _ in 0..20 {
        for key in 0..50 {
            text.push_str(&format!("{key}\n"));
        }
    }
    let trace = lirs_trace(&dir, "loop.trace.gz", &text);
    let plot = dir.path().join("plot.svg");
    let out = helios(&[
        "replay",
        "--trace",
        trace.to_str().expect("utf-8 temp path"),
        "--format",
        "lirs",
        "--sizes",
        "10,60",
        "--compare",
        "--json",
        "--plot",
        plot.to_str().expect("utf-8 temp path"),
    ]);
    let rows = json_rows(&out);
    let ratio = |policy: &str, size: u64| {
        let row = rows
            .iter()
            .find(|r| r["policy"] == policy && r["size"] == size)
            .unwrap_or_else(|| panic!("no {policy} row at {size} in {rows:?}"));
        row["hit_ratio"].as_f64().expect("hit_ratio")
    };
    assert_eq!(rows.len(), 2 * 5, "{rows:?}");
    // The fields in the documented order (the JSON shape).
    let first = String::from_utf8_lossy(&out.stdout);
    let first = first.lines().next().unwrap_or_default();
    let order: Vec<usize> = ["trace", "policy", "size", "hits", "misses", "hit_ratio"]
        .iter()
        .map(|field| first.find(&format!("\"{field}\":")).unwrap_or(usize::MAX))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{first}");
    for r in &rows {
        assert_eq!(r["trace"].as_str(), trace.to_str(), "the trace as given");
        let (hits, misses) = (r["hits"].as_u64(), r["misses"].as_u64());
        assert_eq!(hits.zip(misses).map(|(h, m)| h + m), Some(1_000), "{r}");
        let percent = 100.0 * hits.unwrap_or(0) as f64 / 1_000.0;
        assert!((r["hit_ratio"].as_f64().unwrap_or(-1.0) - percent).abs() < 0.01);
    }
    for policy in ["helios", "lru", "moka", "quick_cache"] {
        for size in [10, 60] {
            assert!(ratio(policy, size) <= ratio("opt", size), "{policy}@{size}");
        }
    }
    // A loop longer than the cache: LRU never hits; Bélády, which may evict
    // the arriving key itself, keeps 10 keys for good: 10 hits per later lap.
    assert_eq!(ratio("lru", 10), 0.0);
    assert_eq!(ratio("opt", 10), 100.0 * (10.0 * 19.0) / 1_000.0);
    // Everything fits: only the 50 first touches miss.
    assert_eq!(ratio("opt", 60), 95.0);
    assert_eq!(ratio("lru", 60), 95.0);
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.contains("<svg") && svg.contains("opt"), "{svg}");
}

#[test]
fn replay_with_a_seed_repeats_to_the_hit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // 20,000 skewed accesses over 5,000 keys (a fixed LCG: the same bytes
    // every run), so that admission duels and sketch collisions matter.
    let mut state = 12_345u64;
    let mut text = String::new();
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        text.push_str(&format!("{}\n", (5_000.0 * u * u * u) as u64));
    }
    let trace = lirs_trace(&dir, "skewed.trace.gz", &text);
    let replay = |seed: &str| {
        json_rows(&helios(&[
            "replay",
            "--trace",
            trace.to_str().expect("utf-8 temp path"),
            "--format",
            "lirs",
            "--sizes",
            "100,500",
            "--no-hot-tier",
            "--seed",
            seed,
            "--json",
        ]))
    };
    let hits = |rows: &[serde_json::Value], policy: &str| -> Vec<u64> {
        rows.iter()
            .filter(|r| r["policy"] == policy)
            .filter_map(|r| r["hits"].as_u64())
            .collect()
    };
    let (first, again) = (replay("3"), replay("3"));
    // Without the hot tier (whose refreshes run on a timer) a seeded
    // replay repeats to the hit.
    assert_eq!(hits(&first, "helios_nohot").len(), 2, "{first:?}");
    assert_eq!(hits(&first, "helios_nohot"), hits(&again, "helios_nohot"));
    // And the seed is what fixes it: another seed collides other keys.
    assert_ne!(
        hits(&first, "helios_nohot"),
        hits(&replay("4"), "helios_nohot")
    );
    let bad = helios(&[
        "replay", "--trace", "x", "--format", "lirs", "--sizes", "1", "--seed", "-1",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a seed is a non-negative integer"
    );
}

#[test]
fn replay_of_a_malformed_trace_names_the_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let trace = lirs_trace(&dir, "bad.trace.gz", "1\n2\nthree\n4\n");
    let path = trace.to_str().expect("utf-8 temp path");
    let out = helios(&[
        "replay", "--trace", path, "--format", "lirs", "--sizes", "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.trace.gz") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no partial table");

    let missing = dir.path().join("missing.trace.gz");
    let out = helios(&[
        "replay",
        "--trace",
        missing.to_str().expect("utf-8 temp path"),
        "--format",
        "lirs",
        "--sizes",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.trace.gz"));
}

#[test]
fn replay_rejects_a_zero_size() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let trace = lirs_trace(&dir, "ok.trace.gz", "1\n2\n");
    let path = trace.to_str().expect("utf-8 temp path");
    let out = helios(&[
        "replay", "--trace", path, "--format", "lirs", "--sizes", "10,0",
    ]);
    assert_eq!(out.status.code(), Some(2), "an invalid argument");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1"));
}

#[test]
fn replay_checks_the_plot_path_before_replaying() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let trace = lirs_trace(&dir, "ok.trace.gz", "1\n2\n");
    let path = trace.to_str().expect("utf-8 temp path");
    let plot = dir.path().join("no-such-dir").join("plot.svg");
    let out = helios(&[
        "replay",
        "--trace",
        path,
        "--format",
        "lirs",
        "--sizes",
        "10",
        "--plot",
        plot.to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plot"));
    assert!(out.stdout.is_empty(), "nothing replayed");
}

/// A full disk under the output is an error message and exit code 1, not
/// `println!`'s panic (exit code 101).
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_of_the_results_is_an_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let trace = lirs_trace(&dir, "ok.trace.gz", "1\n2\n1\n");
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full in this environment
    };
    let path = trace.to_str().expect("utf-8 temp path");
    let out = helios_command(&[
        "replay", "--trace", path, "--format", "lirs", "--sizes", "10",
    ])
    .stdout(full)
    .output()
    .expect("the helios binary runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write the output"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
