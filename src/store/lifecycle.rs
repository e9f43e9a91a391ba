//! Storage of the license lifecycle: agreement owners, license orders,
//! change requests, responsibilities, restoring, and the audit trail.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::paging::{List, Rows, Slice};
use super::reads::{LOGIN_RETURNING, login_from};
use super::sql::Sql;
use super::{Store, StoreResult, Tx};
use crate::domain::*;

const ORDER_COLUMNS: &str = "id, site_id, status, created_by, created_by_person, created_at, checked_out_by, \
     checked_out_person, checked_out_at, idempotency_key";
const REQUEST_COLUMNS: &str = "id, site_id, status, message, requested_by, requested_by_kind, requested_by_id, \
     requested_person, created_at, decided_by, decided_at, reason";
const AUDIT_COLUMNS: &str = "id, site_id, at, actor, actor_kind, actor_person_id, action, target, target_person_id, \
     outcome, rule, detail, pools, code, message";

/// A site's license orders, newest first.
const ORDERS: List = List { columns: ORDER_COLUMNS, from: " FROM license_orders", order: &["id"], descending: true };
/// Change requests, newest first.
const REQUESTS: List =
    List { columns: REQUEST_COLUMNS, from: " FROM change_requests", order: &["id"], descending: true };
/// A site's audit trail, newest first.
const AUDIT: List = List { columns: AUDIT_COLUMNS, from: " FROM audit_events", order: &["id"], descending: true };

fn actor_ref(row: &AnyRow, name: &str, person: &str) -> StoreResult<Option<ActorRef>> {
    let name: Option<String> = row.try_get(name)?;
    let person: Option<i64> = row.try_get(person)?;
    Ok(name.map(|name| ActorRef { name, person: person.map(PersonId) }))
}

fn order_from(row: &AnyRow) -> StoreResult<LicenseOrder> {
    let status: String = row.try_get("status")?;
    Ok(LicenseOrder {
        id: OrderId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Discarded),
        created_by: actor_ref(row, "created_by", "created_by_person")?
            .unwrap_or(ActorRef { name: String::new(), person: None }),
        created_at: row.try_get("created_at")?,
        checked_out_by: actor_ref(row, "checked_out_by", "checked_out_person")?,
        checked_out_at: row.try_get("checked_out_at")?,
        idempotency_key: row.try_get("idempotency_key")?,
    })
}

fn request_from(row: &AnyRow) -> StoreResult<ChangeRequest> {
    let status: String = row.try_get("status")?;
    Ok(ChangeRequest {
        id: RequestId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        status: RequestStatus::parse(&status).unwrap_or(RequestStatus::Cancelled),
        message: row.try_get("message")?,
        requested_by: actor_ref(row, "requested_by", "requested_person")?
            .unwrap_or(ActorRef { name: String::new(), person: None }),
        requested_by_kind: row.try_get("requested_by_kind")?,
        requested_by_id: row.try_get("requested_by_id")?,
        created_at: row.try_get("created_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        reason: row.try_get("reason")?,
    })
}

fn line_from(row: &AnyRow) -> StoreResult<TotalLine> {
    Ok(TotalLine {
        module_id: ModuleId(row.try_get("module_id")?),
        new_total: row.try_get("new_total")?,
        total_before: row.try_get("total_before")?,
        total_after: row.try_get("total_after")?,
    })
}

fn responsibility_from(row: &AnyRow) -> StoreResult<Responsibility> {
    Ok(Responsibility {
        id: ResponsibilityId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        person_id: PersonId(row.try_get("person_id")?),
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn audit_from(row: &AnyRow) -> StoreResult<AuditRecord> {
    let pools: String = row.try_get("pools")?;
    let pools: Vec<[i64; 5]> = serde_json::from_str(&pools).unwrap_or_default();
    let (code, message) =
        match (row.try_get::<Option<String>, _>("code")?, row.try_get::<Option<String>, _>("message")?) {
            (code, Some(message)) if code.is_some() || !message.is_empty() => (code, message),
            // Written by an instance of the previous release (during an upgrade),
            // after migration 0008 split the older rows: split it likewise.
            _ => split_detail(row.try_get("detail")?),
        };
    Ok(AuditRecord {
        id: row.try_get("id")?,
        site_id: row.try_get::<Option<i64>, _>("site_id")?.map(SiteId),
        at: row.try_get("at")?,
        actor: actor_ref(row, "actor", "actor_person_id")?.unwrap_or(ActorRef { name: String::new(), person: None }),
        actor_kind: row.try_get("actor_kind")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        target_person: row.try_get::<Option<i64>, _>("target_person_id")?.map(PersonId),
        outcome: row.try_get("outcome")?,
        rule: row.try_get("rule")?,
        code,
        message,
        pools: pools
            .into_iter()
            .map(|[m, ub, ua, tb, ta]| PoolChange {
                module_id: ModuleId(m),
                used_before: ub,
                used_after: ua,
                total_before: tb,
                total_after: ta,
            })
            .collect(),
    })
}

/// An event's `detail` as first stored, `CODE: message` for a refusal,
/// split into code and message (migration 0008 splits the rows it found).
fn split_detail(detail: String) -> (Option<String>, String) {
    match detail.split_once(": ") {
        Some((code, message)) if !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            (Some(code.to_string()), message.to_string())
        }
        _ => (None, detail),
    }
}

/// Filters of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actor name contains (case-insensitive).
    pub actor_contains: Option<String>,
    /// Exact action, e.g. `createLogin`.
    pub action: Option<String>,
    /// Exact target, e.g. `person:12`.
    pub target: Option<String>,
    /// With `target`: also events whose person is this one (a person's login, say).
    pub about_person: Option<PersonId>,
    /// Only refused changes (`true`) or only accepted ones (`false`).
    pub refused: Option<bool>,
    /// From this time (seconds, inclusive).
    pub from: Option<i64>,
    /// Until this time (seconds, exclusive).
    pub until: Option<i64>,
}

/// The condition of a list of orders or requests with `status`, when given.
fn status_condition(status: Option<&'static str>) -> impl Fn(&mut Sql) + Sync {
    move |q| {
        if let Some(status) = status {
            q.push(" AND status = ").bind(status.to_string());
        }
    }
}

/// The conditions of the audit trail's `filter`.
fn audit_conditions(filter: &AuditFilter) -> impl Fn(&mut Sql) + Sync + '_ {
    move |q| {
        if let Some(text) = &filter.actor_contains {
            q.push(" AND actor_folded LIKE ").bind(super::reads::like_pattern(text)).push(" ESCAPE '\\'");
        }
        if let Some(action) = &filter.action {
            q.push(" AND action = ").bind(action.clone());
        }
        match (&filter.target, filter.about_person) {
            (Some(target), Some(person)) => {
                q.push(" AND (target = ").bind(target.clone()).push(" OR target_person_id = ").bind(person.0).push(")");
            }
            (Some(target), None) => {
                q.push(" AND target = ").bind(target.clone());
            }
            (None, _) => {}
        }
        // Literal, not bound: so PostgreSQL's plan, generic or not, can use
        // the partial index of refusals (migration 0008).
        match filter.refused {
            Some(true) => {
                q.push(" AND outcome = 'REFUSED'");
            }
            Some(false) => {
                q.push(" AND outcome = 'ACCEPTED'");
            }
            None => {}
        }
        if let Some(from) = filter.from {
            q.push(" AND at >= ").bind(from);
        }
        if let Some(until) = filter.until {
            q.push(" AND at < ").bind(until);
        }
    }
}

impl Store {
    pub async fn orders_by_ids(&self, ids: &[OrderId]) -> StoreResult<Vec<LicenseOrder>> {
        let mut q = Sql::new("SELECT ");
        q.push(ORDER_COLUMNS).push(" FROM license_orders WHERE id IN ").bind_list(ids.iter().map(|i| i.0));
        let rows = self.fetch_all(q.build()).await?;
        rows.iter().map(order_from).collect()
    }

    /// A page of a site's orders, newest first.
    pub async fn orders_page(
        &self,
        site: SiteId,
        status: Option<OrderStatus>,
        slice: &Slice<i64>,
    ) -> StoreResult<Rows<LicenseOrder>> {
        self.page(&ORDERS, Some(("site_id", site.0)), &status_condition(status.map(|s| s.as_str())), slice, order_from)
            .await
    }

    /// How many orders a site has (with `status`, when given).
    pub async fn orders_count(&self, site: SiteId, status: Option<OrderStatus>) -> StoreResult<i64> {
        self.count(&ORDERS, Some(("site_id", site.0)), &status_condition(status.map(|s| s.as_str())), None).await
    }

    pub async fn order_lines(&self, ids: &[OrderId]) -> StoreResult<HashMap<OrderId, Vec<TotalLine>>> {
        let sql = "SELECT order_id AS owner_id, module_id, new_total, total_before, total_after \
                   FROM license_order_lines WHERE order_id IN ";
        let lines = self.lines(sql, ids.iter().map(|i| i.0)).await?;
        Ok(ids.iter().map(|id| (*id, lines.get(&id.0).cloned().unwrap_or_default())).collect())
    }

    /// Lines of orders or requests (the same shape), grouped by their owner's id.
    async fn lines(
        &self,
        select: &'static str,
        ids: impl IntoIterator<Item = i64>,
    ) -> StoreResult<HashMap<i64, Vec<TotalLine>>> {
        let mut q = Sql::new(select);
        q.bind_list(ids).push(" ORDER BY owner_id, module_id");
        let mut map: HashMap<i64, Vec<TotalLine>> = HashMap::new();
        for row in &self.fetch_all(q.build()).await? {
            map.entry(row.try_get("owner_id")?).or_default().push(line_from(row)?);
        }
        Ok(map)
    }

    pub async fn requests_by_ids(&self, ids: &[RequestId]) -> StoreResult<Vec<ChangeRequest>> {
        let mut q = Sql::new("SELECT ");
        q.push(REQUEST_COLUMNS).push(" FROM change_requests WHERE id IN ").bind_list(ids.iter().map(|i| i.0));
        let rows = self.fetch_all(q.build()).await?;
        rows.iter().map(request_from).collect()
    }

    /// A page of change requests, newest first; of one site, or of all sites (operators).
    pub async fn requests_page(
        &self,
        site: Option<SiteId>,
        status: Option<RequestStatus>,
        slice: &Slice<i64>,
    ) -> StoreResult<Rows<ChangeRequest>> {
        let scope = site.map(|s| ("site_id", s.0));
        self.page(&REQUESTS, scope, &status_condition(status.map(|s| s.as_str())), slice, request_from).await
    }

    /// How many change requests there are (of one site, with `status`, when given).
    pub async fn requests_count(&self, site: Option<SiteId>, status: Option<RequestStatus>) -> StoreResult<i64> {
        let scope = site.map(|s| ("site_id", s.0));
        self.count(&REQUESTS, scope, &status_condition(status.map(|s| s.as_str())), None).await
    }

    pub async fn request_lines(&self, ids: &[RequestId]) -> StoreResult<HashMap<RequestId, Vec<TotalLine>>> {
        let sql = "SELECT request_id AS owner_id, module_id, new_total, total_before, total_after \
                   FROM change_request_lines WHERE request_id IN ";
        let lines = self.lines(sql, ids.iter().map(|i| i.0)).await?;
        Ok(ids.iter().map(|id| (*id, lines.get(&id.0).cloned().unwrap_or_default())).collect())
    }

    pub async fn responsibilities_of(
        &self,
        people: &[PersonId],
    ) -> StoreResult<HashMap<PersonId, Vec<Responsibility>>> {
        let mut q =
            Sql::new("SELECT id, site_id, person_id, kind, name, created_at FROM responsibilities WHERE person_id IN ");
        q.bind_list(people.iter().map(|p| p.0)).push(" ORDER BY person_id, id");
        let rows = self.fetch_all(q.build()).await?;
        let mut map: HashMap<PersonId, Vec<Responsibility>> = people.iter().map(|p| (*p, Vec::new())).collect();
        for row in &rows {
            let r = responsibility_from(row)?;
            map.entry(r.person_id).or_default().push(r);
        }
        Ok(map)
    }

    /// A page of a site's audit events, newest first.
    pub async fn audit_page(
        &self,
        site: SiteId,
        filter: &AuditFilter,
        slice: &Slice<i64>,
    ) -> StoreResult<Rows<AuditRecord>> {
        self.page(&AUDIT, Some(("site_id", site.0)), &audit_conditions(filter), slice, audit_from).await
    }

    /// How many of a site's audit events pass `filter`, counting at most
    /// `cap`: the trail grows without end, the count's cost does not.
    pub async fn audit_count(&self, site: SiteId, filter: &AuditFilter, cap: i64) -> StoreResult<i64> {
        self.count(&AUDIT, Some(("site_id", site.0)), &audit_conditions(filter), Some(cap)).await
    }

    /// One audit event by its id.
    pub async fn audit_event(&self, id: i64) -> StoreResult<Option<AuditRecord>> {
        let mut q = Sql::new("SELECT ");
        q.push(AUDIT_COLUMNS).push(" FROM audit_events WHERE id = ").bind(id);
        self.fetch_optional(q.build()).await?.as_ref().map(audit_from).transpose()
    }

    /// The audit events of `ids` there are, by id.
    pub async fn audit_events_by_ids(&self, ids: &[i64]) -> StoreResult<Vec<AuditRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT ");
        q.push(AUDIT_COLUMNS)
            .push(" FROM audit_events WHERE id IN ")
            .bind_list(ids.iter().copied())
            .push(" ORDER BY id");
        self.fetch_all(q.build()).await?.iter().map(audit_from).collect()
    }

    /// The id and site of an order / request, for authorization.
    pub async fn site_of_order(&self, id: OrderId) -> StoreResult<Option<SiteId>> {
        let row =
            self.fetch_optional(sqlx::query("SELECT site_id FROM license_orders WHERE id = $1").bind(id.0)).await?;
        row.map(|r| r.try_get("site_id").map(SiteId)).transpose()
    }

    pub async fn site_of_request(&self, id: RequestId) -> StoreResult<Option<SiteId>> {
        let row =
            self.fetch_optional(sqlx::query("SELECT site_id FROM change_requests WHERE id = $1").bind(id.0)).await?;
        row.map(|r| r.try_get("site_id").map(SiteId)).transpose()
    }

    pub async fn site_of_responsibility(&self, id: ResponsibilityId) -> StoreResult<Option<SiteId>> {
        let row =
            self.fetch_optional(sqlx::query("SELECT site_id FROM responsibilities WHERE id = $1").bind(id.0)).await?;
        row.map(|r| r.try_get("site_id").map(SiteId)).transpose()
    }

    pub async fn responsibility_holder(&self, id: ResponsibilityId) -> StoreResult<Option<PersonId>> {
        let row =
            self.fetch_optional(sqlx::query("SELECT person_id FROM responsibilities WHERE id = $1").bind(id.0)).await?;
        row.map(|r| r.try_get("person_id").map(PersonId)).transpose()
    }

    pub async fn owner_by_id(&self, id: OwnerId) -> StoreResult<Option<Owner>> {
        let row = self
            .fetch_optional(sqlx::query("SELECT id, name, username FROM owner_accounts WHERE id = $1").bind(id.0))
            .await?;
        row.map(|r| {
            Ok(Owner { id: OwnerId(r.try_get("id")?), name: r.try_get("name")?, username: r.try_get("username")? })
        })
        .transpose()
    }

    /// A login by id, live or deleted.
    pub async fn last_login_by_id(&self, id: LoginId) -> StoreResult<Option<Login>> {
        let mut q = Sql::new("SELECT ");
        q.push(LOGIN_RETURNING).push(" FROM logins WHERE id = ").bind(id.0);
        let row = self.fetch_optional(q.build()).await?;
        row.as_ref().map(login_from).transpose()
    }
}

impl Tx {
    pub async fn insert_order(&mut self, site: SiteId, by: &Actor, now: i64) -> StoreResult<OrderId> {
        let sql = "INSERT INTO license_orders (site_id, status, created_by, created_by_person, created_at) \
                   VALUES ($1, 'DRAFT', $2, $3, $4) RETURNING id";
        let row = self
            .fetch_all(sqlx::query(sql).bind(site.0).bind(by.name.clone()).bind(by.person.map(|p| p.0)).bind(now))
            .await?;
        Ok(OrderId(row[0].try_get("id")?))
    }

    /// Replaces an order's lines.
    pub async fn set_order_lines(&mut self, order: OrderId, lines: &[(ModuleId, LicenseTotal)]) -> StoreResult<()> {
        self.execute(sqlx::query("DELETE FROM license_order_lines WHERE order_id = $1").bind(order.0)).await?;
        for (module, total) in lines {
            let sql = "INSERT INTO license_order_lines (order_id, module_id, new_total) VALUES ($1, $2, $3)";
            self.execute(sqlx::query(sql).bind(order.0).bind(module.0).bind(total.get())).await?;
        }
        Ok(())
    }

    /// Locks an order of `site` and returns it with its lines.
    pub async fn lock_order(
        &mut self,
        site: SiteId,
        id: OrderId,
    ) -> StoreResult<Option<(LicenseOrder, Vec<TotalLine>)>> {
        let mut q = Sql::new("UPDATE license_orders SET status = status WHERE id = ");
        q.bind(id.0).push(" AND site_id = ").bind(site.0).push(" RETURNING ").push(ORDER_COLUMNS);
        let Some(row) = self.fetch_optional(q.build()).await? else {
            return Ok(None);
        };
        let order = order_from(&row)?;
        let sql = "SELECT module_id, new_total, total_before, total_after FROM license_order_lines \
                   WHERE order_id = $1 ORDER BY module_id";
        let lines =
            self.fetch_all(sqlx::query(sql).bind(id.0)).await?.iter().map(line_from).collect::<StoreResult<_>>()?;
        Ok(Some((order, lines)))
    }

    /// The order that used `key` on this site, if any.
    pub async fn order_with_key(&mut self, site: SiteId, key: &str) -> StoreResult<Option<OrderId>> {
        let sql = "SELECT id FROM license_orders WHERE site_id = $1 AND idempotency_key = $2";
        let row = self.fetch_optional(sqlx::query(sql).bind(site.0).bind(key.to_string())).await?;
        row.map(|r| r.try_get("id").map(OrderId)).transpose()
    }

    pub async fn discard_order(&mut self, id: OrderId) -> StoreResult<()> {
        self.execute(sqlx::query("UPDATE license_orders SET status = 'DISCARDED' WHERE id = $1").bind(id.0)).await?;
        Ok(())
    }

    /// Marks an order checked out with its key and each line's before/after totals.
    pub async fn complete_order(
        &mut self,
        id: OrderId,
        by: &Actor,
        key: &str,
        changes: &[PoolChange],
        now: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE license_orders SET status = 'CHECKED_OUT', checked_out_by = $1, checked_out_person = $2, \
                   checked_out_at = $3, idempotency_key = $4 WHERE id = $5";
        self.execute(
            sqlx::query(sql)
                .bind(by.name.clone())
                .bind(by.person.map(|p| p.0))
                .bind(now)
                .bind(key.to_string())
                .bind(id.0),
        )
        .await?;
        for c in changes {
            let sql = "UPDATE license_order_lines SET total_before = $1, total_after = $2 WHERE order_id = $3 AND module_id = $4";
            self.execute(sqlx::query(sql).bind(c.total_before).bind(c.total_after).bind(id.0).bind(c.module_id.0))
                .await?;
        }
        Ok(())
    }

    pub async fn insert_request(
        &mut self,
        site: SiteId,
        message: &str,
        by: &Actor,
        now: i64,
    ) -> StoreResult<RequestId> {
        let sql = "INSERT INTO change_requests (site_id, status, message, requested_by, requested_by_kind, requested_by_id, \
                   requested_person, created_at) VALUES ($1, 'PENDING', $2, $3, $4, $5, $6, $7) RETURNING id";
        let row = self
            .fetch_all(
                sqlx::query(sql)
                    .bind(site.0)
                    .bind(message.to_string())
                    .bind(by.name.clone())
                    .bind(by.kind.to_string())
                    .bind(by.id)
                    .bind(by.person.map(|p| p.0))
                    .bind(now),
            )
            .await?;
        Ok(RequestId(row[0].try_get("id")?))
    }

    pub async fn insert_request_lines(&mut self, id: RequestId, lines: &[(ModuleId, LicenseTotal)]) -> StoreResult<()> {
        for (module, total) in lines {
            let sql = "INSERT INTO change_request_lines (request_id, module_id, new_total) VALUES ($1, $2, $3)";
            self.execute(sqlx::query(sql).bind(id.0).bind(module.0).bind(total.get())).await?;
        }
        Ok(())
    }

    /// Locks a change request and returns it with its lines.
    pub async fn lock_request(&mut self, id: RequestId) -> StoreResult<Option<(ChangeRequest, Vec<TotalLine>)>> {
        let mut q = Sql::new("UPDATE change_requests SET status = status WHERE id = ");
        q.bind(id.0).push(" RETURNING ").push(REQUEST_COLUMNS);
        let Some(row) = self.fetch_optional(q.build()).await? else {
            return Ok(None);
        };
        let request = request_from(&row)?;
        let sql = "SELECT module_id, new_total, total_before, total_after FROM change_request_lines \
                   WHERE request_id = $1 ORDER BY module_id";
        let lines =
            self.fetch_all(sqlx::query(sql).bind(id.0)).await?.iter().map(line_from).collect::<StoreResult<_>>()?;
        Ok(Some((request, lines)))
    }

    /// Records the decision on a change request (and applied totals when approved).
    pub async fn decide_request(
        &mut self,
        id: RequestId,
        status: RequestStatus,
        by: &Actor,
        reason: Option<&str>,
        changes: &[PoolChange],
        now: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE change_requests SET status = $1, decided_by = $2, decided_at = $3, reason = $4 WHERE id = $5";
        self.execute(
            sqlx::query(sql)
                .bind(status.as_str().to_string())
                .bind(by.name.clone())
                .bind(now)
                .bind(reason.map(str::to_string))
                .bind(id.0),
        )
        .await?;
        for c in changes {
            let sql = "UPDATE change_request_lines SET total_before = $1, total_after = $2 WHERE request_id = $3 AND module_id = $4";
            self.execute(sqlx::query(sql).bind(c.total_before).bind(c.total_after).bind(id.0).bind(c.module_id.0))
                .await?;
        }
        Ok(())
    }

    pub async fn insert_owner(
        &mut self,
        name: &PersonName,
        username: &Username,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Option<OwnerId>> {
        if !self.reserve_username(&username.key(), "OWNER").await? {
            return Ok(None);
        }
        let sql = "INSERT INTO owner_accounts (name, username, username_key, password_hash, created_at) \
                   VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let row = self
            .fetch_all(
                sqlx::query(sql)
                    .bind(name.as_str().to_string())
                    .bind(username.as_str().to_string())
                    .bind(username.key())
                    .bind(password_hash.to_string())
                    .bind(now),
            )
            .await?;
        Ok(Some(OwnerId(row[0].try_get("id")?)))
    }

    pub async fn owner_exists(&mut self, id: OwnerId) -> StoreResult<bool> {
        Ok(self.fetch_optional(sqlx::query("SELECT id FROM owner_accounts WHERE id = $1").bind(id.0)).await?.is_some())
    }

    /// Sets an agreement's self-service flag and/or owner; false when the site has none.
    pub async fn update_agreement(
        &mut self,
        site: SiteId,
        self_service: Option<bool>,
        owner: Option<Option<OwnerId>>,
    ) -> StoreResult<bool> {
        let row = self
            .fetch_optional(
                sqlx::query("UPDATE agreements SET name = name WHERE site_id = $1 RETURNING id").bind(site.0),
            )
            .await?;
        if row.is_none() {
            return Ok(false);
        }
        if let Some(flag) = self_service {
            self.execute(
                sqlx::query("UPDATE agreements SET self_service = $1 WHERE site_id = $2")
                    .bind(flag as i64)
                    .bind(site.0),
            )
            .await?;
        }
        if let Some(owner) = owner {
            self.execute(
                sqlx::query("UPDATE agreements SET owner_id = $1 WHERE site_id = $2")
                    .bind(owner.map(|o| o.0))
                    .bind(site.0),
            )
            .await?;
        }
        Ok(true)
    }

    pub async fn insert_responsibility(
        &mut self,
        site: SiteId,
        person: PersonId,
        kind: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<ResponsibilityId> {
        let sql = "INSERT INTO responsibilities (site_id, person_id, kind, name, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let row = self
            .fetch_all(
                sqlx::query(sql).bind(site.0).bind(person.0).bind(kind.to_string()).bind(name.to_string()).bind(now),
            )
            .await?;
        Ok(ResponsibilityId(row[0].try_get("id")?))
    }

    pub async fn delete_responsibility(&mut self, site: SiteId, id: ResponsibilityId) -> StoreResult<bool> {
        let sql = "DELETE FROM responsibilities WHERE id = $1 AND site_id = $2";
        Ok(self.execute(sqlx::query(sql).bind(id.0).bind(site.0)).await? == 1)
    }

    pub async fn responsibilities_of_person(&mut self, person: PersonId) -> StoreResult<Vec<Responsibility>> {
        let sql = "SELECT id, site_id, person_id, kind, name, created_at FROM responsibilities WHERE person_id = $1 ORDER BY id";
        self.fetch_all(sqlx::query(sql).bind(person.0)).await?.iter().map(responsibility_from).collect()
    }

    /// Hands every responsibility of `from` to `to` (same site: the foreign key says so).
    pub async fn hand_over_responsibilities(&mut self, from: PersonId, to: PersonId) -> StoreResult<u64> {
        let sql = "UPDATE responsibilities SET person_id = $1 WHERE person_id = $2";
        self.execute(sqlx::query(sql).bind(to.0).bind(from.0)).await
    }

    pub async fn mark_person_restored(&mut self, id: PersonId) -> StoreResult<()> {
        self.execute(sqlx::query("UPDATE people SET deleted_at = NULL WHERE id = $1").bind(id.0)).await?;
        Ok(())
    }

    /// The login deleted together with the person, locked, if any.
    pub async fn lock_login_deleted_with(&mut self, site: SiteId, person: PersonId) -> StoreResult<Option<Login>> {
        let mut q = Sql::new("SELECT ");
        q.push(LOGIN_RETURNING)
            .push(" FROM logins WHERE id = (SELECT MAX(id) FROM logins WHERE person_id = ")
            .bind(person.0)
            .push(" AND deleted_with_person = 1 AND deleted_at IS NOT NULL) AND site_id = ")
            .bind(site.0)
            .push(self.row_lock());
        let row = self.fetch_optional(q.build()).await?;
        row.as_ref().map(login_from).transpose()
    }

    /// A deleted login of `site`, locked.
    pub async fn lock_deleted_login(&mut self, site: SiteId, id: LoginId) -> StoreResult<Option<Login>> {
        let mut q = Sql::new("SELECT ");
        q.push(LOGIN_RETURNING)
            .push(" FROM logins WHERE id = ")
            .bind(id.0)
            .push(" AND site_id = ")
            .bind(site.0)
            .push(" AND deleted_at IS NOT NULL")
            .push(self.row_lock());
        let row = self.fetch_optional(q.build()).await?;
        row.as_ref().map(login_from).transpose()
    }

    pub async fn mark_login_restored(&mut self, id: LoginId) -> StoreResult<()> {
        let sql = "UPDATE logins SET deleted_at = NULL, occupying = 1, deleted_with_person = 0 WHERE id = $1";
        self.execute(sqlx::query(sql).bind(id.0)).await?;
        Ok(())
    }
}
