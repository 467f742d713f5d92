//! Alarm evaluation cost: N simulated sensors sampled at 1 Hz for S seconds of
//! event time, through the same engine kiosk and hub run. Reports the CPU time
//! used as a share of one core over the simulated period.
//!
//! Ends with: `coldchain: sensors=N cpu_pct=X`.

use rxedge_shared::coldchain::{Engine, FridgeRules, Input};
use rxedge_tests::cli_arg;

/// User + system CPU seconds of this process (Linux `/proc/self/stat`).
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() {
    let sensors = cli_arg("--sensors", 1000usize);
    let seconds = cli_arg("--seconds", 600i64);
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut engines: Vec<Engine> = (0..sensors)
        .map(|i| {
            let mut r = FridgeRules::standard_2_8(format!("f{i}"));
            r.sample_secs = 1;
            Engine::new(r, 0)
        })
        .collect();
    let mut temps = vec![5.0f64; sensors];
    let t0 = 1_800_000_000_000i64;
    let (cpu0, wall0) = (cpu_secs(), std::time::Instant::now());
    let mut changes = 0usize;
    let mut inputs = 0u64;
    for s in 0..seconds {
        let at = t0 + s * 1000;
        for (i, e) in engines.iter_mut().enumerate() {
            // A random walk that now and then wanders out of range.
            let step = (next() % 21) as f64 / 100.0 - 0.1;
            temps[i] = (temps[i] + step).clamp(-2.0, 14.0);
            let celsius = (next() % 5000 != 0).then_some(temps[i]);
            changes += e.push(Input::Reading { at_ms: at, celsius }).len();
            if next() % 3000 == 0 {
                changes += e
                    .push(Input::Door {
                        at_ms: at + 1,
                        open: next() % 2 == 0,
                    })
                    .len();
                inputs += 1;
            }
            changes += e.push(Input::Watermark { at_ms: at + 500 }).len();
            inputs += 2;
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => wall,
    };
    let pct = cpu / seconds as f64 * 100.0;
    println!(
        "{sensors} sensors × {seconds} s at 1 Hz: {inputs} inputs, {changes} alarm changes, {cpu:.2} s CPU ({wall:.2} s wall), {:.0} ns per input",
        cpu * 1e9 / inputs.max(1) as f64
    );
    println!("coldchain: sensors={sensors} cpu_pct={pct:.3}");
}
