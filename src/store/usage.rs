//! What `/metrics` reports about the database: the connection pool (no
//! statement) and license usage per module, or per site and module (one
//! statement each, run when metrics are scraped, never per request).

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::SiteId;

/// The connection pool of this process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolConnections {
    /// Connections open (in use or idle).
    pub size: u32,
    /// Open connections nobody holds.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
}

/// Licenses of one module: bought (pool totals) and in use, summed over all
/// sites (`site` is `None`) or of one site.
#[derive(Debug, Clone)]
pub struct LicenseUsage {
    pub site: Option<SiteId>,
    /// The module's code.
    pub module: String,
    pub total: i64,
    pub used: i64,
}

/// Every module, with its pools summed (zero when no site has one). `SUM` of
/// a `BIGINT` is a `NUMERIC` on PostgreSQL, hence the casts.
const BY_MODULE: &str = "SELECT m.code, CAST(COALESCE(SUM(lp.total), 0) AS BIGINT) AS total, \
     CAST(COALESCE(SUM(lp.used), 0) AS BIGINT) AS used FROM modules m \
     LEFT JOIN license_pools lp ON lp.module_id = m.id GROUP BY m.id, m.code ORDER BY m.id";

const BY_SITE: &str = "SELECT lp.site_id, m.code, lp.total, lp.used FROM license_pools lp \
     JOIN modules m ON m.id = lp.module_id ORDER BY lp.site_id, m.id";

impl Store {
    /// The pool's connections now; reads no table.
    pub fn pool_connections(&self) -> PoolConnections {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolConnections { size: self.pool.size(), idle, max: self.pool.options().get_max_connections() }
    }

    /// License usage by module, and also by site and module when `per_site`.
    pub async fn license_usage(&self, per_site: bool) -> StoreResult<Vec<LicenseUsage>> {
        let mut usage = Vec::new();
        for row in self.fetch_all(sqlx::query(BY_MODULE)).await? {
            usage.push(LicenseUsage {
                site: None,
                module: row.try_get("code")?,
                total: row.try_get("total")?,
                used: row.try_get("used")?,
            });
        }
        if per_site {
            for row in self.fetch_all(sqlx::query(BY_SITE)).await? {
                usage.push(LicenseUsage {
                    site: Some(SiteId(row.try_get("site_id")?)),
                    module: row.try_get("code")?,
                    total: row.try_get("total")?,
                    used: row.try_get("used")?,
                });
            }
        }
        Ok(usage)
    }
}
