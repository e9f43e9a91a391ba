//! Opaque global ids (`node(id:)`, every `id` field): base64 of `Type:number`,
//! or for a license pool, which is one site's pool of one module,
//! `LicensePool:site:module`. Clients must not take them apart; the server
//! checks the type on the way in.

use async_graphql::ID;
use base64::Engine;

use crate::domain::InvalidInput;
use crate::service::ServiceError;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The kinds of object that have a global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Site,
    Person,
    User,
    Profile,
    Module,
    LicenseOrder,
    ChangeRequest,
    Responsibility,
    Owner,
    LicensePool,
    AuditEvent,
}

/// What a global id names: an object by its kind and number, or a license
/// pool by its site and module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    One(Kind, i64),
    Pool { site: i64, module: i64 },
}

impl Global {
    pub fn kind(self) -> Kind {
        match self {
            Global::One(kind, _) => kind,
            Global::Pool { .. } => Kind::LicensePool,
        }
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Site => "Site",
            Kind::Person => "Person",
            Kind::User => "User",
            Kind::Profile => "Profile",
            Kind::Module => "Module",
            Kind::LicenseOrder => "LicenseOrder",
            Kind::ChangeRequest => "ChangeRequest",
            Kind::Responsibility => "Responsibility",
            Kind::Owner => "AgreementOwner",
            Kind::LicensePool => "LicensePool",
            Kind::AuditEvent => "AuditEvent",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Kind::Site,
            Kind::Person,
            Kind::User,
            Kind::Profile,
            Kind::Module,
            Kind::LicenseOrder,
            Kind::ChangeRequest,
            Kind::Responsibility,
            Kind::Owner,
            Kind::LicensePool,
            Kind::AuditEvent,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// The global id of an object of `kind` (any kind but a pool, see [`encode_pool`]).
pub fn encode(kind: Kind, id: i64) -> ID {
    ID(ENGINE.encode(format!("{}:{id}", kind.name())))
}

/// The global id of the pool of `module` on `site`.
pub fn encode_pool(site: i64, module: i64) -> ID {
    ID(ENGINE.encode(format!("{}:{site}:{module}", Kind::LicensePool.name())))
}

/// Any global id, whatever its kind.
pub fn decode_any(id: &ID, field: &'static str) -> Result<Global, ServiceError> {
    let bad = || ServiceError::Invalid(InvalidInput::new(field, format!("`{}` is not an id this server issued", id.0)));
    let text = ENGINE.decode(id.0.as_bytes()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
    let (kind, key) = text.split_once(':').ok_or_else(bad)?;
    let kind = Kind::from_name(kind).ok_or_else(bad)?;
    let number = |n: &str| n.parse::<i64>().map_err(|_| bad());
    match kind {
        Kind::LicensePool => {
            let (site, module) = key.split_once(':').ok_or_else(bad)?;
            Ok(Global::Pool { site: number(site)?, module: number(module)? })
        }
        kind => Ok(Global::One(kind, number(key)?)),
    }
}

/// A global id that must be of `kind` (any kind but a pool).
pub fn decode(id: &ID, kind: Kind, field: &'static str) -> Result<i64, ServiceError> {
    match decode_any(id, field)? {
        Global::One(k, n) if k == kind => Ok(n),
        other => Err(ServiceError::Invalid(InvalidInput::new(
            field,
            format!("{field} must be the id of a {}, but this is the id of a {}", kind.name(), other.kind().name()),
        ))),
    }
}

/// Audit events name their target `kind:number` (a pool: `pool:site:module`)
/// inside the server; clients see and filter by the target's global id
/// instead. Returns `None` for an event without a target.
pub fn audit_target_to_id(label: &str) -> Option<ID> {
    let (kind, number) = label.split_once(':')?;
    let kind = match kind {
        "pool" => {
            let (site, module) = number.split_once(':')?;
            return Some(encode_pool(site.parse().ok()?, module.parse().ok()?));
        }
        "person" => Kind::Person,
        "login" => Kind::User,
        "profile" => Kind::Profile,
        "site" => Kind::Site,
        "order" => Kind::LicenseOrder,
        "changeRequest" => Kind::ChangeRequest,
        "responsibility" => Kind::Responsibility,
        "owner" => Kind::Owner,
        _ => return None,
    };
    number.parse::<i64>().ok().map(|n| encode(kind, n))
}

/// The inverse of [`audit_target_to_id`], for filtering by a global id.
pub fn id_to_audit_target(id: &ID, field: &'static str) -> Result<String, ServiceError> {
    let (kind, n) = match decode_any(id, field)? {
        Global::Pool { site, module } => return Ok(format!("pool:{site}:{module}")),
        Global::One(kind, n) => (kind, n),
    };
    let prefix = match kind {
        Kind::Person => "person",
        Kind::User => "login",
        Kind::Profile => "profile",
        Kind::Site => "site",
        Kind::LicenseOrder => "order",
        Kind::ChangeRequest => "changeRequest",
        Kind::Responsibility => "responsibility",
        Kind::Owner => "owner",
        Kind::Module | Kind::LicensePool | Kind::AuditEvent => {
            return Err(ServiceError::Invalid(InvalidInput::new(field, "no audit event targets this kind of object")));
        }
    };
    Ok(format!("{prefix}:{n}"))
}
