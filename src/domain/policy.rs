//! The policy layer: every authorization decision and every license decision
//! of the gateway, each rule named so that a refusal can say which rule
//! refused. The database enforces the same invariants again (conditional
//! updates and check constraints); these functions decide what to answer.

use super::{LoginId, ModuleId, OwnerId, PersonId, Pool, Principal, SiteId};

/// A named authorization rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable name, shown to clients in `extensions.rule`.
    pub name: &'static str,
    /// What the rule says, for a person.
    pub says: &'static str,
}

/// Only vendor operators create sites, list all sites and set pool totals.
pub const OPERATOR_ONLY: Rule = Rule { name: "OPERATOR_ONLY", says: "only a vendor operator may do this" };
/// Staff (people, logins, profiles) is read and managed by site administrators.
pub const STAFF_REQUIRES_ADMIN: Rule = Rule {
    name: "STAFF_REQUIRES_ADMINISTRATOR",
    says: "only a site administrator may read or change people, logins and profiles",
};
/// A site user reads their own person, user, profile and modules, nothing else of staff.
pub const OWN_RECORDS_ONLY: Rule =
    Rule { name: "USER_READS_OWN_RECORDS_ONLY", says: "a site user may read only their own person, user and profile" };
/// An administrator may not delete their own login or person (they would lock themselves out).
pub const NO_SELF_REMOVAL: Rule = Rule {
    name: "NO_SELF_REMOVAL",
    says: "an administrator cannot delete their own login or person, nor take their own administrator rights",
};

/// Agreement owners manage licenses, never staff (R11).
pub const OWNER_MANAGES_LICENSES_ONLY: Rule = Rule {
    name: "OWNER_MANAGES_LICENSES_ONLY",
    says: "an agreement owner manages pools, orders and change requests, not people, logins or profiles",
};
/// Only the one who submitted a change request may cancel it.
pub const REQUESTER_ONLY: Rule =
    Rule { name: "REQUESTER_ONLY", says: "only the one who submitted a change request may cancel it" };

/// What a principal asks to do, and on which site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List every site of the installation.
    ListSites,
    /// Create a site with its agreement and first administrator.
    CreateSite,
    /// Set a pool's total directly (R5 still applies).
    SetPoolTotal(SiteId),
    /// Read a site, its agreement, modules and pool summary.
    ReadSite(SiteId),
    /// Read the site's people, users and profiles.
    ReadStaff(SiteId),
    /// Create, change or delete the site's people, logins and profiles.
    ManageStaff(SiteId),
    /// Read one user (login) of the site.
    ReadUser(SiteId, LoginId),
    /// Read one profile of the site; `own` when it is the principal's own profile.
    ReadProfile { site: SiteId, own: bool },
    /// Read one person (staff record) of the site.
    ReadPerson(SiteId, PersonId),
    /// Read the owner account of the site's agreement.
    ReadOwnerAccount(SiteId, OwnerId),
    /// Draft, check out and read license orders; submit change requests (R10, R11).
    ManageLicenses(SiteId),
    /// Read the site's audit trail.
    ReadAudit(SiteId),
    /// Approve or reject change requests, set self-service and owners (operators).
    VendorDecision(SiteId),
}

impl Action {
    fn site(&self) -> Option<SiteId> {
        match *self {
            Action::ListSites | Action::CreateSite => None,
            Action::ManageLicenses(s) | Action::ReadAudit(s) | Action::VendorDecision(s) => Some(s),
            Action::SetPoolTotal(s)
            | Action::ReadSite(s)
            | Action::ReadStaff(s)
            | Action::ManageStaff(s)
            | Action::ReadUser(s, _)
            | Action::ReadProfile { site: s, .. }
            | Action::ReadPerson(s, _)
            | Action::ReadOwnerAccount(s, _) => Some(s),
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The object belongs to another site: answered exactly like a missing one (R13).
    NotFound,
    /// The principal may not do this; the rule says why.
    Forbidden(Rule),
}

/// Decides whether `principal` may perform `action`.
pub fn authorize(principal: &Principal, action: Action) -> Result<(), Denied> {
    match principal {
        Principal::Operator { .. } => Ok(()),
        Principal::Owner { id, sites, .. } => {
            if action.site().is_some_and(|s| !sites.contains(&s)) {
                return Err(Denied::NotFound);
            }
            match action {
                Action::ReadSite(_) | Action::ManageLicenses(_) | Action::ReadAudit(_) => Ok(()),
                Action::ReadOwnerAccount(_, owner) if owner == *id => Ok(()),
                Action::ListSites | Action::CreateSite | Action::SetPoolTotal(_) | Action::VendorDecision(_) => {
                    Err(Denied::Forbidden(OPERATOR_ONLY))
                }
                _ => Err(Denied::Forbidden(OWNER_MANAGES_LICENSES_ONLY)),
            }
        }
        Principal::SiteLogin { site_id, is_admin, login_id, person_id, .. } => {
            if action.site().is_some_and(|s| s != *site_id) {
                return Err(Denied::NotFound);
            }
            match action {
                Action::ListSites | Action::CreateSite | Action::SetPoolTotal(_) | Action::VendorDecision(_) => {
                    Err(Denied::Forbidden(OPERATOR_ONLY))
                }
                Action::ReadSite(_) => Ok(()),
                Action::ReadStaff(_) | Action::ManageStaff(_) | Action::ManageLicenses(_) | Action::ReadAudit(_)
                    if *is_admin =>
                {
                    Ok(())
                }
                Action::ManageLicenses(_) | Action::ReadAudit(_) => Err(Denied::Forbidden(STAFF_REQUIRES_ADMIN)),
                Action::ReadStaff(_) | Action::ManageStaff(_) => Err(Denied::Forbidden(STAFF_REQUIRES_ADMIN)),
                Action::ReadUser(_, target) if *is_admin || target == *login_id => Ok(()),
                Action::ReadProfile { own, .. } if *is_admin || own => Ok(()),
                Action::ReadPerson(_, target) if *is_admin || target == *person_id => Ok(()),
                Action::ReadOwnerAccount(..) if *is_admin => Ok(()),
                Action::ReadUser(..)
                | Action::ReadProfile { .. }
                | Action::ReadPerson(..)
                | Action::ReadOwnerAccount(..) => Err(Denied::Forbidden(OWN_RECORDS_ONLY)),
            }
        }
    }
}

/// One module a change is short of (R4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub module_id: ModuleId,
    /// Licenses of this module the change needs.
    pub needed: i64,
    /// Licenses of this module free now.
    pub available: i64,
    /// `needed - available`: how many more the site must get.
    pub shortfall: i64,
}

/// How a site gets more licenses (R4, R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The agreement allows self-service: place a license order.
    LicenseOrder,
    /// No self-service: submit a change request to the vendor.
    ChangeRequest,
}

impl Remedy {
    pub fn for_agreement(self_service: bool) -> Self {
        if self_service { Remedy::LicenseOrder } else { Remedy::ChangeRequest }
    }
}

/// The change needs `needs` (module, licenses) from `pools`; returns every
/// module it is short of, empty when it fits (R4).
pub fn shortages(needs: &[(ModuleId, i64)], pools: &[Pool]) -> Vec<Shortage> {
    needs
        .iter()
        .filter(|(_, needed)| *needed > 0)
        .filter_map(|&(module_id, needed)| {
            let available = pools.iter().find(|p| p.module_id == module_id).map_or(0, Pool::available);
            (needed > available).then(|| Shortage { module_id, needed, available, shortfall: needed - available })
        })
        .collect()
}

/// Setting `pool` to `requested` would leave it below its usage (R5):
/// returns how many users must lose access first.
pub fn users_to_remove(pool: &Pool, requested: i64) -> Option<i64> {
    (requested < pool.used).then(|| pool.used - requested)
}

/// License needs of moving occupying users between module sets: +n for every
/// module gained, -n for every module lost (R2, R4, R6).
pub fn module_deltas(before: &[ModuleId], after: &[ModuleId], users: i64) -> Vec<(ModuleId, i64)> {
    let mut deltas: Vec<(ModuleId, i64)> = Vec::new();
    for m in after.iter().filter(|m| !before.contains(m)) {
        deltas.push((*m, users));
    }
    for m in before.iter().filter(|m| !after.contains(m)) {
        deltas.push((*m, -users));
    }
    deltas.retain(|(_, d)| *d != 0);
    // Fixed order: pool rows are always locked in module order, so two
    // transactions never wait on each other in a cycle.
    deltas.sort_by_key(|(m, _)| *m);
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OperatorId, OwnerId, PersonId};

    fn admin(site: i64) -> Principal {
        Principal::SiteLogin {
            login_id: LoginId(1),
            person_id: PersonId(1),
            site_id: SiteId(site),
            username: "a".into(),
            name: "A".into(),
            is_admin: true,
        }
    }

    #[test]
    fn r13_foreign_site_is_not_found_even_for_an_administrator() {
        assert_eq!(authorize(&admin(1), Action::ReadStaff(SiteId(2))), Err(Denied::NotFound));
        assert_eq!(authorize(&admin(1), Action::ReadStaff(SiteId(1))), Ok(()));
    }

    #[test]
    fn operators_may_do_everything_and_administrators_may_not_set_totals() {
        let op = Principal::Operator { id: OperatorId(1), username: "op".into() };
        assert_eq!(authorize(&op, Action::SetPoolTotal(SiteId(9))), Ok(()));
        assert_eq!(authorize(&admin(1), Action::SetPoolTotal(SiteId(1))), Err(Denied::Forbidden(OPERATOR_ONLY)));
    }

    #[test]
    fn r11_owners_manage_licenses_of_their_sites_and_never_staff() {
        let owner = Principal::Owner { id: OwnerId(1), username: "o".into(), name: "O".into(), sites: vec![SiteId(1)] };
        assert_eq!(authorize(&owner, Action::ManageLicenses(SiteId(1))), Ok(()));
        assert_eq!(authorize(&owner, Action::ManageLicenses(SiteId(2))), Err(Denied::NotFound));
        assert_eq!(
            authorize(&owner, Action::ReadStaff(SiteId(1))),
            Err(Denied::Forbidden(OWNER_MANAGES_LICENSES_ONLY))
        );
    }

    #[test]
    fn staff_objects_are_seen_by_administrators_and_their_own_user_only() {
        let user = Principal::SiteLogin {
            login_id: LoginId(7),
            person_id: PersonId(8),
            site_id: SiteId(1),
            username: "u".into(),
            name: "U".into(),
            is_admin: false,
        };
        let owner = Principal::Owner { id: OwnerId(3), username: "o".into(), name: "O".into(), sites: vec![SiteId(1)] };
        assert_eq!(authorize(&user, Action::ReadPerson(SiteId(1), PersonId(8))), Ok(()));
        assert_eq!(
            authorize(&user, Action::ReadPerson(SiteId(1), PersonId(9))),
            Err(Denied::Forbidden(OWN_RECORDS_ONLY))
        );
        assert_eq!(
            authorize(&user, Action::ReadOwnerAccount(SiteId(1), OwnerId(3))),
            Err(Denied::Forbidden(OWN_RECORDS_ONLY))
        );
        assert_eq!(authorize(&admin(1), Action::ReadPerson(SiteId(1), PersonId(9))), Ok(()));
        assert_eq!(authorize(&admin(1), Action::ReadOwnerAccount(SiteId(1), OwnerId(3))), Ok(()));
        assert_eq!(authorize(&admin(2), Action::ReadPerson(SiteId(1), PersonId(9))), Err(Denied::NotFound));
        assert_eq!(
            authorize(&owner, Action::ReadPerson(SiteId(1), PersonId(8))),
            Err(Denied::Forbidden(OWNER_MANAGES_LICENSES_ONLY))
        );
        assert_eq!(authorize(&owner, Action::ReadOwnerAccount(SiteId(1), OwnerId(3))), Ok(()));
        assert_eq!(
            authorize(&owner, Action::ReadOwnerAccount(SiteId(1), OwnerId(4))),
            Err(Denied::Forbidden(OWNER_MANAGES_LICENSES_ONLY))
        );
    }

    #[test]
    fn r4_shortages_name_every_short_module_with_numbers() {
        let pools = [
            Pool { site_id: SiteId(1), module_id: ModuleId(1), total: 5, used: 5, version: 0 },
            Pool { site_id: SiteId(1), module_id: ModuleId(2), total: 5, used: 2, version: 0 },
        ];
        let s = shortages(&[(ModuleId(1), 2), (ModuleId(2), 4)], &pools);
        assert_eq!(
            s,
            vec![
                Shortage { module_id: ModuleId(1), needed: 2, available: 0, shortfall: 2 },
                Shortage { module_id: ModuleId(2), needed: 4, available: 3, shortfall: 1 },
            ]
        );
    }

    #[test]
    fn r2_moving_between_profiles_needs_only_the_gained_modules() {
        let d = module_deltas(&[ModuleId(1)], &[ModuleId(1), ModuleId(2)], 3);
        assert_eq!(d, vec![(ModuleId(2), 3)]);
        let d = module_deltas(&[ModuleId(2)], &[ModuleId(1)], 1);
        assert_eq!(d, vec![(ModuleId(1), 1), (ModuleId(2), -1)]);
    }
}
