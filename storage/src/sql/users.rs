//! Tenants, users, login sessions, API tokens and teams: plain rows, deduplicated by unique
//! constraints (tenant slug, user email per tenant, token hashes).

use super::not_found;
use super::rows::{self, API_TOKEN_COLS, TEAM_COLS, TENANT_COLS, USER_COLS};
use crate::error::{Error, Result};
use crate::exec::{bind_all, insert_id, Arg};
use crate::SqlStore;
use sqlx::{AnyConnection, Row};
use switchboard_core::domain::*;
use switchboard_core::ids::*;
use switchboard_core::time::Millis;

impl SqlStore {
    pub(super) async fn create_tenant_impl(&self, name: &str, slug: &str, now: Millis) -> Result<Tenant> {
        let sql = self
            .dialect
            .insert_returning_id("INSERT INTO tenants (name, slug, created_at, updated_at) VALUES (?, ?, ?, ?)");
        let id =
            insert_id(self.dialect, &self.pool, sqlx::query(&sql).bind(name).bind(slug).bind(now).bind(now)).await?;
        self.get_tenant_impl(TenantId(id)).await
    }

    pub(super) async fn count_tenants_impl(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tenants").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub(super) async fn get_tenant_impl(&self, id: TenantId) -> Result<Tenant> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).fetch_optional(&self.pool).await? {
            Some(row) => rows::tenant(&row),
            None => not_found(),
        }
    }

    pub(super) async fn find_tenant_by_slug_impl(&self, slug: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = ?");
        let row = sqlx::query(&self.sql(&sql)).bind(slug).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::tenant).transpose()
    }

    /// New users start `offline`: an agent becomes routable only by choosing `available`.
    pub(super) async fn create_user_impl(&self, user: &NewUser, now: Millis) -> Result<User> {
        // The tenant must exist; a foreign-key failure would say the same, less clearly.
        self.get_tenant_impl(user.tenant_id).await?;
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO users (tenant_id, email, name, role, password_hash, status, capacity, active_load, \
             last_assigned_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(user.tenant_id.0)
            .bind(&user.email)
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .bind(AgentStatus::Offline.as_str())
            .bind(user.capacity.max(0))
            .bind(now)
            .bind(now);
        // A second user with the same email in the tenant fails on users_tenant_email_key,
        // which the error mapping turns into `Conflict`.
        let id = insert_id(self.dialect, &self.pool, query).await?;
        self.get_user_impl(user.tenant_id, UserId(id)).await
    }

    pub(super) async fn get_user_impl(&self, tenant: TenantId, id: UserId) -> Result<User> {
        let mut conn = self.pool.acquire().await?;
        self.get_user_on(&mut conn, tenant, id).await
    }

    pub(crate) async fn get_user_on(&self, conn: &mut AnyConnection, tenant: TenantId, id: UserId) -> Result<User> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(conn).await? {
            Some(row) => rows::user(&row),
            None => not_found(),
        }
    }

    pub(super) async fn list_users_impl(&self, tenant: TenantId) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE tenant_id = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).fetch_all(&self.pool).await?;
        found.iter().map(rows::user).collect()
    }

    pub(super) async fn users_not_offline_impl(&self, limit: i64) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE status <> 'offline' ORDER BY id LIMIT ?");
        let found = sqlx::query(&self.sql(&sql)).bind(limit).fetch_all(&self.pool).await?;
        found.iter().map(rows::user).collect()
    }

    pub(super) async fn update_user_impl(
        &self,
        tenant: TenantId,
        id: UserId,
        patch: &UserPatch,
        now: Millis,
    ) -> Result<User> {
        let mut sets = vec!["updated_at = ?"];
        let mut args = vec![Arg::Int(now)];
        if let Some(name) = &patch.name {
            sets.push("name = ?");
            args.push(Arg::Text(name.clone()));
        }
        if let Some(role) = patch.role {
            sets.push("role = ?");
            args.push(Arg::Text(role.as_str().to_owned()));
        }
        if let Some(capacity) = patch.capacity {
            // Lowering capacity below the current load is allowed: the agent simply gets no new
            // conversations until the load drops (try_assign checks active_load < capacity).
            sets.push("capacity = ?");
            args.push(Arg::Int(capacity.max(0)));
        }
        if let Some(hash) = &patch.password_hash {
            sets.push("password_hash = ?");
            args.push(Arg::Text(hash.clone()));
        }
        if let Some(skills) = &patch.skills {
            sets.push("skills = ?");
            args.push(Arg::Text(serde_json::to_string(skills)?));
        }
        args.push(Arg::Int(id.0));
        args.push(Arg::Int(tenant.0));
        let sql = format!("UPDATE users SET {} WHERE id = ? AND tenant_id = ?", sets.join(", "));
        let sql = self.sql(&sql);
        let done = bind_all(sqlx::query(&sql), args).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        self.get_user_impl(tenant, id).await
    }

    pub(super) async fn find_users_by_email_impl(&self, email: &str) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(email).fetch_all(&self.pool).await?;
        found.iter().map(rows::user).collect()
    }

    pub(super) async fn set_agent_status_impl(
        &self,
        tenant: TenantId,
        id: UserId,
        status: AgentStatus,
        now: Millis,
    ) -> Result<User> {
        let done = sqlx::query(&self.sql("UPDATE users SET status = ?, updated_at = ? WHERE id = ? AND tenant_id = ?"))
            .bind(status.as_str())
            .bind(now)
            .bind(id.0)
            .bind(tenant.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        self.get_user_impl(tenant, id).await
    }

    // ---- sessions ----------------------------------------------------------------------------

    pub(super) async fn create_session_impl(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(&self.sql(
            "INSERT INTO sessions (token_hash, user_id, tenant_id, expires_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(token_hash)
        .bind(user.id.0)
        .bind(user.tenant_id.0)
        .bind(expires_at)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn find_session_impl(&self, token_hash: &str, now: Millis) -> Result<Option<(Session, User)>> {
        let row = sqlx::query(
            &self.sql("SELECT user_id, tenant_id, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?"),
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = Session {
            user_id: UserId(row.try_get("user_id")?),
            tenant_id: TenantId(row.try_get("tenant_id")?),
            expires_at: row.try_get("expires_at")?,
        };
        match self.get_user_impl(session.tenant_id, session.user_id).await {
            Ok(user) => Ok(Some((session, user))),
            Err(Error::Store(switchboard_core::StoreError::NotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn delete_session_impl(&self, token_hash: &str) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM sessions WHERE token_hash = ?"))
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- API tokens --------------------------------------------------------------------------

    pub(super) async fn create_api_token_impl(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
        token_hash: &str,
        now: Millis,
    ) -> Result<ApiToken> {
        self.get_tenant_impl(tenant).await?;
        let sql = self.dialect.insert_returning_id(
            "INSERT INTO api_tokens (tenant_id, name, role, token_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        );
        let query =
            sqlx::query(&sql).bind(tenant.0).bind(name).bind(role.as_str()).bind(token_hash).bind(now).bind(now);
        let id = insert_id(self.dialect, &self.pool, query).await?;
        let sql = format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE id = ?");
        let row = sqlx::query(&self.sql(&sql)).bind(id).fetch_one(&self.pool).await?;
        rows::api_token(&row)
    }

    pub(super) async fn find_api_token_impl(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE token_hash = ?");
        let row = sqlx::query(&self.sql(&sql)).bind(token_hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::api_token).transpose()
    }

    pub(super) async fn list_api_tokens_impl(&self, tenant: TenantId) -> Result<Vec<ApiToken>> {
        let sql = format!("SELECT {API_TOKEN_COLS} FROM api_tokens WHERE tenant_id = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).fetch_all(&self.pool).await?;
        found.iter().map(rows::api_token).collect()
    }

    pub(super) async fn delete_api_token_impl(&self, tenant: TenantId, id: ApiTokenId) -> Result<()> {
        let done = sqlx::query(&self.sql("DELETE FROM api_tokens WHERE id = ? AND tenant_id = ?"))
            .bind(id.0)
            .bind(tenant.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return not_found();
        }
        Ok(())
    }

    // ---- teams -------------------------------------------------------------------------------

    pub(super) async fn create_team_impl(&self, tenant: TenantId, name: &str, now: Millis) -> Result<Team> {
        self.get_tenant_impl(tenant).await?;
        let sql = self
            .dialect
            .insert_returning_id("INSERT INTO teams (tenant_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)");
        let id = insert_id(self.dialect, &self.pool, sqlx::query(&sql).bind(tenant.0).bind(name).bind(now).bind(now))
            .await?;
        let mut conn = self.pool.acquire().await?;
        self.get_team_on(&mut conn, tenant, TeamId(id)).await
    }

    pub(crate) async fn get_team_on(&self, conn: &mut AnyConnection, tenant: TenantId, id: TeamId) -> Result<Team> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams WHERE id = ? AND tenant_id = ?");
        match sqlx::query(&self.sql(&sql)).bind(id.0).bind(tenant.0).fetch_optional(conn).await? {
            Some(row) => rows::team(&row),
            None => not_found(),
        }
    }

    pub(super) async fn list_teams_impl(&self, tenant: TenantId) -> Result<Vec<Team>> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams WHERE tenant_id = ? ORDER BY id");
        let found = sqlx::query(&self.sql(&sql)).bind(tenant.0).fetch_all(&self.pool).await?;
        found.iter().map(rows::team).collect()
    }

    pub(super) async fn set_team_policy_impl(
        &self,
        tenant: TenantId,
        team: TeamId,
        policy: Option<&serde_json::Value>,
        now: Millis,
    ) -> Result<Team> {
        self.update_one(
            "UPDATE teams SET routing_policy = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            vec![Arg::OptText(policy.map(serde_json::Value::to_string)), Arg::Int(now), Arg::Int(team.0), Arg::Int(tenant.0)],
        )
        .await?;
        let mut conn = self.pool.acquire().await?;
        self.get_team_on(&mut conn, tenant, team).await
    }

    /// Idempotent: adding a member twice leaves one membership.
    pub(super) async fn add_team_member_impl(
        &self,
        tenant: TenantId,
        team: TeamId,
        user: UserId,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        // Both must belong to the tenant; otherwise the caller learns nothing about them.
        self.get_team_on(&mut conn, tenant, team).await?;
        self.get_user_on(&mut conn, tenant, user).await?;
        let sql = self.dialect.insert_ignore(
            "INSERT INTO team_members (team_id, user_id, tenant_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            false,
        );
        sqlx::query(&sql).bind(team.0).bind(user.0).bind(tenant.0).bind(now).bind(now).execute(&mut *conn).await?;
        Ok(())
    }

    pub(super) async fn list_team_members_impl(&self, tenant: TenantId, team: TeamId) -> Result<Vec<UserId>> {
        let mut conn = self.pool.acquire().await?;
        self.get_team_on(&mut conn, tenant, team).await?;
        let found = sqlx::query(
            &self.sql("SELECT user_id FROM team_members WHERE team_id = ? AND tenant_id = ? ORDER BY user_id"),
        )
        .bind(team.0)
        .bind(tenant.0)
        .fetch_all(&mut *conn)
        .await?;
        found.iter().map(|row| Ok(UserId(row.try_get::<i64, _>("user_id")?))).collect()
    }
}
