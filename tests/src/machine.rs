//! How busy the machine was while a benchmark ran, apart from the benchmark: the CPU time
//! every process used (`/proc/stat`) less this process's and its waited-for children's, and
//! the time the hypervisor gave to others (steal). Figures measured beside a build or a test
//! run are not the machine's; the results say so instead of leaving it to be guessed.

use std::time::Instant;

use crate::nginx::cpu_fields;

/// Rounds of [`speed`]'s loop.
const ROUNDS: u64 = 1 << 24;

/// A fixed piece of integer work (a chain of 64-bit mixes, each waiting on the last), timed:
/// millions of rounds a second. The same work on the same machine runs slower when the host
/// under it is busy, which a VM does not always see as steal: runs compare by it.
pub fn speed() -> f64 {
    let start = Instant::now();
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15u64);
    for i in 0..ROUNDS {
        x = (x ^ (x >> 31))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9)
            .wrapping_add(i);
    }
    std::hint::black_box(x);
    ROUNDS as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Bytes of [`fresh_pages`]' mapping.
const FRESH: usize = 64 << 20;

/// Fresh memory pages made and touched, thousands a second: each first write faults a zeroed
/// page into a new anonymous mapping (made here, not by the allocator, which could hand back
/// pages already touched). Row 6's instantiation touches six to nine fresh pages a user (its
/// resident memory), and what a fault costs here moves within a run where [`speed`]'s loop,
/// in the core's cache, does not (0.4 to 2 us a page on these VMs). 0 if the mapping fails.
pub fn fresh_pages() -> f64 {
    let start = Instant::now();
    // SAFETY: a new private anonymous mapping, written only inside its length and unmapped
    // before returning; nothing else refers to it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            FRESH,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 0.0;
        }
        let base = p.cast::<u8>();
        for at in (0..FRESH).step_by(4096) {
            std::ptr::write_volatile(base.add(at), 1);
        }
        libc::munmap(p, FRESH);
    }
    (FRESH / 4096) as f64 / start.elapsed().as_secs_f64() / 1e3
}

/// The counters at one moment.
pub struct MachineCpu {
    at: Instant,
    /// [`speed`] then.
    speed: f64,
    /// [`fresh_pages`] then.
    pages: f64,
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

/// The CPU counters, read together: when, every process's busy seconds, steal, and ours.
fn counters() -> Option<(Instant, f64, f64, f64)> {
    let (busy, steal) = busy_and_steal(&std::fs::read_to_string("/proc/stat").ok()?)?;
    Some((Instant::now(), busy, steal, own_cpu()?))
}

impl MachineCpu {
    /// The probes' rates, then the counters (so the probes' own CPU is on neither side of
    /// [`MachineCpu::others_since`]).
    pub fn now() -> Option<MachineCpu> {
        let (speed, pages) = (speed(), fresh_pages());
        let (at, busy, steal, ours) = counters()?;
        Some(MachineCpu {
            at,
            speed,
            pages,
            busy,
            steal,
            ours,
        })
    }

    /// Since `self`: the CPU seconds other processes used, as an average count of cores,
    /// and the same for steal (the counters alone: no probe runs).
    pub fn others_since(&self) -> Option<(f64, f64)> {
        let (at, busy, steal, ours) = counters()?;
        let secs = at.duration_since(self.at).as_secs_f64().max(1e-3);
        let others = (busy - self.busy) - (ours - self.ours);
        Some((others.max(0.0) / secs, (steal - self.steal) / secs))
    }

    /// Sentences for the results: how busy the machine was apart from the run, and how fast
    /// the fixed loop ran and fresh pages were touched at its start and its end.
    pub fn report(&self) -> String {
        let busy = match self.others_since() {
            Some((others, steal)) => format!(
                "Apart from this run, the machine's other processes used {others:.2} cores on \
                 average and the hypervisor took {steal:.2} (steal){}.",
                if others > 0.1 || steal > 0.1 {
                    ": the figures are not a quiet machine's"
                } else {
                    ": quiet by these counters"
                }
            ),
            None => "How busy the machine was could not be read (/proc/stat).".into(),
        };
        format!(
            "{busy} A fixed CPU loop ran {:.0} M rounds/s at the start and {:.0} at the end, \
             and {} MiB of fresh memory pages were touched at {:.0} k/s and {:.0} k/s (page \
             faults, a large part of row 6; a busy host slows every figure without showing as \
             steal: absolute figures compare across runs by these, ratios need not).",
            self.speed,
            speed(),
            FRESH >> 20,
            self.pages,
            fresh_pages()
        )
    }
}

/// What a results file says of the run that wrote it: its date and machine (the header's
/// "Measured DATE on MACHINE by"), and the loop's and the pages' rates at its start.
#[derive(Debug, PartialEq)]
pub struct Before {
    pub date: String,
    pub machine: String,
    pub speed: f64,
    pub pages: f64,
}

/// The number that follows `after` in `text`, up to the next space.
fn number_after(text: &str, after: &str) -> Option<f64> {
    let rest = &text[text.find(after)? + after.len()..];
    rest.split(' ').next()?.parse().ok()
}

/// [`Before`] from a results file's text (its header and its first machine sentence: pass the
/// section to compare with).
pub fn before_in(header: &str, section: &str) -> Option<Before> {
    let measured = header.split_once("Measured ")?.1.split_once(" by `")?.0;
    let (date, machine) = measured.split_once(" on ")?;
    Some(Before {
        date: date.to_string(),
        machine: machine.to_string(),
        speed: number_after(section, "A fixed CPU loop ran ")?,
        pages: number_after(section, "pages were touched at ")?,
    })
}

/// Below this share of the last run's rate, this run's machine is called slower.
const SLOWER: f64 = 0.85;

/// A sentence comparing this run's start rates (`speed` M rounds/s, `pages` k/s on `machine`)
/// with those of the run the results file held before: a VM may run at half its speed with no
/// steal and no other process, and that halves every absolute figure (rows 5 to 7) while the
/// run's own counters still call it quiet.
pub fn against(before: &Before, machine: &str, speed: f64, pages: f64) -> String {
    if before.machine != machine {
        return format!(
            "The run this file held before ({}) was on another machine ({}): its absolute \
             figures do not compare with these.",
            before.date, before.machine
        );
    }
    let (s, p) = (speed / before.speed, pages / before.pages);
    let verdict = if s < SLOWER || p < SLOWER {
        "this machine ran slower than then, and the absolute figures with it (ratios measured \
         in one run hold)"
    } else {
        "as fast as then"
    };
    format!(
        "Against the run this file held before ({}, the same CPU model: loop {:.0} M rounds/s, \
         pages {:.0} k/s at its start), this run's loop ran at {s:.2}x and its pages at \
         {p:.2}x: {verdict}.",
        before.date, before.speed, before.pages
    )
}

/// `text` written to `path` whole or not at all (a temporary file beside it, then renamed):
/// a full disk leaves the results that were there. Readable by all, as a checked-out file is.
pub fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// "N cores, CPU model" (`/proc/cpuinfo`'s first model name), as results name a machine.
pub fn description() -> String {
    format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .unwrap_or("")
            .replace("model name\t: ", "")
    )
}

/// The time now as results give it ("2026-12-08 01:44 UTC"), from `date -u`; empty if it
/// cannot run.
pub fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl MachineCpu {
    /// [`MachineCpu::report`], then how this run's start rates compare with the run a
    /// results file held before (its `header` and the `section` this report replaces), when
    /// they say.
    pub fn report_against(&self, header: &str, section: &str) -> String {
        let mut out = self.report();
        if let Some(before) = before_in(header, section) {
            out.push(' ');
            out.push_str(&against(&before, &description(), self.speed, self.pages));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_run_before_is_read_and_compared() {
        let header = "# Benchmark results\n\nMeasured 2026-12-07 15:37 UTC on 2 cores, AMD EPYC by \
                      `just bench` (one run). Apart from this run ... A fixed CPU loop ran 476 M \
                      rounds/s at the start and 477 at the end, and 64 MiB of fresh memory \
                      pages were touched at 435 k/s and 394 k/s (page faults).";
        let b = before_in(header, header).unwrap();
        assert_eq!(
            b,
            Before {
                date: "2026-12-07 15:37 UTC".into(),
                machine: "2 cores, AMD EPYC".into(),
                speed: 476.0,
                pages: 435.0
            }
        );
        let slow = against(&b, "2 cores, AMD EPYC", 425.0, 228.0);
        assert!(slow.contains("0.89x") && slow.contains("0.52x"), "{slow}");
        assert!(slow.contains("ran slower"), "{slow}");
        let same = against(&b, "2 cores, AMD EPYC", 470.0, 430.0);
        assert!(same.contains("as fast as then"), "{same}");
        let other = against(&b, "8 cores, Intel", 900.0, 900.0);
        assert!(other.contains("another machine"), "{other}");
        assert_eq!(before_in("no header", header), None);
        // The file the suite writes, as it is in the repository.
        let results = include_str!("../../bench/RESULTS.md");
        let head = results.split_once("\n## ip-pool").unwrap().0;
        let b = before_in(head, head).expect("the results' header reads");
        assert!(
            b.speed > 0.0 && b.pages > 0.0 && b.machine.contains("cores"),
            "{b:?}"
        );
        assert_eq!(before_in(header, "no rates"), None);
    }

    #[test]
    fn results_are_written_whole() {
        let dir = crate::scratch::Scratch::new("write-whole");
        let path = dir.join("RESULTS.md");
        write_whole(&path, "first").unwrap();
        write_whole(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(std::fs::read_dir(&*dir).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    use super::*;

    #[test]
    fn proc_stat_counters() {
        let stat = "cpu  100 20 30 4000 5 6 7 80 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(busy_and_steal(stat), Some((1.63, 0.8)));
        assert_eq!(busy_and_steal("cpu0 1 2 3"), None);
        assert_eq!(busy_and_steal("cpu  1 2 3"), None);
    }

    /// The loop's rate is a rate: finite and positive, and about the same twice in a row.
    #[test]
    fn the_speed_check_measures() {
        let (a, b) = (speed(), speed());
        assert!(
            a.is_finite() && a > 0.0 && b.is_finite() && b > 0.0,
            "{a} {b}"
        );
        assert!(a / b < 20.0 && b / a < 20.0, "{a} then {b}");
    }

    /// Pages are counted at a rate: finite and positive.
    #[test]
    fn the_page_check_measures() {
        let p = fresh_pages();
        assert!(p.is_finite() && p > 0.0, "{p}");
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
