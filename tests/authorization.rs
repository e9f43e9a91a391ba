//! Who sees what and who may do what, whichever way they ask: every root
//! operation of the schema (every query, mutation and subscription, the
//! last over WebSocket) asked by every kind of
//! principal, with a selection generated from the schema that follows every
//! field returning an object, so every object type is reached through every
//! field that returns it. Two tables hold the decisions: `TYPES` (who may see
//! an object of each type) and `OPERATIONS` (who may run each operation). A
//! new object type, a new field that returns an object, or a new root
//! operation without an entry fails the test.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use common::*;
use serde_json::{Value, json};

/// The kinds of principal of DOMAIN.md, as far as a decision can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No session.
    Anonymous,
    /// A vendor operator.
    Operator,
    /// A site login with administrator rights.
    Administrator,
    /// A site login without administrator rights.
    User,
    /// An agreement owner's own account.
    Owner,
}
use Role::*;

/// Who may see an object of a type. The principal must also belong to the
/// object's site (or be an operator): that is checked for every object with
/// an id, against every id of the site under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sees {
    /// Every signed-in principal: itself (`Viewer`), and modules, the same for every site.
    SignedIn,
    /// Everyone of the site: its logins, the owner of its agreement, operators.
    Site,
    /// Who manages the site's licenses: its administrators, the owner of its
    /// agreement, operators (R10, R11).
    Managers,
    /// Staff: the site's administrators and operators; a site user only their
    /// own records; agreement owners nothing (R11).
    Staff,
    /// An owner account: operators, administrators of the sites it owns, the
    /// owner itself; not site users.
    OwnerAccount,
    /// Whoever may see the object or answer that carries it (pages, lines,
    /// actors, results of mutations and refusals): decided there.
    Carried,
}

/// Who may see an object of each object type of the schema (the root types
/// are in `OPERATIONS`), and each of its fields that return an object: the
/// matrix follows every one of them, and what they return is judged by the
/// entry of its own type. Name a new field here once the dataset below
/// reaches it with an object (or it is in `ONLY_IN_REFUSALS`).
const TYPES: &[(&str, Sees, &[&str])] = &[
    ("Actor", Sees::Carried, &["person"]),
    ("Agreement", Sees::Site, &["owner"]),
    ("AgreementOwner", Sees::OwnerAccount, &[]),
    ("ApproveChangeRequestSuccess", Sees::Carried, &["request", "licensePools"]),
    ("AssignResponsibilitySuccess", Sees::Carried, &["responsibility"]),
    ("AuditEvent", Sees::Managers, &["actor", "targetPerson", "pools"]),
    ("AuditEventConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("AuditEventEdge", Sees::Carried, &["node"]),
    ("ChangeRequest", Sees::Managers, &["site", "lines", "requestedBy"]),
    ("ChangeRequestConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("ChangeRequestEdge", Sees::Carried, &["node"]),
    ("ChangeRequestSuccess", Sees::Carried, &["request"]),
    ("CheckoutSuccess", Sees::Carried, &["order", "licensePools"]),
    ("CreateLoginSuccess", Sees::Carried, &["user", "licensePools"]),
    ("CreateOwnerAccountSuccess", Sees::Carried, &["owner"]),
    ("CreatePersonSuccess", Sees::Carried, &["person"]),
    ("CreateProfileSuccess", Sees::Carried, &["profile", "licensePools"]),
    ("CreateSiteSuccess", Sees::Carried, &["site", "administrator"]),
    ("DeleteLoginSuccess", Sees::Carried, &["person", "profile", "licensePools"]),
    ("DeletePersonSuccess", Sees::Carried, &["person", "profile", "licensePools"]),
    ("DeleteProfileSuccess", Sees::Carried, &[]),
    ("LicenseLimitExceeded", Sees::Carried, &["shortages"]),
    ("LicenseOrder", Sees::Managers, &["lines", "createdBy", "checkedOutBy"]),
    ("LicenseOrderConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("LicenseOrderEdge", Sees::Carried, &["node"]),
    ("LicenseOrderSuccess", Sees::Carried, &["order"]),
    ("LicensePool", Sees::Site, &["module"]),
    ("LicensePreview", Sees::Carried, &["pools", "refusal"]),
    ("LicenseShortage", Sees::Carried, &["module"]),
    ("Module", Sees::SignedIn, &[]),
    ("OrderNotDraft", Sees::Carried, &[]),
    ("PageInfo", Sees::Carried, &[]),
    ("Person", Sees::Staff, &["user", "responsibilities"]),
    ("PersonAlreadyHasLogin", Sees::Carried, &[]),
    ("PersonConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("PersonDeleted", Sees::Carried, &[]),
    ("PersonEdge", Sees::Carried, &["node"]),
    ("PersonHasResponsibilities", Sees::Carried, &["responsibilities"]),
    ("PoolBelowUsage", Sees::Carried, &["module"]),
    ("PoolBelowUsageLine", Sees::Carried, &["module"]),
    // An impact is carried; the pool it names is judged as a pool.
    ("PoolImpact", Sees::Carried, &["module", "pool"]),
    ("Profile", Sees::Staff, &["modules", "users"]),
    ("ProfileInUse", Sees::Carried, &[]),
    ("ProfileNameTaken", Sees::Carried, &[]),
    ("RequestNotPending", Sees::Carried, &[]),
    // What a person holds is seen with that person.
    ("Responsibility", Sees::Staff, &["holder"]),
    ("RestoreLoginSuccess", Sees::Carried, &["user", "licensePools"]),
    ("RestorePersonSuccess", Sees::Carried, &["person", "licensePools"]),
    ("SetPoolTotalSuccess", Sees::Carried, &["pool"]),
    ("SignInRefused", Sees::Carried, &[]),
    ("SignInSuccess", Sees::Carried, &["viewer"]),
    ("SignInThrottled", Sees::Carried, &[]),
    ("Site", Sees::Site, &["agreement", "licensePools", "people", "users"]),
    ("SiteConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("SiteEdge", Sees::Carried, &["node"]),
    ("SiteNameTaken", Sees::Carried, &[]),
    ("TotalLine", Sees::Carried, &["module"]),
    ("TotalsBelowUsage", Sees::Carried, &["pools"]),
    ("UpdateAgreementSuccess", Sees::Carried, &["site"]),
    ("UpdateLoginSuccess", Sees::Carried, &["user", "previousProfile", "licensePools"]),
    ("UpdatePersonSuccess", Sees::Carried, &["person"]),
    ("UpdateProfileSuccess", Sees::Carried, &["profile", "licensePools"]),
    ("User", Sees::Staff, &["person", "profile", "licensedModules"]),
    ("UserConnection", Sees::Carried, &["edges", "nodes", "pageInfo"]),
    ("UserEdge", Sees::Carried, &["node"]),
    ("UsernameTaken", Sees::Carried, &[]),
    ("Viewer", Sees::SignedIn, &["user", "ownedSites", "site"]),
    ("WrongLicensePath", Sees::Carried, &[]),
];

/// Fields that return an object only in a refusal, which an operation with
/// valid input never gets; what they carry is decided by the mutation.
const ONLY_IN_REFUSALS: &[&str] = &[
    "PersonHasResponsibilities.responsibilities",
    "PoolBelowUsage.module",
    "PoolBelowUsageLine.module",
    "TotalsBelowUsage.pools",
];

/// What an operation needs made just before each principal tries it, so
/// that the input is valid and only authorization decides. `$fresh` is its
/// id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Nothing,
    /// A person without a login.
    Person,
    /// A person with a login (on the module-less profile).
    PersonWithLogin,
    /// A user on the module-less profile.
    User,
    /// A deleted person.
    DeletedPerson,
    /// A deleted login of a person still on staff.
    DeletedUser,
    /// A profile without users.
    Profile,
    /// A responsibility of the staff person `$person`.
    Responsibility,
    /// A draft license order of the administrator.
    Order,
    /// A pending change request submitted by the principal itself (by the
    /// administrator when the principal cannot submit one).
    OwnRequest,
    /// A pending change request submitted by the agreement owner.
    OwnersRequest,
    /// A pending change request of the administrator.
    Request,
    /// A session of the principal's own, to end.
    Session,
}

/// One root operation as the matrix asks it.
struct Op {
    /// `Query.field` or `Mutation.field`.
    field: &'static str,
    /// Its arguments, with variables from [`Fixture::variables`].
    args: &'static str,
    /// Who may run it and gets its answer; every other principal is refused
    /// with UNAUTHENTICATED (no session), NOT_FOUND (another site's principal
    /// naming something of this site, exactly like a missing id) or FORBIDDEN.
    may: &'static [Role],
    /// Whether it names something of the site under test (site, object id).
    names_site: bool,
    fresh: Fresh,
    /// The agreement's self-service flag the input is valid with (R10).
    self_service: Option<bool>,
}

const fn op(field: &'static str, args: &'static str, may: &'static [Role]) -> Op {
    Op { field, args, may, names_site: true, fresh: Fresh::Nothing, self_service: None }
}

impl Op {
    /// An operation that names nothing of a site.
    const fn anywhere(self) -> Op {
        Op { names_site: false, ..self }
    }
    const fn on(self, fresh: Fresh) -> Op {
        Op { fresh, ..self }
    }
    const fn self_service(self, on: bool) -> Op {
        Op { self_service: Some(on), ..self }
    }
}

const EVERYONE: &[Role] = &[Anonymous, Operator, Administrator, User, Owner];
const SIGNED_IN: &[Role] = &[Operator, Administrator, User, Owner];
const MANAGERS: &[Role] = &[Operator, Administrator, Owner];
const ADMINISTRATORS: &[Role] = &[Operator, Administrator];
const OPERATORS: &[Role] = &[Operator];
const THE_OWNER: &[Role] = &[Owner];
/// Operators, administrators and a site user asking for their own record.
const STAFF_AND_SELF: &[Role] = &[Operator, Administrator, User];
/// `node` answers an owner account to operators only (administrators and
/// owners see it through the agreement).
const NODE_OWNER: &[Role] = &[Operator];

/// Every root operation, with who may run it.
const OPERATIONS: &[Op] = &[
    op("Query.viewer", "", SIGNED_IN).anywhere(),
    op("Query.site", "(id: $site)", SIGNED_IN),
    op("Query.sites", "", OPERATORS).anywhere(),
    op("Query.modules", "", SIGNED_IN).anywhere(),
    op("Query.licensePools", "(siteId: $site)", SIGNED_IN),
    op("Query.profiles", "(siteId: $site)", ADMINISTRATORS),
    op("Query.users", "(siteId: $site)", ADMINISTRATORS),
    op("Query.people", "(siteId: $site, filter: {includeDeleted: true})", ADMINISTRATORS),
    op("Query.node", "(id: $site)", SIGNED_IN),
    op("Query.node", "(id: $module)", SIGNED_IN).anywhere(),
    op("Query.node", "(id: $person)", ADMINISTRATORS),
    op("Query.node", "(id: $ownPerson)", STAFF_AND_SELF),
    op("Query.node", "(id: $colleague)", ADMINISTRATORS),
    op("Query.node", "(id: $ownUser)", STAFF_AND_SELF),
    op("Query.node", "(id: $parking)", ADMINISTRATORS),
    op("Query.node", "(id: $ownProfile)", STAFF_AND_SELF),
    op("Query.node", "(id: $responsibility)", ADMINISTRATORS),
    op("Query.node", "(id: $ownResponsibility)", STAFF_AND_SELF),
    op("Query.node", "(id: $order)", MANAGERS),
    op("Query.node", "(id: $request)", MANAGERS),
    op("Query.node", "(id: $pool)", SIGNED_IN),
    op("Query.node", "(id: $auditEvent)", MANAGERS),
    // An owner account belongs to no one site.
    op("Query.node", "(id: $owner)", NODE_OWNER).anywhere(),
    op("Query.licenseOrders", "(siteId: $site)", MANAGERS),
    op("Query.changeRequests", "(siteId: $site)", MANAGERS),
    op("Query.auditEvents", "(siteId: $site)", MANAGERS),
    // Subscriptions: their first update (or refusal), as the query of the same name.
    op("Subscription.licensePools", "(siteId: $site)", SIGNED_IN),
    op("Subscription.auditEvents", "(siteId: $site)", MANAGERS),
    op("Query.previewCreateLogin", "(personId: $person, username: \"preview.user\", profileId: $profile)", ADMINISTRATORS),
    op("Query.previewChangeLoginProfile", "(id: $ownUser, profileId: $parking)", ADMINISTRATORS),
    op("Query.previewUpdateProfileModules", "(id: $profile, modules: [\"CASE\", \"DOCUMENT\"])", ADMINISTRATORS),
    op("Query.previewRestorePerson", "(id: $deleted)", ADMINISTRATORS),
    op("Query.previewCheckout", "(orderId: $order)", MANAGERS),
    op("Query.previewApproveChangeRequest", "(id: $request)", OPERATORS),
    op("Mutation.signIn", "(username: $username, password: $password)", EVERYONE).anywhere(),
    op("Mutation.signOut", "", SIGNED_IN).anywhere().on(Fresh::Session),
    op(
        "Mutation.createSite",
        "(input: {name: $name, agreementName: $name, pools: [{module: \"CASE\", total: 1}], administrator: {name: \"First Admin\", username: $name, password: $password}})",
        OPERATORS,
    )
    .anywhere(),
    op("Mutation.setPoolTotal", "(siteId: $site, module: \"CASE\", total: 100)", OPERATORS),
    op("Mutation.createPerson", "(input: {siteId: $site, name: \"New Person\"})", ADMINISTRATORS),
    op("Mutation.updatePerson", "(id: $fresh, input: {name: \"Renamed Person\"})", ADMINISTRATORS).on(Fresh::Person),
    op("Mutation.deletePerson", "(id: $fresh)", ADMINISTRATORS).on(Fresh::Person),
    op("Mutation.deletePerson", "(id: $fresh)", ADMINISTRATORS).on(Fresh::PersonWithLogin),
    op(
        "Mutation.createLogin",
        "(input: {personId: $fresh, username: $name, password: $password, profileId: $profile})",
        ADMINISTRATORS,
    )
    .on(Fresh::Person),
    op("Mutation.updateLogin", "(id: $fresh, input: {validUntil: \"2099-12-31\"})", ADMINISTRATORS).on(Fresh::User),
    op("Mutation.changeLoginProfile", "(id: $fresh, profileId: $profile)", ADMINISTRATORS).on(Fresh::User),
    op("Mutation.deleteLogin", "(id: $fresh)", ADMINISTRATORS).on(Fresh::User),
    op("Mutation.createProfile", "(input: {siteId: $site, name: $name, modules: [\"CASE\"]})", ADMINISTRATORS),
    op("Mutation.updateProfile", "(id: $fresh, input: {name: $name})", ADMINISTRATORS).on(Fresh::Profile),
    op("Mutation.deleteProfile", "(id: $fresh)", ADMINISTRATORS).on(Fresh::Profile),
    op("Mutation.restorePerson", "(id: $fresh)", ADMINISTRATORS).on(Fresh::DeletedPerson),
    op("Mutation.restoreLogin", "(id: $fresh)", ADMINISTRATORS).on(Fresh::DeletedUser),
    op("Mutation.assignResponsibility", "(personId: $person, kind: FORM, name: \"Leave form\")", ADMINISTRATORS),
    op("Mutation.removeResponsibility", "(id: $fresh)", ADMINISTRATORS).on(Fresh::Responsibility),
    op("Mutation.createLicenseOrder", "(siteId: $site, lines: [{module: \"CASE\", total: 100}])", MANAGERS)
        .self_service(true),
    op("Mutation.updateLicenseOrder", "(id: $fresh, lines: [{module: \"CASE\", total: 100}])", MANAGERS)
        .on(Fresh::Order)
        .self_service(true),
    op("Mutation.discardLicenseOrder", "(id: $fresh)", MANAGERS).on(Fresh::Order).self_service(true),
    op("Mutation.checkoutLicenseOrder", "(id: $fresh, idempotencyKey: $name)", MANAGERS)
        .on(Fresh::Order)
        .self_service(true),
    op(
        "Mutation.submitChangeRequest",
        "(siteId: $site, lines: [{module: \"CASE\", total: 100}], message: \"More, please\")",
        MANAGERS,
    )
    .self_service(false),
    op("Mutation.cancelChangeRequest", "(id: $fresh)", MANAGERS).on(Fresh::OwnRequest).self_service(false),
    // Only its requester may cancel a request, not even an operator.
    op("Mutation.cancelChangeRequest", "(id: $fresh)", THE_OWNER).on(Fresh::OwnersRequest).self_service(false),
    op("Mutation.approveChangeRequest", "(id: $fresh)", OPERATORS).on(Fresh::Request).self_service(false),
    op("Mutation.rejectChangeRequest", "(id: $fresh, reason: \"Not now\")", OPERATORS)
        .on(Fresh::Request)
        .self_service(false),
    op("Mutation.createOwnerAccount", "(name: \"New Owner\", username: $name, password: $password)", OPERATORS)
        .anywhere(),
    op("Mutation.updateAgreement", "(siteId: $site, selfService: true)", OPERATORS),
];

/// A principal the matrix asks as.
struct Asker {
    name: &'static str,
    role: Role,
    /// Of the other site: must get nothing of the site under test.
    elsewhere: bool,
    token: Option<String>,
    username: String,
    password: String,
    /// Records this principal sees although its role sees no others: a site
    /// user's own person, user, profile and responsibility; the owner
    /// accounts an administrator's or owner's agreements name.
    own: Vec<String>,
}

impl Asker {
    fn may_see(&self, sees: Sees, id: Option<&str>) -> bool {
        let own = || id.is_some_and(|id| self.own.iter().any(|o| o == id));
        match sees {
            Sees::Carried => true,
            Sees::SignedIn | Sees::Site => self.role != Anonymous,
            Sees::Managers => matches!(self.role, Operator | Administrator | Owner),
            Sees::Staff => matches!(self.role, Operator | Administrator) || (self.role == User && own()),
            Sees::OwnerAccount => self.role == Operator || (matches!(self.role, Administrator | Owner) && own()),
        }
    }

    /// What `op` must answer this principal: `Ok` or the error's code.
    fn expected(&self, op: &Op) -> Result<(), &'static str> {
        if self.elsewhere && op.names_site && self.role != Anonymous {
            Err("NOT_FOUND")
        } else if op.may.contains(&self.role) {
            Ok(())
        } else if self.role == Anonymous {
            Err("UNAUTHENTICATED")
        } else {
            Err("FORBIDDEN")
        }
    }
}

// ---- The schema as the server serves it ----

struct FieldDef {
    name: String,
    returns: String,
    /// It has an argument the matrix would have to give (non-null, no default).
    required_args: bool,
}

enum Composite {
    Object { fields: Vec<FieldDef>, implements: Vec<String> },
    Interface,
    Union { members: Vec<String> },
}

struct Sdl {
    types: BTreeMap<String, Composite>,
    roots: Vec<String>,
}

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

impl Sdl {
    fn served() -> Sdl {
        let sdl = license_gateway::graphql::sdl();
        let document = async_graphql::parser::parse_schema(&sdl).expect("the schema parses");
        let mut types = BTreeMap::new();
        let mut roots = Vec::new();
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => {
                    let name = ty.node.name.node.to_string();
                    let composite = match &ty.node.kind {
                        TypeKind::Object(o) => Composite::Object {
                            fields: o
                                .fields
                                .iter()
                                .map(|f| FieldDef {
                                    name: f.node.name.node.to_string(),
                                    returns: base_name(&f.node.ty.node).to_string(),
                                    required_args: f
                                        .node
                                        .arguments
                                        .iter()
                                        .any(|a| !a.node.ty.node.nullable && a.node.default_value.is_none()),
                                })
                                .collect(),
                            implements: o.implements.iter().map(|i| i.node.to_string()).collect(),
                        },
                        TypeKind::Interface(_) => Composite::Interface,
                        TypeKind::Union(u) => {
                            Composite::Union { members: u.members.iter().map(|m| m.node.to_string()).collect() }
                        }
                        _ => continue,
                    };
                    types.insert(name, composite);
                }
                TypeSystemDefinition::Schema(schema) => {
                    let s = &schema.node;
                    for root in [&s.query, &s.mutation, &s.subscription].into_iter().flatten() {
                        roots.push(root.node.to_string());
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Sdl { types, roots }
    }

    fn fields(&self, ty: &str) -> &[FieldDef] {
        match self.types.get(ty) {
            Some(Composite::Object { fields, .. }) => fields,
            _ => &[],
        }
    }

    /// Object types that `ty` (an object, interface or union) may be.
    fn possible<'a>(&'a self, ty: &'a str) -> Vec<&'a str> {
        match self.types.get(ty) {
            Some(Composite::Object { .. }) => vec![ty],
            Some(Composite::Union { members }) => members.iter().map(String::as_str).collect(),
            Some(Composite::Interface) => self
                .types
                .iter()
                .filter(
                    |(_, c)| matches!(c, Composite::Object { implements, .. } if implements.iter().any(|i| i == ty)),
                )
                .map(|(n, _)| n.as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Object types of the schema, but the roots.
    fn object_types(&self) -> BTreeSet<String> {
        self.types
            .iter()
            .filter(|(n, c)| matches!(c, Composite::Object { .. }) && !self.roots.contains(n))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every `Type.field` (of a non-root object type) that returns an object.
    fn fields_returning_objects(&self) -> BTreeSet<String> {
        self.object_types()
            .iter()
            .flat_map(|t| {
                self.fields(t)
                    .iter()
                    .filter(|f| self.types.contains_key(&f.returns))
                    .map(move |f| format!("{t}.{}", f.name))
            })
            .collect()
    }

    /// Every root operation, `Query.viewer` and so on.
    fn operations(&self) -> BTreeSet<String> {
        self.roots.iter().flat_map(|r| self.fields(r).iter().map(move |f| format!("{r}.{}", f.name))).collect()
    }

    /// A selection of `ty` that follows every field returning an object: each
    /// object with `__typename` and `id`, and, unless its type is already on
    /// the way down (cycles), everything it leads to.
    fn selection(&self, ty: &str, path: &mut Vec<String>) -> String {
        let mut out = String::from("__typename");
        for object in self.possible(ty) {
            let fields = self.fields(object);
            let mut inner = Vec::new();
            if fields.iter().any(|f| f.name == "id") {
                inner.push("id".to_string());
            }
            if !path.iter().any(|p| p == object) {
                path.push(object.to_string());
                for f in fields.iter().filter(|f| self.types.contains_key(&f.returns)) {
                    assert!(!f.required_args, "{object}.{} takes arguments: teach the matrix which to give", f.name);
                    inner.push(format!("{} {{ {} }}", f.name, self.selection(&f.returns, path)));
                }
                path.pop();
            }
            if !inner.is_empty() {
                out.push_str(&format!(" ... on {object} {{ {} }}", inner.join(" ")));
            }
        }
        out
    }

    /// The document that runs `op` with everything its answer leads to.
    fn document(&self, op: &Op) -> String {
        let (root, field) = op.field.split_once('.').unwrap();
        let returns = &self.fields(root).iter().find(|f| f.name == field).expect("operation in the schema").returns;
        let selection = if self.types.contains_key(returns) {
            format!(" {{ {} }}", self.selection(returns, &mut vec![root.to_string()]))
        } else {
            String::new()
        };
        let mut variables: Vec<String> = Vec::new();
        for part in op.args.split('$').skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            let ty = if ["name", "username", "password"].contains(&name.as_str()) { "String!" } else { "ID!" };
            let declared = format!("${name}: {ty}");
            if !variables.contains(&declared) {
                variables.push(declared);
            }
        }
        let variables = if variables.is_empty() { String::new() } else { format!("({})", variables.join(", ")) };
        let keyword = match root {
            "Mutation" => "mutation",
            "Subscription" => "subscription",
            _ => "query",
        };
        format!("{keyword}{variables} {{ {field}{}{selection} }}", op.args)
    }
}

#[test]
fn every_object_type_and_every_root_operation_has_a_decision() {
    let sdl = Sdl::served();
    let decided: BTreeSet<String> = TYPES.iter().map(|(t, _, _)| t.to_string()).collect();
    let types = sdl.object_types();
    let undecided: Vec<_> = types.difference(&decided).collect();
    assert!(
        undecided.is_empty(),
        "object types without an entry in TYPES of tests/authorization.rs (decide who may see them): {undecided:?}"
    );
    let gone: Vec<_> = decided.difference(&types).collect();
    assert!(gone.is_empty(), "entries in TYPES for types the schema no longer has: {gone:?}");

    let named: BTreeSet<String> =
        TYPES.iter().flat_map(|(t, _, fields)| fields.iter().map(move |f| format!("{t}.{f}"))).collect();
    let fields = sdl.fields_returning_objects();
    let unnamed: Vec<_> = fields.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "fields returning an object that their type's entry in TYPES of tests/authorization.rs does not name \
         (make sure the matrix's dataset reaches them, then name them): {unnamed:?}"
    );
    let gone: Vec<_> = named.difference(&fields).collect();
    assert!(
        gone.is_empty(),
        "fields named in TYPES that the schema no longer has (or that return no object): {gone:?}"
    );

    let asked: BTreeSet<String> = OPERATIONS.iter().map(|o| o.field.to_string()).collect();
    let operations = sdl.operations();
    let unasked: Vec<_> = operations.difference(&asked).collect();
    assert!(
        unasked.is_empty(),
        "root operations without an entry in OPERATIONS of tests/authorization.rs (decide who may run them): {unasked:?}"
    );
    let gone: Vec<_> = asked.difference(&operations).collect();
    assert!(gone.is_empty(), "entries in OPERATIONS for operations the schema no longer has: {gone:?}");
}

// ---- The site under test ----

/// The site the matrix asks about, with one of each object, and what makes
/// fresh objects for the changes.
struct Fixture {
    app: TestApp,
    site: Site,
    variables: serde_json::Map<String, Value>,
    /// The agreement owner's token, for the requests it submits.
    owner_token: String,
    counter: std::cell::Cell<u32>,
}

impl Fixture {
    fn id(&self, name: &str) -> String {
        self.variables[name].as_str().unwrap().to_string()
    }

    fn unique(&self) -> String {
        self.counter.set(self.counter.get() + 1);
        format!("fresh-{}", self.counter.get())
    }

    async fn admin(&self, query: &str, variables: Value) -> Value {
        self.app.ok(Some(&self.site.admin_token), query, variables).await
    }

    async fn operator(&self, query: &str, variables: Value) -> Value {
        self.app.ok(Some(&self.site.operator_token), query, variables).await
    }

    /// The first update of subscription `document` (over WebSocket), as a
    /// response body; a connection refused for its token answers as
    /// `UNAUTHENTICATED` would over HTTP. An audit subscription's first
    /// update comes with the next event on the site's trail: a refused change
    /// (which writes nothing else) makes one, again until it arrives.
    async fn first_update(&self, token: Option<&str>, document: &str, variables: Value) -> Value {
        let unauthenticated = json!({ "data": null, "errors": [{ "extensions": { "code": "UNAUTHENTICATED" } }] });
        let mut ws = ws::Ws::init(&self.app, token).await;
        match ws.message().await {
            Ok(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
            Err(ws::Closed(4403, _)) => return unauthenticated,
            Err(closed) => panic!("connection closed: {closed:?}"),
        }
        ws.subscribe("1", document, variables).await;
        // The fixture's profile "Case" exists: refused, PROFILE_NAME_TAKEN.
        let refused_change =
            "mutation($s: ID) { createProfile(input: { siteId: $s, name: \"Case\", modules: [] }) { __typename } }";
        loop {
            if let Ok(Ok(message)) = tokio::time::timeout(std::time::Duration::from_millis(200), ws.message()).await {
                assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some("next"), Some("1")), "{message}");
                return message["payload"].clone();
            }
            if document.contains("auditEvents") {
                self.operator(refused_change, json!({ "s": self.site.id })).await;
            }
        }
    }

    async fn self_service(&self, on: bool) {
        let set = "mutation($s: ID!, $on: Boolean) { updateAgreement(siteId: $s, selfService: $on) { __typename } }";
        self.operator(set, json!({ "s": self.site.id, "on": on })).await;
    }

    async fn person(&self) -> String {
        self.site.person(&self.app, "Fresh Person").await
    }

    async fn user(&self) -> String {
        let person = self.person().await;
        let r = self.site.try_login(&self.app, &person, &self.unique(), &self.site.parking_profile, None).await;
        r["user"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
    }

    async fn request(&self, token: &str) -> String {
        let submit = "mutation($s: ID) { submitChangeRequest(siteId: $s, lines: [{module: \"CASE\", total: 100}], message: \"More\") { ... on ChangeRequestSuccess { request { id } } } }";
        let r = self.app.ok(Some(token), submit, json!({ "s": self.site.id })).await;
        r["submitChangeRequest"]["request"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
    }

    /// Makes what `op` needs for `asker`; returns `$fresh`, if any.
    async fn fresh(&self, fresh: Fresh, asker: &Asker) -> Option<String> {
        Some(match fresh {
            Fresh::Nothing | Fresh::Session => return None,
            Fresh::Person => self.person().await,
            Fresh::User => self.user().await,
            Fresh::PersonWithLogin => {
                let user = self.user().await;
                let r = self
                    .admin("query($u: ID!) { node(id: $u) { ... on User { person { id } } } }", json!({ "u": user }))
                    .await;
                r["node"]["person"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
            }
            Fresh::DeletedPerson => {
                let person = self.person().await;
                self.admin("mutation($p: ID!) { deletePerson(id: $p) { __typename } }", json!({ "p": person })).await;
                person
            }
            Fresh::DeletedUser => {
                let user = self.user().await;
                self.admin("mutation($u: ID!) { deleteLogin(id: $u) { __typename } }", json!({ "u": user })).await;
                user
            }
            Fresh::Profile => self.site.profile(&self.app, &self.unique(), &[]).await,
            Fresh::Responsibility => {
                let assign = "mutation($p: ID!) { assignResponsibility(personId: $p, kind: DOCUMENT_FOLDER, name: \"Folder\") { ... on AssignResponsibilitySuccess { responsibility { id } } } }";
                let r = self.admin(assign, json!({ "p": self.id("person") })).await;
                r["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string()
            }
            Fresh::Order => {
                let order = "mutation { createLicenseOrder(lines: [{module: \"CASE\", total: 100}]) { ... on LicenseOrderSuccess { order { id } } } }";
                let r = self.admin(order, json!({})).await;
                r["createLicenseOrder"]["order"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
            }
            Fresh::OwnRequest if asker.expected(&op("", "", MANAGERS)).is_ok() => {
                self.request(asker.token.as_deref().unwrap()).await
            }
            Fresh::OwnRequest | Fresh::Request => self.request(&self.site.admin_token).await,
            Fresh::OwnersRequest => self.request(&self.owner_token).await,
        })
    }
}

/// One object a principal got: the operation asked, the field it came
/// through (`Parent.field`), its type and id.
struct Seen {
    what: String,
    via: String,
    ty: String,
    id: Option<String>,
}

/// Every object (`__typename`, `id`) in `value`, with the field it came
/// through: `(Parent.field, typename, id)`.
fn objects(value: &Value, parent: &str, field: &str, into: &mut Vec<(String, String, Option<String>)>) {
    match value {
        Value::Object(map) => {
            let Some(Value::String(ty)) = map.get("__typename") else { return };
            let id = map.get("id").and_then(Value::as_str).map(str::to_string);
            into.push((format!("{parent}.{field}"), ty.clone(), id));
            for (key, v) in map {
                objects(v, ty, key, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| objects(v, parent, field, into)),
        _ => {}
    }
}

both_backends! {
    async fn every_principal_gets_what_its_role_allows_from_every_operation_and_through_every_field(db: Db) {
        let sdl = Sdl::served();
        let sees: HashMap<&str, Sees> = TYPES.iter().map(|(t, s, _)| (*t, *s)).collect();
        let refusals: BTreeSet<&str> = sdl
            .types
            .iter()
            .filter(|(_, c)| matches!(c, Composite::Object { implements, .. } if implements.iter().any(|i| i == "Refusal")))
            .map(|(n, _)| n.as_str())
            .collect();
        // Whole documents of the matrix are larger than a screen's: lift the
        // size limits, not the depth.
        let app = TestApp::spawn_flags(db, &["--max-selections", "100000", "--max-complexity", "10000000"]).await;

        // The site under test: an administrator, a site user with a
        // responsibility, staff, a deleted person, an owner, an order and a
        // change request; and another site with its own administrator and owner.
        let site = app.site("Matrix", &[("CASE", 100), ("DOCUMENT", 0)], false).await;
        let other = app.site("Elsewhere", &[("CASE", 5)], false).await;
        let case = site.profile(&app, "Case", &["CASE"]).await;
        let user = site.user(&app, "Uma User", &case).await;
        let colleague = site.user(&app, "Ulf User", &case).await;
        let user_token = app.sign_in("uma.user", PASSWORD).await;
        let person = site.person(&app, "Pia Person").await;
        let assign = "mutation($p: ID!) { assignResponsibility(personId: $p, kind: FORM, name: \"Leave form\") { ... on AssignResponsibilitySuccess { responsibility { id } } } }";
        let mine = app.ok(Some(&user_token), "{ viewer { user { person { id } profile { id } } } }", json!({})).await;
        let own_person = mine["viewer"]["user"]["person"]["id"].as_str().unwrap().to_string();
        let own_profile = mine["viewer"]["user"]["profile"]["id"].as_str().unwrap().to_string();
        assert_eq!(own_profile, case);
        let mut responsibilities = Vec::new();
        for p in [&person, &own_person] {
            let r = app.ok(Some(&site.admin_token), assign, json!({ "p": p })).await;
            responsibilities.push(r["assignResponsibility"]["responsibility"]["id"].as_str().unwrap().to_string());
        }
        let deleted = site.person(&app, "Dora Deleted").await;
        app.ok(Some(&site.admin_token), "mutation($p: ID!) { deletePerson(id: $p) { __typename } }", json!({ "p": deleted })).await;
        let make_owner = "mutation($n: String!, $u: String!) { createOwnerAccount(name: $n, username: $u, password: \"correct horse battery\") { ... on CreateOwnerAccountSuccess { owner { id } } } }";
        let set_owner = "mutation($s: ID!, $o: ID) { updateAgreement(siteId: $s, ownerId: $o) { __typename } }";
        let mut owners = Vec::new();
        for (name, username, of) in [("Ola Owner", "ola", &site), ("Otto Owner", "otto", &other)] {
            let r = app.ok(Some(&site.operator_token), make_owner, json!({ "n": name, "u": username })).await;
            let id = r["createOwnerAccount"]["owner"]["id"].as_str().unwrap().to_string();
            app.ok(Some(&site.operator_token), set_owner, json!({ "s": of.id, "o": id })).await;
            owners.push(id);
        }
        let owner_token = app.sign_in("ola", PASSWORD).await;
        let other_owner_token = app.sign_in("otto", PASSWORD).await;
        let module = app.ok(Some(&user_token), "{ modules { id } }", json!({})).await["modules"][0]["id"].clone();
        let mut fixture = Fixture {
            app,
            site,
            variables: serde_json::Map::new(),
            owner_token: owner_token.clone(),
            counter: std::cell::Cell::new(0),
        };
        // A change request while the agreement asks for them, then orders
        // (one checked out by the owner) once it allows self-service.
        let request = fixture.request(&fixture.site.admin_token).await;
        fixture.self_service(true).await;
        let draft = "mutation { createLicenseOrder(lines: [{module: \"CASE\", total: 100}]) { ... on LicenseOrderSuccess { order { id } } } }";
        let order = fixture.admin(draft, json!({})).await["createLicenseOrder"]["order"]["id"].as_str().unwrap().to_string();
        let owners_order = fixture.app.ok(Some(&owner_token), draft, json!({})).await["createLicenseOrder"]["order"]["id"].clone();
        let checkout = "mutation($o: ID!) { checkoutLicenseOrder(id: $o, idempotencyKey: \"k1\") { __typename } }";
        fixture.app.ok(Some(&owner_token), checkout, json!({ "o": owners_order })).await;
        let site_id = fixture.site.id.clone();
        let pool = fixture.admin("{ licensePools { id } }", json!({})).await["licensePools"][0]["id"].clone();
        let event = fixture.admin("{ auditEvents(first: 1) { nodes { id } } }", json!({})).await["auditEvents"]["nodes"][0]["id"].clone();
        fixture.variables = json!({
            "pool": pool, "auditEvent": event,
            "site": site_id, "module": module, "person": person, "ownPerson": own_person, "colleague": colleague,
            "ownUser": user, "profile": case, "ownProfile": own_profile, "parking": fixture.site.parking_profile,
            "responsibility": responsibilities[0], "ownResponsibility": responsibilities[1], "order": order,
            "request": request, "owner": owners[0], "deleted": deleted, "password": PASSWORD,
        })
        .as_object()
        .unwrap()
        .clone();

        let f = &fixture;
        let operator_password = f.app.operator_password.clone();
        let askers = [
            Asker { name: "anonymous", role: Anonymous, elsewhere: false, token: None,
                    username: "uma.user".into(), password: PASSWORD.into(), own: vec![] },
            Asker { name: "operator", role: Operator, elsewhere: false, token: Some(f.site.operator_token.clone()),
                    username: "operator".into(), password: operator_password, own: vec![] },
            Asker { name: "administrator", role: Administrator, elsewhere: false, token: Some(f.site.admin_token.clone()),
                    username: "matrix-admin".into(), password: PASSWORD.into(), own: vec![owners[0].clone()] },
            Asker { name: "site user", role: User, elsewhere: false, token: Some(user_token.clone()),
                    username: "uma.user".into(), password: PASSWORD.into(),
                    own: vec![user.clone(), own_person.clone(), own_profile.clone(), responsibilities[1].clone()] },
            Asker { name: "agreement owner", role: Owner, elsewhere: false, token: Some(owner_token.clone()),
                    username: "ola".into(), password: PASSWORD.into(), own: vec![owners[0].clone()] },
            Asker { name: "another site's administrator", role: Administrator, elsewhere: true,
                    token: Some(other.admin_token.clone()), username: "elsewhere-admin".into(), password: PASSWORD.into(),
                    own: vec![owners[1].clone()] },
            Asker { name: "another site's agreement owner", role: Owner, elsewhere: true,
                    token: Some(other_owner_token.clone()), username: "otto".into(), password: PASSWORD.into(),
                    own: vec![owners[1].clone()] },
        ];

        let index = |name: &str| askers.iter().position(|a| a.name == name).unwrap();
        let (administrator, site_user) = (index("administrator"), index("site user"));
        // Every object each principal got, with the operation and field it came through.
        let mut seen: Vec<Vec<Seen>> = askers.iter().map(|_| Vec::new()).collect();
        let mut failures = Vec::new();
        for op in OPERATIONS {
            let document = sdl.document(op);
            let (root, field) = op.field.split_once('.').unwrap();
            for (a, asker) in askers.iter().enumerate() {
                if let Some(on) = op.self_service {
                    f.self_service(on).await;
                }
                let mut variables = f.variables.clone();
                variables.insert("name".into(), json!(f.unique()));
                variables.insert("username".into(), json!(asker.username));
                variables.insert("password".into(), json!(asker.password));
                if let Some(fresh) = f.fresh(op.fresh, asker).await {
                    variables.insert("fresh".into(), json!(fresh));
                }
                let token = match (op.fresh, asker.token.is_some()) {
                    (Fresh::Session, true) => Some(f.app.sign_in(&asker.username, &asker.password).await),
                    _ => asker.token.clone(),
                };
                let body = match root {
                    "Subscription" => f.first_update(token.as_deref(), &document, Value::Object(variables)).await,
                    _ => f.app.gql(token.as_deref(), &document, Value::Object(variables)).await,
                };
                let answer = &body["data"][field];
                let what = format!("{} {}{} asked by {}", op.field, field, op.args, asker.name);
                match asker.expected(op) {
                    Ok(()) => {
                        let refused = answer["__typename"].as_str().filter(|t| refusals.contains(t));
                        if body.get("errors").is_some() || answer.is_null() || *answer == json!(false) || refused.is_some() {
                            failures.push(format!("{what}: expected an answer, got {body}"));
                        }
                    }
                    Err(code) => {
                        let got = body["errors"][0]["extensions"]["code"].as_str();
                        if got != Some(code) || !answer.is_null() {
                            failures.push(format!("{what}: expected {code}, got {body}"));
                        }
                    }
                }
                let mut found = Vec::new();
                objects(answer, root, field, &mut found);
                // Signing in makes the anonymous caller the user whose password it gave.
                let a = if op.field == "Mutation.signIn" && asker.role == Anonymous { site_user } else { a };
                seen[a].extend(found.into_iter().map(|(via, ty, id)| Seen { what: what.clone(), via, ty, id }));
            }
        }

        // Everything of the site under test that its administrator saw.
        let modules: BTreeSet<&str> = seen[administrator].iter().filter(|o| o.ty == "Module").filter_map(|o| o.id.as_deref()).collect();
        let this_site: BTreeSet<&str> =
            seen[administrator].iter().filter_map(|o| o.id.as_deref()).filter(|id| !modules.contains(id)).collect();
        let mut reached = BTreeSet::new();
        for (asker, objects) in askers.iter().zip(&seen) {
            let mut types_seen = BTreeSet::new();
            for Seen { what, via, ty, id } in objects {
                reached.insert(via.clone());
                types_seen.insert(ty.as_str());
                let Some(&decision) = sees.get(ty.as_str()) else { continue };
                if !asker.may_see(decision, id.as_deref()) {
                    failures.push(format!("{} saw a {ty} {id:?} through {via} ({what})", asker.name));
                }
                if asker.elsewhere && id.as_deref().is_some_and(|id| this_site.contains(id)) {
                    failures.push(format!("{} saw the other site's {ty} {id:?} through {via} ({what})", asker.name));
                }
            }
            // What a principal may see, it gets (its own records at least).
            if !asker.elsewhere {
                for (ty, decision, _) in TYPES {
                    if *decision != Sees::Carried && asker.may_see(*decision, asker.own.first().map(String::as_str))
                        && !types_seen.contains(ty)
                    {
                        failures.push(format!("{} may see a {ty} and was never given one", asker.name));
                    }
                }
            }
        }
        // Every field that returns an object was followed to one, so the
        // checks above saw what it returns.
        let unreached: BTreeSet<String> = sdl.fields_returning_objects().difference(&reached).cloned().collect();
        let expected: BTreeSet<String> = ONLY_IN_REFUSALS.iter().map(|s| s.to_string()).collect();
        if unreached != expected {
            failures.push(format!(
                "fields returning an object that no operation reached: {:?}; ONLY_IN_REFUSALS lists: {:?}",
                unreached, expected
            ));
        }
        assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));

        // The owner still sees who ordered, by name, without reaching the person.
        let orders = f.app.ok(Some(&owner_token), "{ licenseOrders { nodes { createdBy { name person { id } } } } }", json!({})).await;
        let by_admin = orders["licenseOrders"]["nodes"].as_array().unwrap().iter().find(|o| o["createdBy"]["name"] == "Matrix Admin");
        assert_eq!(by_admin.unwrap()["createdBy"], json!({ "name": "Matrix Admin", "person": null }));
        // A site user reads the site and its agreement, but not who owns it.
        let agreement = f.app.ok(Some(&user_token), "{ site { agreement { name owner { username } } } }", json!({})).await;
        assert_eq!(agreement["site"]["agreement"], json!({ "name": "Matrix agreement", "owner": null }));
    }
}
