//! `think_time`: a fixed pause between a user's passes, or one drawn each time from a
//! distribution (uniform between two bounds, normal, exponential), as Locust's `between` and
//! Gatling's random pauses.

use super::*;

/// The pause between a user's passes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Think {
    #[default]
    None,
    Fixed(Duration),
    /// Uniform in [min, max].
    Uniform(Duration, Duration),
    /// Normal with this mean and standard deviation, cut at 0 and at mean + 4 deviations.
    Normal(Duration, Duration),
    /// Exponential with this mean, cut at 10 means.
    Exponential(Duration),
}

impl Think {
    /// One pause; `u1`, `u2` uniform in [0, 1) (two draws: the normal takes both).
    pub fn sample(&self, u1: f64, u2: f64) -> Duration {
        let secs = |d: &Duration| d.as_secs_f64();
        let s = match self {
            Think::None => 0.0,
            Think::Fixed(d) => secs(d),
            Think::Uniform(a, b) => secs(a) + (secs(b) - secs(a)) * u1,
            Think::Normal(m, sd) => {
                // Box-Muller.
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (secs(m) + z * secs(sd)).clamp(0.0, secs(m) + 4.0 * secs(sd))
            }
            Think::Exponential(m) => (-(1.0 - u1).ln() * secs(m)).min(10.0 * secs(m)),
        };
        Duration::from_secs_f64(s.max(0.0))
    }

    pub fn is_zero(&self) -> bool {
        matches!(self, Think::None) || *self == Think::Fixed(Duration::ZERO)
    }
}

/// `think_time: 1s`, `{min, max}`, `{distribution: normal, mean, stddev}` or
/// `{distribution: exponential, mean}`.
pub(super) fn think(w: &mut Walker, t: &schema::ThinkTime, path: &str) -> Think {
    let m = match t {
        schema::ThinkTime::Fixed(d) => {
            return w.dur(Some(d), path).map_or(Think::None, Think::Fixed);
        }
        schema::ThinkTime::Drawn(m) => m,
    };
    let mut d = |k: &str, v: &Option<schema::Duration>| w.dur(v.as_ref(), &join(path, k));
    let (min, max) = (d("min", &m.min), d("max", &m.max));
    let (mean, stddev) = (d("mean", &m.mean), d("stddev", &m.stddev));
    match opt_text(&m.distribution).as_deref() {
        None | Some("uniform") => match (min, max) {
            (Some(a), Some(b)) if a <= b => Think::Uniform(a, b),
            (Some(_), Some(_)) => {
                w.problem(&join(path, "min"), "above max");
                Think::None
            }
            _ => {
                w.problem(path, "a uniform think time needs min and max");
                Think::None
            }
        },
        Some("normal") => match (mean, stddev) {
            (Some(m), Some(sd)) => Think::Normal(m, sd),
            _ => {
                w.problem(path, "a normal think time needs mean and stddev");
                Think::None
            }
        },
        Some("exponential") => match mean {
            Some(m) => Think::Exponential(m),
            None => {
                w.problem(path, "an exponential think time needs a mean");
                Think::None
            }
        },
        Some(other) => {
            w.problem(
                &join(path, "distribution"),
                format!("unknown distribution {other:?} (uniform, normal, exponential)"),
            );
            Think::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_their_distribution() {
        let ms = Duration::from_millis;
        let draws: Vec<(f64, f64)> = (0..10_000)
            .map(|i| {
                (
                    ((i * 7919) % 10_000) as f64 / 10_000.0,
                    ((i * 104_729) % 9_973) as f64 / 9_973.0,
                )
            })
            .collect();
        let mean = |t: Think| {
            draws
                .iter()
                .map(|(a, b)| t.sample(*a, *b).as_secs_f64())
                .sum::<f64>()
                / draws.len() as f64
        };
        assert!((mean(Think::Uniform(ms(100), ms(300))) - 0.2).abs() < 0.005);
        assert!((mean(Think::Normal(ms(200), ms(20))) - 0.2).abs() < 0.005);
        assert!((mean(Think::Exponential(ms(200))) - 0.2).abs() < 0.01);
        let u = Think::Uniform(ms(100), ms(300));
        assert!(
            draws
                .iter()
                .all(|(a, b)| (ms(100)..=ms(300)).contains(&u.sample(*a, *b)))
        );
        assert_eq!(Think::Fixed(ms(5)).sample(0.3, 0.9), ms(5));
    }
}
