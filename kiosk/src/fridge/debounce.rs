//! A door-switch debouncer: sans-I/O, time passed in.

/// Reports a change only after the raw input has held steady for `settle_ms`.
#[derive(Debug, Clone)]
pub struct Debouncer {
    settle_ms: i64,
    stable: Option<bool>,
    candidate: Option<(bool, i64)>,
}

impl Debouncer {
    /// A debouncer with this settle time.
    pub fn new(settle_ms: i64) -> Self {
        Self {
            settle_ms,
            stable: None,
            candidate: None,
        }
    }

    /// Feed a raw sample; returns `(state, since_ms)` when the stable state
    /// changes (the first stable state counts as a change). `since_ms` is when
    /// the raw input first showed the new state.
    pub fn push(&mut self, at_ms: i64, raw: bool) -> Option<(bool, i64)> {
        if Some(raw) == self.stable {
            self.candidate = None;
            return None;
        }
        let (v, since) = match self.candidate {
            Some((v, since)) if v == raw => (v, since),
            _ => {
                self.candidate = Some((raw, at_ms));
                (raw, at_ms)
            }
        };
        if at_ms - since >= self.settle_ms {
            self.stable = Some(v);
            self.candidate = None;
            return Some((v, since));
        }
        None
    }

    /// The debounced state.
    pub fn state(&self) -> Option<bool> {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_are_ignored_and_a_steady_change_is_reported_once() {
        let mut d = Debouncer::new(50);
        assert_eq!(d.push(0, false), None);
        assert_eq!(d.push(60, false), Some((false, 0)));
        // Contact bounce while opening.
        for (t, raw) in [
            (100, true),
            (110, false),
            (120, true),
            (130, false),
            (140, true),
        ] {
            assert_eq!(d.push(t, raw), None, "at {t}");
        }
        assert_eq!(d.push(180, true), None);
        assert_eq!(d.push(190, true), Some((true, 140)));
        assert_eq!(d.push(500, true), None);
        assert_eq!(d.state(), Some(true));
    }
}
