//! How busy the machine was while a benchmark ran, apart from the benchmark: the CPU time
//! every process used (`/proc/stat`) less this process's and its waited-for children's, and
//! the time the hypervisor gave to others (steal). Figures measured beside a build or a test
//! run are not the machine's; the results say so instead of leaving it to be guessed.

use std::time::Instant;

use crate::nginx::cpu_fields;

/// The counters at one moment.
pub struct MachineCpu {
    at: Instant,
    /// Busy CPU seconds of every process (user, nice, system, irq, softirq).
    busy: f64,
    /// CPU seconds stolen by the hypervisor.
    steal: f64,
    /// This process's and its waited-for children's CPU seconds.
    ours: f64,
}

/// `/proc/stat`'s first line: (busy, steal) in seconds (the kernel counts in 1/100 s).
pub fn busy_and_steal(stat: &str) -> Option<(f64, f64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = f[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq;
    Some((busy as f64 / 100.0, steal as f64 / 100.0))
}

fn own_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (u, s) = cpu_fields(&stat, 11)?;
    let (cu, cs) = cpu_fields(&stat, 13)?;
    Some(u + s + cu + cs)
}

impl MachineCpu {
    pub fn now() -> Option<MachineCpu> {
        let (busy, steal) = busy_and_steal(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(MachineCpu {
            at: Instant::now(),
            busy,
            steal,
            ours: own_cpu()?,
        })
    }

    /// Since `self`: the CPU seconds other processes used, as an average count of cores,
    /// and the same for steal.
    pub fn others_since(&self) -> Option<(f64, f64)> {
        let now = MachineCpu::now()?;
        let secs = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let others = (now.busy - self.busy) - (now.ours - self.ours);
        Some((others.max(0.0) / secs, (now.steal - self.steal) / secs))
    }

    /// A sentence for the results: how busy the machine was apart from the run.
    pub fn report(&self) -> String {
        match self.others_since() {
            Some((others, steal)) => format!(
                "Apart from this run, the machine's other processes used {others:.2} cores on \
                 average and the hypervisor took {steal:.2} (steal){}.",
                if others > 0.1 || steal > 0.1 {
                    ": the figures are not a quiet machine's"
                } else {
                    ": a quiet machine"
                }
            ),
            None => "How busy the machine was could not be read (/proc/stat).".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counters() {
        let stat = "cpu  100 20 30 4000 5 6 7 80 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(busy_and_steal(stat), Some((1.63, 0.8)));
        assert_eq!(busy_and_steal("cpu0 1 2 3"), None);
        assert_eq!(busy_and_steal("cpu  1 2 3"), None);
    }

    /// A child's busy loop is another process's time until it is waited for, then ours.
    #[test]
    fn another_process_shows_until_waited_for() {
        let m = MachineCpu::now().expect("/proc/stat");
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        // Ended, not yet reaped: a zombie whose counters still read.
        let spent = loop {
            let s = std::fs::read_to_string(&stat).unwrap();
            if s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z') {
                let (u, s) = cpu_fields(&s, 11).unwrap();
                break u + s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(spent >= 0.1, "the loop ran {spent} s");
        let secs = m.at.elapsed().as_secs_f64();
        let (others, _) = m.others_since().unwrap();
        assert!(
            others * secs >= 0.8 * spent - 0.02,
            "{spent} s of another process, {} s seen",
            others * secs
        );
        child.wait().unwrap();
        let (after, _) = m.others_since().unwrap();
        let secs = m.at.elapsed().as_secs_f64();
        assert!(
            after * secs <= others * secs - 0.8 * spent + 0.05 + 0.5 * secs,
            "waited for, its {spent} s are ours: {} s still others'",
            after * secs
        );
    }
}
