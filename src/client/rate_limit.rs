//! Waiting out a server's `429 Too Many Requests`: every wait is announced (instance,
//! endpoint, how long), and the time a run spends waiting is bounded (`--max-wait`).
//!
//! Unleash rate-limits some endpoints per client address (docs/state.md lists which).
//! Every request of a run, read or write, goes through [`crate::client::Client`], which
//! hands each 429 to the run's one [`RateLimitWait`]: the clients of all instances share
//! it, so the bound holds for the whole run, not per instance or per request.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Method;
use tokio::time::Instant;

/// How long a run may spend waiting on rate limits unless told otherwise: three of
/// Unleash's one-minute windows.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(180);

/// A wait about to start, as announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// Instance name.
    pub instance: String,
    /// Method of the refused request.
    pub method: Method,
    /// Path of the refused request.
    pub path: String,
    /// How long it waits.
    pub delay: Duration,
    /// Whether the server said how long (`Retry-After`), rather than our backoff.
    pub server_asked: bool,
    /// What is left of the run's waiting time once this wait is over.
    pub left: Duration,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} is rate-limited (HTTP 429); waiting {}{} ({} of --max-wait left)",
            self.instance,
            self.method,
            self.path,
            seconds(self.delay),
            if self.server_asked {
                " as the server asks"
            } else {
                ""
            },
            seconds(self.left),
        )
    }
}

/// Waiting longer would pass the run's bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// How long the server asked to wait (or our backoff).
    pub asked: Duration,
    /// How long the run has waited on rate limits so far.
    pub spent: Duration,
    /// The bound.
    pub max: Duration,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waiting another {} would pass --max-wait {} ({} already spent waiting on rate limits in this run)",
            seconds(self.asked),
            seconds(self.max),
            seconds(self.spent),
        )
    }
}

/// Something told of every wait before it starts (the command line prints it).
pub type Notice = Arc<dyn Fn(&Wait) + Send + Sync>;

/// The run's policy for 429 answers: how long it may wait in all, how waits are
/// announced, and what it has waited so far. Clones share the budget.
#[derive(Clone)]
pub struct RateLimitWait {
    max: Duration,
    notice: Notice,
    budget: Arc<Mutex<Budget>>,
}

impl fmt::Debug for RateLimitWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitWait")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimitWait {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WAIT)
    }
}

impl RateLimitWait {
    /// At most `max` of waiting per run; each wait is logged as a warning.
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            notice: Arc::new(|wait: &Wait| tracing::warn!("{wait}")),
            budget: Arc::default(),
        }
    }

    /// Announces each wait through `notice` instead of the log.
    pub fn with_notice(mut self, notice: Notice) -> Self {
        self.notice = notice;
        self
    }

    /// The bound on the run's total wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Waits `delay` after a 429 on `method path` of `instance`, announcing it first; or,
    /// when that would pass the run's bound, returns at once without waiting.
    pub async fn wait(
        &self,
        instance: &str,
        method: &Method,
        path: &str,
        delay: Duration,
        server_asked: bool,
    ) -> Result<(), Exceeded> {
        let left = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(Instant::now(), delay, self.max)?;
        (self.notice)(&Wait {
            instance: instance.to_string(),
            method: method.clone(),
            path: path.to_string(),
            delay,
            server_asked,
            left,
        });
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// The time a run has spent waiting: wall-clock time during which at least one request
/// was waiting, so that requests waiting side by side count once, not once each.
#[derive(Debug, Default)]
struct Budget {
    spent: Duration,
    /// When the latest wait counted so far ends.
    until: Option<Instant>,
}

impl Budget {
    /// Counts a wait of `delay` from `now`; returns what is left of `max` after it, or
    /// [`Exceeded`] (counting nothing) when it would pass `max`.
    fn reserve(
        &mut self,
        now: Instant,
        delay: Duration,
        max: Duration,
    ) -> Result<Duration, Exceeded> {
        let end = now + delay;
        let from = self.until.map_or(now, |until| until.max(now));
        let added = end.saturating_duration_since(from);
        let spent = self.spent + added;
        if spent > max {
            return Err(Exceeded {
                asked: delay,
                spent: self.spent,
                max,
            });
        }
        self.spent = spent;
        self.until = Some(self.until.map_or(end, |until| until.max(end)));
        Ok(max - spent)
    }
}

/// How long a 429 answer asks to wait: `Retry-After` in seconds, else the draft-standard
/// `RateLimit-Reset` (Unleash sends both). `None` when it says neither (or in a form we
/// do not read, such as an HTTP date): the caller backs off on its own.
pub fn asked_delay(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    seconds(RETRY_AFTER.as_str())
        .or_else(|| seconds("ratelimit-reset"))
        .map(Duration::from_secs)
}

/// `0.4 s`, `12 s`, `3 min 5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 && d.subsec_millis() != 0 {
        format!("{s:.1} s")
    } else {
        let whole = d.as_secs() + u64::from(d.subsec_millis() >= 500);
        match (whole / 60, whole % 60) {
            (0, s) => format!("{s} s"),
            (m, 0) => format!("{m} min"),
            (m, s) => format!("{m} min {s} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn waits_one_after_the_other_add_up_until_the_bound() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        let left = b.reserve(t0, Duration::from_secs(20), MAX).unwrap();
        assert_eq!(left, Duration::from_secs(40));
        let left = b
            .reserve(t0 + Duration::from_secs(30), Duration::from_secs(30), MAX)
            .unwrap();
        assert_eq!(left, Duration::from_secs(10));
        let err = b
            .reserve(t0 + Duration::from_secs(70), Duration::from_secs(11), MAX)
            .unwrap_err();
        assert_eq!(
            err,
            Exceeded {
                asked: Duration::from_secs(11),
                spent: Duration::from_secs(50),
                max: MAX
            }
        );
        // A refused wait counts nothing: a shorter one still fits.
        assert!(b
            .reserve(t0 + Duration::from_secs(70), Duration::from_secs(10), MAX)
            .is_ok());
    }

    #[test]
    fn waits_side_by_side_count_once() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        b.reserve(t0, Duration::from_secs(40), MAX).unwrap();
        // Two more requests refused during that wait, told to wait about as long.
        let left = b
            .reserve(t0 + Duration::from_secs(1), Duration::from_secs(39), MAX)
            .unwrap();
        assert_eq!(left, Duration::from_secs(20));
        let left = b
            .reserve(t0 + Duration::from_secs(2), Duration::from_secs(40), MAX)
            .unwrap();
        assert_eq!(left, Duration::from_secs(18));
    }

    #[test]
    fn a_bound_of_zero_refuses_every_wait() {
        let mut b = Budget::default();
        assert!(b
            .reserve(Instant::now(), Duration::from_millis(1), Duration::ZERO)
            .is_err());
    }

    #[test]
    fn the_delay_asked_comes_from_retry_after_else_ratelimit_reset() {
        let mut h = HeaderMap::new();
        assert_eq!(asked_delay(&h), None);
        h.insert("ratelimit-reset", "12".parse().unwrap());
        assert_eq!(asked_delay(&h), Some(Duration::from_secs(12)));
        h.insert(RETRY_AFTER, " 49".parse().unwrap());
        assert_eq!(asked_delay(&h), Some(Duration::from_secs(49)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(asked_delay(&h), Some(Duration::from_secs(12)));
    }

    #[test]
    fn the_notice_names_instance_endpoint_and_delay() {
        let wait = Wait {
            instance: "hub".into(),
            method: Method::GET,
            path: "/api/admin/search/features?limit=100".into(),
            delay: Duration::from_secs(49),
            server_asked: true,
            left: Duration::from_secs(131),
        };
        assert_eq!(
            wait.to_string(),
            "hub: GET /api/admin/search/features?limit=100 is rate-limited (HTTP 429); waiting 49 s as the server asks (2 min 11 s of --max-wait left)"
        );
        assert_eq!(seconds(Duration::from_millis(400)), "0.4 s");
        assert_eq!(seconds(Duration::from_secs(180)), "3 min");
    }
}
