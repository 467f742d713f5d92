//! The order state machine: pure and clock-injected.
//!
//! ```text
//! received ──start_review──▶ in_review ──approve──▶ approved ──start_filling──▶ filling ──mark_ready──▶ ready ──pick_up──▶ picked_up
//!    ▲                          │  │                                                                     │
//!    └──────release_review──────┘  └──reject(reason)──▶ rejected                                          └─return_to_stock (after N days)──▶ returned_to_stock
//! any open state ──cancel(reason)──▶ cancelled
//! ```
//!
//! The hub stores the state and appends every [`Transition`] to the order's
//! audit trail. Nothing is released unless a pharmacist approved it: only
//! [`Action::Approve`] leads out of review towards the patient, and it checks
//! the clinical gates (controlled substances confirmed a second time, a
//! written reason to override a severe warning).

use serde::{Deserialize, Serialize};

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Arrived from a kiosk or the desk.
    Received,
    /// A pharmacist is reviewing it.
    InReview,
    /// Approved; stock reserved.
    Approved,
    /// Being picked and labelled.
    Filling,
    /// Waiting for the patient.
    Ready,
    /// Handed over. Final.
    PickedUp,
    /// Refused by the pharmacist, with a reason. Final.
    Rejected,
    /// Cancelled, with a reason. Final.
    Cancelled,
    /// Not collected in time; stock went back. Final.
    ReturnedToStock,
}

impl OrderState {
    /// Every state.
    pub const ALL: [OrderState; 9] = [
        OrderState::Received,
        OrderState::InReview,
        OrderState::Approved,
        OrderState::Filling,
        OrderState::Ready,
        OrderState::PickedUp,
        OrderState::Rejected,
        OrderState::Cancelled,
        OrderState::ReturnedToStock,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Received => "received",
            OrderState::InReview => "in_review",
            OrderState::Approved => "approved",
            OrderState::Filling => "filling",
            OrderState::Ready => "ready",
            OrderState::PickedUp => "picked_up",
            OrderState::Rejected => "rejected",
            OrderState::Cancelled => "cancelled",
            OrderState::ReturnedToStock => "returned_to_stock",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No transition leaves a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::PickedUp
                | OrderState::Rejected
                | OrderState::Cancelled
                | OrderState::ReturnedToStock
        )
    }

    /// Stock is reserved for the order in this state.
    pub fn holds_stock(self) -> bool {
        matches!(
            self,
            OrderState::Approved | OrderState::Filling | OrderState::Ready
        )
    }

    /// What the patient sees on the kiosk.
    pub fn patient_status(self) -> PatientStatus {
        match self {
            OrderState::Received => PatientStatus::Received,
            OrderState::InReview | OrderState::Approved | OrderState::Filling => {
                PatientStatus::InReview
            }
            OrderState::Ready => PatientStatus::Ready,
            OrderState::PickedUp => PatientStatus::PickedUp,
            OrderState::Rejected | OrderState::Cancelled | OrderState::ReturnedToStock => {
                PatientStatus::SeePharmacist
            }
        }
    }
}

/// The few words a patient needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientStatus {
    /// We have it.
    Received,
    /// A pharmacist is on it.
    InReview,
    /// Come and collect it.
    Ready,
    /// Collected.
    PickedUp,
    /// Needs a word with the pharmacist.
    SeePharmacist,
}

/// The clinical gates an approval must pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalGates {
    /// The order contains a controlled substance.
    pub controlled: bool,
    /// The pharmacist confirmed the controlled substance a second time.
    pub controlled_confirmed: bool,
    /// Severe warnings shown (interactions, allergies, over-dose, duplicates).
    pub severe_warnings: u32,
    /// The pharmacist's written reason to approve over them.
    pub override_reason: String,
}

/// What someone asks to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Take the order for review (the reviewer holds it).
    StartReview,
    /// Give it back to the queue unreviewed.
    ReleaseReview,
    /// Approve, passing the clinical gates.
    Approve {
        /// The gates.
        #[serde(default)]
        gates: ApprovalGates,
    },
    /// Refuse, with a reason.
    Reject {
        /// Why.
        reason: String,
    },
    /// Start picking.
    StartFilling,
    /// Packed and labelled.
    MarkReady,
    /// Handed to the patient.
    PickUp,
    /// Cancel, with a reason.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Not collected in time: stock goes back.
    ReturnToStock,
}

impl Action {
    /// Short name for messages and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartReview => "start_review",
            Action::ReleaseReview => "release_review",
            Action::Approve { .. } => "approve",
            Action::Reject { .. } => "reject",
            Action::StartFilling => "start_filling",
            Action::MarkReady => "mark_ready",
            Action::PickUp => "pick_up",
            Action::Cancel { .. } => "cancel",
            Action::ReturnToStock => "return_to_stock",
        }
    }
}

/// The order as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Current state.
    pub state: OrderState,
    /// Who holds it for review, if anyone.
    pub reviewer: Option<String>,
    /// When it became ready (ms).
    pub ready_since_ms: Option<i64>,
}

/// Policy the hub configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Ready orders not collected within this many days may go back to stock.
    pub return_after_days: u32,
}

/// One recorded step, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Before.
    pub from: OrderState,
    /// After.
    pub to: OrderState,
    /// Action name.
    pub action: String,
    /// Who.
    pub actor: String,
    /// When (ms).
    pub at_ms: i64,
    /// Why (reasons, override reasons); empty if none.
    pub reason: String,
}

/// Why a step is refused. The message is meant for the pharmacist's screen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not possible from this state.
    #[error("an order that is {} cannot {}", .from.as_str().replace('_', " "), .action.replace('_', " "))]
    Illegal {
        /// Current state.
        from: OrderState,
        /// Asked action.
        action: String,
    },
    /// Someone else holds it.
    #[error("{holder} is reviewing this order; ask them or wait until they release it")]
    HeldBy {
        /// Who holds it.
        holder: String,
    },
    /// Missing name, reason or confirmation.
    #[error("{0}")]
    Incomplete(&'static str),
    /// Too early to return to stock.
    #[error("this order has been ready for {days_ready} day(s); it can go back to stock after {after} day(s)")]
    TooEarly {
        /// Days ready so far.
        days_ready: i64,
        /// Policy.
        after: u32,
    },
}

const DAY_MS: i64 = 86_400_000;

/// Decide one step. Pure: the caller stores the new state and the transition
/// in one transaction, or shows the refusal.
pub fn step(
    o: &OrderView,
    action: &Action,
    actor: &str,
    now_ms: i64,
    policy: Policy,
) -> Result<Transition, Refused> {
    use OrderState as S;
    let actor = actor.trim();
    if actor.is_empty() {
        return Err(Refused::Incomplete("who does this must be given"));
    }
    let illegal = || Refused::Illegal {
        from: o.state,
        action: action.name().to_owned(),
    };
    // Review steps belong to whoever holds the order.
    let held_by_other = || match &o.reviewer {
        Some(h) if h != actor => Err(Refused::HeldBy { holder: h.clone() }),
        _ => Ok(()),
    };
    let (to, reason) = match (o.state, action) {
        (S::Received, Action::StartReview) => (S::InReview, String::new()),
        (S::InReview, Action::StartReview) => {
            held_by_other()?;
            return Err(illegal());
        }
        (S::InReview, Action::ReleaseReview) => {
            held_by_other()?;
            (S::Received, String::new())
        }
        (S::InReview, Action::Approve { gates }) => {
            held_by_other()?;
            if gates.controlled && !gates.controlled_confirmed {
                return Err(Refused::Incomplete(
                    "this order contains a controlled substance: confirm it a second time",
                ));
            }
            if gates.severe_warnings > 0 && gates.override_reason.trim().is_empty() {
                return Err(Refused::Incomplete(
                    "approving over a severe warning needs a written reason",
                ));
            }
            (S::Approved, gates.override_reason.trim().to_owned())
        }
        (S::InReview, Action::Reject { reason }) => {
            held_by_other()?;
            if reason.trim().is_empty() {
                return Err(Refused::Incomplete("a rejection needs a reason"));
            }
            (S::Rejected, reason.trim().to_owned())
        }
        (S::Approved, Action::StartFilling) => (S::Filling, String::new()),
        (S::Filling, Action::MarkReady) => (S::Ready, String::new()),
        (S::Ready, Action::PickUp) => (S::PickedUp, String::new()),
        (S::Ready, Action::ReturnToStock) => {
            let since = o.ready_since_ms.unwrap_or(now_ms);
            let days_ready = (now_ms - since).div_euclid(DAY_MS);
            if days_ready < i64::from(policy.return_after_days) {
                return Err(Refused::TooEarly {
                    days_ready,
                    after: policy.return_after_days,
                });
            }
            (
                S::ReturnedToStock,
                format!("not collected within {} days", policy.return_after_days),
            )
        }
        (from, Action::Cancel { reason }) if !from.is_final() => {
            if from == S::InReview {
                held_by_other()?;
            }
            if reason.trim().is_empty() {
                return Err(Refused::Incomplete("a cancellation needs a reason"));
            }
            (S::Cancelled, reason.trim().to_owned())
        }
        _ => return Err(illegal()),
    };
    Ok(Transition {
        from: o.state,
        to,
        action: action.name().to_owned(),
        actor: actor.to_owned(),
        at_ms: now_ms,
        reason,
    })
}

/// Apply a transition to the view (what the hub stores).
pub fn apply(o: &OrderView, t: &Transition) -> OrderView {
    OrderView {
        state: t.to,
        reviewer: match t.to {
            OrderState::InReview => Some(t.actor.clone()),
            _ => None,
        },
        ready_since_ms: if t.to == OrderState::Ready {
            Some(t.at_ms)
        } else {
            o.ready_since_ms
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: Policy = Policy {
        return_after_days: 10,
    };

    fn view(state: OrderState) -> OrderView {
        OrderView {
            state,
            reviewer: None,
            ready_since_ms: None,
        }
    }

    fn all_actions() -> Vec<Action> {
        vec![
            Action::StartReview,
            Action::ReleaseReview,
            Action::Approve {
                gates: ApprovalGates::default(),
            },
            Action::Reject {
                reason: "wrong patient".into(),
            },
            Action::StartFilling,
            Action::MarkReady,
            Action::PickUp,
            Action::Cancel {
                reason: "patient asked".into(),
            },
            Action::ReturnToStock,
        ]
    }

    /// The whole table: every state × every action, legal exactly where the
    /// diagram says so.
    #[test]
    fn exhaustive_transition_table() {
        use OrderState as S;
        let legal: &[(S, &str, S)] = &[
            (S::Received, "start_review", S::InReview),
            (S::Received, "cancel", S::Cancelled),
            (S::InReview, "release_review", S::Received),
            (S::InReview, "approve", S::Approved),
            (S::InReview, "reject", S::Rejected),
            (S::InReview, "cancel", S::Cancelled),
            (S::Approved, "start_filling", S::Filling),
            (S::Approved, "cancel", S::Cancelled),
            (S::Filling, "mark_ready", S::Ready),
            (S::Filling, "cancel", S::Cancelled),
            (S::Ready, "pick_up", S::PickedUp),
            (S::Ready, "cancel", S::Cancelled),
            (S::Ready, "return_to_stock", S::ReturnedToStock),
        ];
        let mut seen = 0;
        for s in OrderState::ALL {
            for a in all_actions() {
                let mut o = view(s);
                if s == S::Ready {
                    o.ready_since_ms = Some(0);
                }
                let got = step(&o, &a, "Pia", 30 * DAY_MS, P);
                let want = legal
                    .iter()
                    .find(|(f, n, _)| *f == s && *n == a.name())
                    .map(|x| x.2);
                match (got, want) {
                    (Ok(t), Some(to)) => {
                        assert_eq!((t.from, t.to), (s, to));
                        seen += 1;
                    }
                    (Err(Refused::Illegal { .. }), None) => {}
                    (g, w) => panic!("{s:?} × {}: got {g:?}, want {w:?}", a.name()),
                }
            }
        }
        assert_eq!(seen, legal.len());
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn approval_gates_and_messages() {
        let mut o = view(OrderState::InReview);
        o.reviewer = Some("Pia".into());
        let approve = |gates| Action::Approve { gates };
        let e = step(
            &o,
            &approve(ApprovalGates {
                controlled: true,
                ..Default::default()
            }),
            "Pia",
            0,
            P,
        )
        .unwrap_err();
        assert!(e.to_string().contains("controlled substance"));
        let e = step(
            &o,
            &approve(ApprovalGates {
                severe_warnings: 1,
                ..Default::default()
            }),
            "Pia",
            0,
            P,
        )
        .unwrap_err();
        assert!(e.to_string().contains("written reason"));
        let t = step(
            &o,
            &approve(ApprovalGates {
                severe_warnings: 1,
                override_reason: "INR monitored weekly".into(),
                controlled: true,
                controlled_confirmed: true,
            }),
            "Pia",
            5,
            P,
        )
        .unwrap();
        assert_eq!(
            (t.to, t.reason.as_str(), t.at_ms),
            (OrderState::Approved, "INR monitored weekly", 5)
        );
        // Someone else cannot act on an order Pia holds.
        let e = step(&o, &approve(ApprovalGates::default()), "Max", 0, P).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Pia is reviewing this order; ask them or wait until they release it"
        );
        let e = step(
            &view(OrderState::PickedUp),
            &Action::Cancel { reason: "x".into() },
            "Pia",
            0,
            P,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "an order that is picked up cannot cancel");
        assert!(step(&o, &Action::Reject { reason: " ".into() }, "Pia", 0, P).is_err());
        assert!(step(&view(OrderState::Received), &Action::StartReview, " ", 0, P).is_err());
    }

    #[test]
    fn return_to_stock_waits_for_the_policy() {
        let mut o = view(OrderState::Ready);
        o.ready_since_ms = Some(1_000);
        let e = step(&o, &Action::ReturnToStock, "Pia", 1_000 + 9 * DAY_MS, P).unwrap_err();
        assert!(matches!(
            e,
            Refused::TooEarly {
                days_ready: 9,
                after: 10
            }
        ));
        assert!(step(&o, &Action::ReturnToStock, "Pia", 1_000 + 10 * DAY_MS, P).is_ok());
    }

    proptest! {
        /// Any sequence of attempts: final states never change, only an
        /// approval leads from review towards the patient, stock is held only
        /// between approval and a final state, and the trail is consistent.
        #[test]
        fn random_walks_respect_the_machine(
            attempts in proptest::collection::vec((0usize..9, 0usize..3, any::<bool>()), 0..60)
        ) {
            let actors = ["Pia", "Max", "Lea"];
            let mut o = view(OrderState::Received);
            let mut trail: Vec<Transition> = Vec::new();
            let mut now = 0i64;
            for (ai, who, gates_ok) in attempts {
                now += DAY_MS;
                let mut a = all_actions().swap_remove(ai);
                if let Action::Approve { gates } = &mut a {
                    gates.controlled = true;
                    gates.controlled_confirmed = gates_ok;
                }
                let before = o.clone();
                match step(&o, &a, actors[who], now, P) {
                    Ok(t) => {
                        prop_assert!(!before.state.is_final());
                        prop_assert_eq!(t.from, before.state);
                        if t.to == OrderState::Approved {
                            prop_assert_eq!(before.state, OrderState::InReview);
                            prop_assert!(gates_ok);
                        }
                        if matches!(t.to, OrderState::Filling | OrderState::Ready | OrderState::PickedUp) {
                            prop_assert!(trail.iter().any(|x| x.to == OrderState::Approved));
                        }
                        o = apply(&o, &t);
                        trail.push(t);
                    }
                    Err(_) => prop_assert_eq!(&o, &before),
                }
            }
            for w in trail.windows(2) {
                prop_assert_eq!(w[0].to, w[1].from);
            }
            if let Some(last) = trail.last() {
                prop_assert_eq!(last.to, o.state);
            }
        }
    }
}
