//! Inboxes (a tenant's channels) and contacts. Inbox settings and secrets are JSON text; the
//! secrets column is sealed with the store's keyring (`crate::secrets`) on every write and opened
//! on every read. The secrets travel inside `Inbox` for the server's use, and the core type keeps
//! them out of any serialized output.

use super::not_found;
use super::rows::{self, CONTACT_COLS, INBOX_COLS};
use crate::error::Result;
use crate::exec::{bind_all, insert_id, Arg};
use crate::secrets::SecretsReport;
use crate::SqlStore;
use switchboard_core::StoreError;
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    pub(super) async fn create_inbox_impl(&self, inbox: &NewInbox, now: Millis) -> Result<Inbox> {
        self.get_tenant_impl(inbox.tenant_id).await?;
        // Everything below runs on this one connection: on SQLite the pool has exactly one, so
        // asking the pool again while holding it would wait forever.
        let mut conn = self.pool.acquire().await?;
        if let Some(team) = inbox.team_id {
            // A team of another tenant is reported as absent, like every cross-tenant reference.
            self.get_team_on(&mut conn, inbox.tenant_id, team).await?;
        }
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO inboxes (tenant_id, name, kind, settings, secrets, mask_identifiers, team_id, token_hash, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(inbox.tenant_id.0)
            .bind(&inbox.name)
            .bind(inbox.kind.as_str())
            .bind(serde_json::to_string(&inbox.settings)?)
            .bind(self.secrets.seal(inbox.tenant_id, &serde_json::to_string(&inbox.secrets)?)?)
            .bind(i64::from(inbox.mask_identifiers))
            .bind(inbox.team_id.map(|t| t.0))
            .bind(inbox.token_hash.as_deref())
            .bind(now)
            .bind(now);
        let id = insert_id(self.dialect, &mut *conn, query).await?;
        drop(conn);
        self.get_inbox_impl(inbox.tenant_id, InboxId(id)).await
    }

    pub(super) async fn get_inbox_impl(&self, tenant: TenantId, id: InboxId) -> Result<Inbox> {
        let sql = format!("SELECT {INBOX_COLS} FROM inboxes WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(&self.pool).await? {
            Some(row) => rows::inbox(&row, &self.secrets),
            None => not_found(),
        }
    }

    pub(super) async fn list_inboxes_impl(&self, tenant: TenantId) -> Result<Vec<Inbox>> {
        let sql = format!("SELECT {INBOX_COLS} FROM inboxes WHERE tenant_id = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).fetch_all(&self.pool).await?;
        found.iter().map(|r| rows::inbox(r, &self.secrets)).collect()
    }

    pub(super) async fn update_inbox_impl(
        &self,
        tenant: TenantId,
        id: InboxId,
        patch: &InboxPatch,
        now: Millis,
    ) -> Result<Inbox> {
        let mut sets = vec!["updated_at = ?"];
        let mut args = vec![Arg::Int(now)];
        if let Some(name) = &patch.name {
            sets.push("name = ?");
            args.push(Arg::Text(name.clone()));
        }
        if let Some(settings) = &patch.settings {
            sets.push("settings = ?");
            args.push(Arg::Text(serde_json::to_string(settings)?));
        }
        if let Some(secrets) = &patch.secrets {
            sets.push("secrets = ?");
            args.push(Arg::Text(self.secrets.seal(tenant, &serde_json::to_string(secrets)?)?));
        }
        if let Some(mask) = patch.mask_identifiers {
            sets.push("mask_identifiers = ?");
            args.push(Arg::Int(i64::from(mask)));
        }
        if let Some(team) = patch.team_id {
            if let Some(team) = team {
                let mut conn = self.pool.acquire().await?;
                self.get_team_on(&mut conn, tenant, team).await?;
            }
            sets.push("team_id = ?");
            args.push(Arg::OptInt(team.map(|t| t.0)));
        }
        if let Some(hash) = &patch.token_hash {
            sets.push("token_hash = ?");
            args.push(Arg::Text(hash.clone()));
        }
        args.push(Arg::Int(id.0));
        args.push(Arg::Int(tenant.0));
        let sql = format!("UPDATE inboxes SET {} WHERE id = ? AND tenant_id = ?", sets.join(", "));
        let sql = self.sql(&sql);
        let done = bind_all(sqlx::query(&sql), args).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        self.get_inbox_impl(tenant, id).await
    }

    pub(super) async fn get_inbox_unscoped_impl(&self, id: InboxId) -> Result<Option<(Inbox, Option<String>)>> {
        let sql = format!("SELECT {INBOX_COLS} FROM inboxes WHERE id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).fetch_optional(&self.pool).await? {
            Some(row) => Ok(Some((rows::inbox(&row, &self.secrets)?, rows::inbox_token_hash(&row)?))),
            None => Ok(None),
        }
    }

    /// Seals every inbox's secrets that need it: plaintext rows (written before encryption)
    /// always, and — when `rotate` — rows under a previous key, so that key can be retired.
    /// Opens every row on the way, so it also proves the keyring can read the whole table: the
    /// first row it cannot open is an error naming the inbox and the key id, and nothing after
    /// it is touched. Each reseal is a compare-and-swap on the old column value, so a concurrent
    /// write (an admin rotating a token, another node resealing) is never overwritten.
    pub async fn reseal_inbox_secrets(&self, rotate: bool) -> std::result::Result<SecretsReport, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT id, tenant_id, secrets FROM inboxes ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(crate::error::Error::from)?;
        let mut report = SecretsReport::default();
        for row in &rows {
            let id = crate::exec::int(row, "id")?;
            let tenant = TenantId(crate::exec::int(row, "tenant_id")?);
            let stored = crate::exec::text(row, "secrets")?;
            let (plain, state) = self
                .secrets
                .open(tenant, &stored)
                .map_err(|e| StoreError::Unavailable(format!("inbox {id}: {e}")))?;
            report.inboxes += 1;
            if !self.secrets.needs_reseal(&state, rotate) {
                continue;
            }
            let sealed = self.secrets.seal(tenant, &plain).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let done = sqlx::query(&self.sql("UPDATE inboxes SET secrets = ? WHERE id = ? AND secrets = ?"))
                .bind(&sealed)
                .bind(id)
                .bind(&stored)
                .execute(&self.pool)
                .await
                .map_err(crate::error::Error::from)?;
            if done.rows_affected() == 1 {
                report.resealed += 1;
            }
        }
        Ok(report)
    }

    /// The `secrets` column of an inbox exactly as stored (sealed or, before encryption, plain
    /// JSON): for operators' checks and the storage suite, never for the API.
    pub async fn stored_inbox_secrets(&self, id: InboxId) -> std::result::Result<Option<String>, StoreError> {
        let row = sqlx::query(&self.sql("SELECT secrets FROM inboxes WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(crate::error::Error::from)?;
        Ok(row.map(|r| crate::exec::text(&r, "secrets")).transpose()?)
    }

    // ---- contacts ----------------------------------------------------------------------------

    pub(super) async fn get_contact_impl(&self, tenant: TenantId, id: ContactId) -> Result<Contact> {
        let sql = format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(&self.pool).await? {
            Some(row) => rows::contact(&row),
            None => not_found(),
        }
    }

    pub(super) async fn list_contact_identities_impl(
        &self,
        tenant: TenantId,
        id: ContactId,
    ) -> Result<Vec<ContactIdentity>> {
        self.get_contact_impl(tenant, id).await?;
        let found = sqlx::query(&self.sql(
            "SELECT contact_id, inbox_id, external_id FROM contact_identities \
             WHERE contact_id = ? AND tenant_id = ? ORDER BY id",
        ))
        .bind(id.0)
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::contact_identity).collect()
    }
}

/// Inserts a contact row (inside the caller's transaction) and returns its id.
pub(super) async fn insert_contact(
    store: &SqlStore,
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    name: Option<&str>,
    now: Millis,
) -> Result<ContactId> {
    let sql = store
        .dialect
        .insert_returning_id("INSERT INTO contacts (tenant_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)");
    let id = insert_id(store.dialect, conn, sqlx::query(&sql).bind(tenant.0).bind(name).bind(now).bind(now)).await?;
    Ok(ContactId(id))
}
