//! First start: with an empty database, create a tenant, its admin, and a web-widget inbox so a
//! new user can log in and try the widget at once. Later starts change nothing and only say
//! where to go.

use std::net::SocketAddr;

use anyhow::Context;
use secrecy::ExposeSecret;
use serde_json::json;
use switchboard_core::domain::{ChannelKind, NewInbox, NewUser, Role};
use switchboard_core::ids::InboxId;
use switchboard_core::store::Store;
use switchboard_core::StoreError;

use crate::auth::{hash_password, new_token};
use crate::settings::Settings;
use crate::time::now_ms;

/// What to tell the person who started the server.
pub struct BootstrapReport {
    /// Set only on the first start: the admin's login (the password only if generated).
    created: Option<(String, Option<String>)>,
    widget: Option<(InboxId, String)>,
}

pub async fn ensure_initial_tenant(store: &dyn Store, settings: &Settings) -> anyhow::Result<BootstrapReport> {
    let b = &settings.bootstrap;
    let now = now_ms();
    // Several nodes may start at once on an empty database. Each step is keyed by a unique
    // constraint (tenant slug, then the admin's email within the tenant), so exactly one node
    // wins each step; the others see `Conflict` and carry on with what the winner wrote. A crash
    // between steps is finished by the next start, because each step checks before it writes.
    // Count before looking the slug up: if the count is positive and the slug is still absent,
    // the tenant was removed or renamed on purpose (not merely being created by another node).
    let tenants_before = store.count_tenants().await?;
    let tenant = match store.find_tenant_by_slug_unscoped(&b.tenant_slug).await? {
        Some(t) => t,
        None if tenants_before > 0 => {
            // Someone runs other tenants and removed or renamed this one: do not recreate it.
            return Ok(BootstrapReport { created: None, widget: None });
        }
        None => match store.create_tenant(&b.tenant_name, &b.tenant_slug, now).await {
            Ok(t) => t,
            Err(StoreError::Conflict(_)) => store
                .find_tenant_by_slug_unscoped(&b.tenant_slug)
                .await?
                .context("the first tenant was created by another node but cannot be read")?,
            Err(e) => return Err(e).context("creating the first tenant"),
        },
    };
    if !store.list_users(tenant.id).await?.is_empty() {
        let widget = winners_widget(store, tenant.id).await?;
        return Ok(BootstrapReport { created: None, widget });
    }
    let (password, generated) = match &b.admin_password {
        Some(p) => (p.expose_secret().to_string(), false),
        None => (new_token("").chars().filter(char::is_ascii_alphanumeric).take(20).collect::<String>(), true),
    };
    let admin_email = b.admin_email.trim().to_lowercase();
    let admin = NewUser {
        tenant_id: tenant.id,
        email: admin_email.clone(),
        name: "Administrator".into(),
        role: Role::Admin,
        password_hash: hash_password(&password)?,
        capacity: settings.agents.default_capacity,
    };
    match store.create_user(admin, now).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => {
            // Another node created the admin (and creates the inbox): nothing left to do here.
            let widget = winners_widget(store, tenant.id).await?;
            return Ok(BootstrapReport { created: None, widget });
        }
        Err(e) => return Err(e).context("creating the first admin"),
    }
    if first_widget(store, tenant.id).await?.is_none() {
        store
            .create_inbox(
                NewInbox {
                    tenant_id: tenant.id,
                    name: "Website".into(),
                    kind: ChannelKind::Web,
                    settings: json!({ "widget_key": new_token("wk_") }),
                    secrets: json!({}),
                    mask_identifiers: false,
                    team_id: None,
                    token_hash: None,
                },
                now,
            )
            .await
            .context("creating the website inbox")?;
    }
    let widget = first_widget(store, tenant.id).await?;
    Ok(BootstrapReport { created: Some((admin_email, generated.then_some(password))), widget })
}

/// The website inbox another node is creating right now: wait a moment for it (only the
/// printed demo link depends on it).
async fn winners_widget(store: &dyn Store, tenant: switchboard_core::ids::TenantId) -> anyhow::Result<Option<(InboxId, String)>> {
    for _ in 0..50 {
        if let Some(w) = first_widget(store, tenant).await? {
            return Ok(Some(w));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(None)
}

async fn first_widget(store: &dyn Store, tenant: switchboard_core::ids::TenantId) -> anyhow::Result<Option<(InboxId, String)>> {
    let inboxes = store.list_inboxes(tenant).await?;
    Ok(inboxes.into_iter().filter(|i| i.kind == ChannelKind::Web).find_map(|i| {
        let key = i.settings.get("widget_key")?.as_str()?.to_string();
        Some((i.id, key))
    }))
}

impl BootstrapReport {
    /// Prints how to reach the server, on stdout so a terminal user sees it among the logs.
    pub fn print(&self, settings: &Settings, addr: SocketAddr) {
        let base = settings.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let mut lines = vec![format!("Switchboard is running at {base}")];
        match &self.created {
            Some((email, Some(password))) => {
                lines.push(format!("First start: created tenant '{}' and admin {email} with password {password}", settings.bootstrap.tenant_slug));
                lines.push("(shown once; change it from the API, or set SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD before the first start)".into());
            }
            Some((email, None)) => lines.push(format!("First start: created admin {email} with the configured bootstrap password")),
            None => lines.push(format!("Log in as {} (password set at first start)", settings.bootstrap.admin_email)),
        }
        if crate::web::web_dir().join("index.html").is_file() {
            lines.push(format!("Console:     {base}/"));
        }
        lines.push(format!("Agent demo:  {base}/demo/agent.html"));
        if let Some((inbox, key)) = &self.widget {
            lines.push(format!("Widget demo: {base}/demo/widget.html?inbox={inbox}&key={key}"));
        }
        lines.push(format!("API docs:    {base}/api/openapi.json"));
        println!("\n{}\n", lines.join("\n"));
    }
}
