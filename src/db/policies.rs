//! Policies: their TOML text, stored by name.

use sqlx::Row as _;

use super::events::{Actor, Event, EventKind, insert_event};
use super::{Database, DbError, PolicyRow, Result};
use crate::policy::Policy;

impl Database {
    /// Imports a policy (its TOML text), replacing one of the same name.
    pub async fn import_policy(&self, name: &str, source: &str, now: i64) -> Result<i64> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO policies (name, source, imported_at) VALUES ($1, $2, $3)
             ON CONFLICT(name) DO UPDATE SET source = excluded.source, imported_at = excluded.imported_at
             RETURNING id",
        )
        .bind(name)
        .bind(source)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        let zones: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM zones WHERE policy_id = $1").bind(id).fetch_all(&mut *tx).await?;
        let imported =
            Event::note(now, Actor::Operator, EventKind::PolicyChange, None, format!("policy {name} imported"));
        insert_event(&mut tx, None, &imported).await?;
        for (zone_id, zone) in zones {
            let why = format!("policy {name} replaced: zone {zone} follows it from the next run");
            insert_event(&mut tx, Some(zone_id), &Event { why, ..imported.clone() }).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A policy by name.
    pub async fn policy(&self, name: &str) -> Result<PolicyRow> {
        sqlx::query_as::<_, PolicyRow>("SELECT id, name, source, imported_at FROM policies WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DbError::NotFound { what: "policy", name: name.to_owned() })
    }

    /// A policy by id, parsed: the one place that reads stored policy text.
    pub async fn parsed_policy(&self, id: i64) -> Result<Policy> {
        let row = sqlx::query_as::<_, PolicyRow>("SELECT id, name, source, imported_at FROM policies WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DbError::NotFound { what: "policy", name: format!("#{id}") })?;
        row.parse()
    }
}
