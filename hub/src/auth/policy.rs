//! The role matrix: who may call which route. Pure data, checked by the web
//! guard on every request and walked by the security test suite, so what is
//! enforced and what is tested are the same table.
//!
//! A route that is not in the table is refused to everyone: a new screen is
//! closed until someone decides who may use it.

use std::fmt;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Accounts, kiosks, settings, the audit trail. Approves nothing.
    Admin,
    /// Reviews and approves orders, dispenses, decides on held stock.
    Pharmacist,
    /// Fridges and alarms, receiving and counting stock.
    Technician,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Pharmacist, Role::Technician];

    /// The name stored in `users.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Pharmacist => "pharmacist",
            Role::Technician => "technician",
        }
    }

    /// Parse a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: sign-in, first-run setup, health, static files, enrollment by code.
    Public,
    /// A kiosk, which proves itself with its signature on the request (the
    /// handler checks it).
    Kiosk,
    /// Signed-in staff with one of these roles.
    Staff(&'static [Role]),
}

const A: Role = Role::Admin;
const P: Role = Role::Pharmacist;
const T: Role = Role::Technician;
const ALL: &[Role] = &[A, P, T];
const AP: &[Role] = &[A, P];
const AT: &[Role] = &[A, T];
const PT: &[Role] = &[P, T];
const APT: &[Role] = ALL;
const ONLY_A: &[Role] = &[A];
const ONLY_P: &[Role] = &[P];

use Access::{Kiosk, Public, Staff};

/// Every route: method, axum path pattern, access.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Open to anyone.
    ("GET", "/login", Public),
    ("POST", "/api/login", Public),
    ("GET", "/setup", Public),
    ("POST", "/api/setup", Public),
    ("GET", "/healthz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/bench/hello", Public),
    ("GET", "/static/app.css", Public),
    ("GET", "/static/app.js", Public),
    ("POST", "/api/enroll", Public),
    ("GET", "/api/tls/ca.pem", Public),
    // Kiosks, signed.
    ("PUT", "/api/blobs/{sha}", Kiosk),
    ("HEAD", "/api/blobs/{sha}", Kiosk),
    ("PATCH", "/api/blobs/{sha}", Kiosk),
    // Everyone signed in.
    ("GET", "/api/me", Staff(ALL)),
    ("POST", "/api/logout", Staff(ALL)),
    ("GET", "/", Staff(ALL)),
    ("GET", "/fragments/kiosks", Staff(ALL)),
    ("GET", "/events/stream", Staff(ALL)),
    ("GET", "/api/kiosks", Staff(ALL)),
    ("GET", "/api/kiosks/{id}/config", Staff(ALL)),
    // Administration.
    ("POST", "/api/kiosks/{id}/config", Staff(AT)),
    ("POST", "/api/kiosks/{id}/revoke", Staff(ONLY_A)),
    ("GET", "/admin/users", Staff(ONLY_A)),
    ("POST", "/api/users", Staff(ONLY_A)),
    ("POST", "/api/users/{username}/disable", Staff(ONLY_A)),
    ("GET", "/admin/audit", Staff(ONLY_A)),
    ("GET", "/admin/audit.csv", Staff(ONLY_A)),
    ("GET", "/dead-letters", Staff(AP)),
    // Cold chain: technicians' home ground; held stock is the pharmacist's call.
    ("GET", "/coldchain", Staff(APT)),
    ("GET", "/coldchain/alarms", Staff(APT)),
    ("GET", "/coldchain/alarms/{id}", Staff(APT)),
    ("POST", "/coldchain/alarms/{id}/ack", Staff(PT)),
    ("GET", "/coldchain/fridges/{id}/log", Staff(APT)),
    ("GET", "/coldchain/fridges/{id}/rules", Staff(APT)),
    ("POST", "/coldchain/fridges/{id}/rules", Staff(AT)),
    ("GET", "/coldchain/import", Staff(APT)),
    ("POST", "/coldchain/import", Staff(PT)),
    ("GET", "/api/coldchain/alarms", Staff(APT)),
    ("GET", "/inventory/holds", Staff(APT)),
    // Stock.
    ("GET", "/inventory", Staff(APT)),
    ("GET", "/inventory/lots", Staff(APT)),
    ("GET", "/inventory/lots/{id}", Staff(APT)),
    ("GET", "/inventory/receive", Staff(APT)),
    ("GET", "/inventory/stocktake", Staff(APT)),
    ("GET", "/inventory/recalls", Staff(APT)),
    ("GET", "/inventory/trace", Staff(APT)),
    ("GET", "/inventory/trace.csv", Staff(APT)),
    ("POST", "/inventory/lots/{id}/decision", Staff(ONLY_P)),
    ("GET", "/api/inventory/lots", Staff(APT)),
    ("POST", "/api/inventory/lots", Staff(PT)),
    ("GET", "/api/inventory/lots/{id}", Staff(APT)),
    ("POST", "/api/inventory/lots/{id}/dispense", Staff(ONLY_P)),
    ("POST", "/api/inventory/lots/{id}/adjust", Staff(PT)),
    ("POST", "/api/inventory/lots/{id}/write-off", Staff(PT)),
    ("POST", "/api/inventory/lots/{id}/transfer", Staff(PT)),
    ("POST", "/api/inventory/lots/{id}/hold", Staff(PT)),
    ("POST", "/api/inventory/lots/{id}/decision", Staff(ONLY_P)),
    ("POST", "/api/inventory/receive", Staff(PT)),
    ("POST", "/api/inventory/reserve", Staff(ONLY_P)),
    (
        "POST",
        "/api/inventory/reservations/{id}/release",
        Staff(ONLY_P),
    ),
    (
        "POST",
        "/api/inventory/reservations/{id}/dispense",
        Staff(ONLY_P),
    ),
    ("POST", "/api/inventory/stocktake", Staff(PT)),
    ("POST", "/api/inventory/recall", Staff(ONLY_P)),
    ("GET", "/api/inventory/trace", Staff(APT)),
    ("GET", "/api/inventory/dashboard", Staff(APT)),
    ("GET", "/api/inventory/ledger-check", Staff(APT)),
    ("POST", "/api/inventory/gs1", Staff(PT)),
    ("POST", "/api/inventory/gs1/image", Staff(PT)),
    ("GET", "/api/inventory/availability", Staff(APT)),
    // Catalog.
    ("GET", "/catalog", Staff(APT)),
    ("GET", "/catalog/import", Staff(AP)),
    ("POST", "/catalog/import", Staff(AP)),
    ("GET", "/api/catalog", Staff(APT)),
    ("POST", "/api/catalog/import", Staff(AP)),
    ("GET", "/api/catalog/{gtin}", Staff(APT)),
    // Patients: clinical data, not the administrator's.
    ("GET", "/patients", Staff(PT)),
    ("GET", "/patients/{id}", Staff(PT)),
    ("GET", "/api/patients", Staff(PT)),
    ("POST", "/api/patients", Staff(PT)),
    ("GET", "/api/patients/{id}", Staff(PT)),
    ("POST", "/api/patients/{id}", Staff(PT)),
    ("POST", "/api/patients/{id}/merge", Staff(ONLY_P)),
    // Orders: technicians see the queue and hand over; pharmacists decide.
    ("GET", "/orders", Staff(PT)),
    ("GET", "/orders/{id}", Staff(PT)),
    ("GET", "/api/orders", Staff(PT)),
    ("GET", "/api/orders/{id}", Staff(PT)),
    ("POST", "/api/orders/{id}/lines", Staff(ONLY_P)),
    ("POST", "/api/orders/{id}/action", Staff(ONLY_P)),
    ("GET", "/api/orders/{id}/checks", Staff(PT)),
    ("POST", "/api/orders/{id}/patient", Staff(ONLY_P)),
    ("POST", "/api/orders/{id}/handover", Staff(PT)),
    ("POST", "/api/orders/{id}/notify", Staff(PT)),
    ("POST", "/api/notifications/{id}/retry", Staff(PT)),
    ("GET", "/api/blobs/{sha}", Staff(PT)),
    // Paper prescriptions.
    ("GET", "/ocr", Staff(PT)),
    ("POST", "/ocr/upload", Staff(PT)),
    ("GET", "/ocr/jobs/{id}", Staff(PT)),
    ("GET", "/ocr/jobs/{id}/image", Staff(PT)),
    ("POST", "/ocr/jobs/{id}/retry", Staff(PT)),
    ("GET", "/api/ocr/jobs", Staff(PT)),
    ("POST", "/api/ocr/jobs", Staff(PT)),
    ("GET", "/api/ocr/jobs/{id}", Staff(PT)),
    ("POST", "/api/ocr/jobs/{id}/fields", Staff(PT)),
    ("GET", "/api/ocr/search", Staff(PT)),
    // Billing.
    ("GET", "/billing", Staff(AP)),
    ("GET", "/billing/z", Staff(AP)),
    ("GET", "/api/billing/z", Staff(AP)),
    ("GET", "/api/billing/plans", Staff(APT)),
    ("POST", "/api/billing/plans", Staff(AP)),
    ("POST", "/api/patients/{id}/plan", Staff(ONLY_P)),
    ("GET", "/api/orders/{id}/quote", Staff(PT)),
    ("POST", "/api/orders/{id}/invoice", Staff(ONLY_P)),
    ("GET", "/api/invoices/{id}", Staff(APT)),
    ("POST", "/api/invoices/{id}/payments", Staff(PT)),
    ("POST", "/api/invoices/{id}/credit", Staff(ONLY_P)),
    ("GET", "/invoices/{id}", Staff(APT)),
    ("GET", "/invoices/{id}/receipt", Staff(APT)),
    ("GET", "/analytics", Staff(AP)),
    ("GET", "/api/analytics", Staff(AP)),
];

/// Who may call `method` on the route `pattern`; `None` means nobody (a route
/// missing from the table). HEAD falls back to GET.
pub fn access(method: &str, pattern: &str) -> Option<Access> {
    let find = |m: &str| {
        ROUTES
            .iter()
            .find(|(rm, rp, _)| *rm == m && *rp == pattern)
            .map(|r| r.2)
    };
    find(method).or_else(|| (method == "HEAD").then(|| find("GET")).flatten())
}

/// May `role` call this route?
pub fn allows(access: Access, role: Role) -> bool {
    match access {
        Access::Public => true,
        Access::Kiosk => false,
        Access::Staff(roles) => roles.contains(&role),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_route_is_listed_once() {
        let mut seen = HashSet::new();
        for (m, p, _) in ROUTES {
            assert!(seen.insert((m, p)), "{m} {p} twice");
            assert!(p.starts_with('/'), "{p}");
        }
    }

    #[test]
    fn the_matrix_says_what_the_issue_asks() {
        let approve = access("POST", "/api/orders/{id}/action").unwrap();
        assert!(allows(approve, Role::Pharmacist));
        assert!(
            !allows(approve, Role::Technician),
            "a technician cannot approve"
        );
        assert!(
            !allows(approve, Role::Admin),
            "an administrator approves nothing"
        );
        let ack = access("POST", "/coldchain/alarms/{id}/ack").unwrap();
        assert!(
            allows(ack, Role::Technician),
            "a technician acknowledges alarms"
        );
        let accounts = access("POST", "/api/users").unwrap();
        assert!(allows(accounts, Role::Admin));
        assert!(
            !allows(accounts, Role::Pharmacist),
            "a pharmacist cannot manage accounts"
        );
        assert_eq!(
            access("GET", "/nowhere"),
            None,
            "unlisted routes are closed"
        );
        assert_eq!(access("HEAD", "/orders"), access("GET", "/orders"));
        assert!(
            !allows(Access::Kiosk, Role::Admin),
            "staff cannot act as a kiosk"
        );
    }
}
