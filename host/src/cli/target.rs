//! Where a prompt command acts: the database directly, or a running server (`--server`).

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::client::ApiClient;
use crate::config::args::{LogArgs, Overlay, StorageArgs};
use crate::config::{Secret, Settings};
use crate::prompts::{CreatePrompt, CreateVersion, ImportPrompt, ImportedVersion, PromptRegistry};
use crate::store::{DeployRecord, PromptVersion, PromptWithVersions};

/// How a prompt command reaches the prompts.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Call the running service at this URL (e.g. http://127.0.0.1:8080) instead of opening the
    /// database.
    #[arg(long, env = "FLYWHEEL_SERVER", global = true)]
    pub server: Option<String>,
    /// Bearer token for --server (read for listing, admin for changes).
    #[arg(long, env = "FLYWHEEL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<Secret>,
    /// Actor recorded for changes in database mode [default: cli:$USER]; in server mode the
    /// token's name is recorded.
    #[arg(long, global = true)]
    pub actor: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The database of database mode.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl TargetArgs {
    /// The setting groups a prompt command reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        vec![&self.storage, &self.log]
    }
}

/// An opened target.
pub enum Target {
    /// The database, through the registry (the same rules as the service).
    Database {
        /// The registry on the opened store.
        registry: PromptRegistry,
        /// Who is recorded as the actor.
        actor: String,
    },
    /// A running service.
    Server(ApiClient),
}

impl Target {
    /// Opens the database or prepares the client.
    pub async fn open(args: &TargetArgs, settings: &Settings) -> anyhow::Result<Target> {
        if let Some(server) = &args.server {
            return Ok(Target::Server(ApiClient::new(server, args.token.clone())?));
        }
        let store = crate::server::open_database(settings).await?;
        let actor = args.actor.clone().unwrap_or_else(|| {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
            format!("cli:{user}")
        });
        Ok(Target::Database {
            registry: PromptRegistry::new(store, settings.resolve_cache_ttl),
            actor,
        })
    }

    /// Every prompt with its versions.
    pub async fn list(&self) -> anyhow::Result<Vec<PromptWithVersions>> {
        match self {
            Target::Database { registry, .. } => Ok(registry.list().await?),
            Target::Server(c) => c.call(Method::GET, &["api", "prompts"], None).await,
        }
    }

    /// The versions of a prompt.
    pub async fn versions(&self, id: &str) -> anyhow::Result<Vec<PromptVersion>> {
        match self {
            Target::Database { registry, .. } => Ok(registry.versions(id).await?),
            Target::Server(c) => {
                c.call(Method::GET, &["api", "prompts", id, "versions"], None)
                    .await
            }
        }
    }

    /// One version.
    pub async fn version(&self, id: &str, version: i64) -> anyhow::Result<PromptVersion> {
        match self {
            Target::Database { registry, .. } => Ok(registry.version(id, version).await?),
            Target::Server(c) => {
                let v = version.to_string();
                c.call(Method::GET, &["api", "prompts", id, "versions", &v], None)
                    .await
            }
        }
    }

    /// Creates a version.
    pub async fn create_version(
        &self,
        id: &str,
        content: String,
        notes: Option<String>,
        parent_version: Option<i64>,
    ) -> anyhow::Result<PromptVersion> {
        match self {
            Target::Database { registry, actor } => {
                let req = CreateVersion {
                    content,
                    notes,
                    parent_version,
                };
                Ok(registry.create_version(id, req, actor).await?)
            }
            Target::Server(c) => {
                let body =
                    json!({ "content": content, "notes": notes, "parentVersion": parent_version });
                c.call(
                    Method::POST,
                    &["api", "prompts", id, "versions"],
                    Some(body),
                )
                .await
            }
        }
    }

    /// Creates a prompt with its active version 1.
    pub async fn create_prompt(&self, request: CreatePrompt) -> anyhow::Result<PromptWithVersions> {
        match self {
            Target::Database { registry, actor } => {
                Ok(registry.create_prompt(request, actor).await?)
            }
            Target::Server(c) => {
                let body = serde_json::to_value(&request).context("encoding the request")?;
                c.call(Method::POST, &["api", "prompts"], Some(body)).await
            }
        }
    }

    /// Imports a prompt written elsewhere as a new inactive version.
    pub async fn import(&self, id: &str, request: ImportPrompt) -> anyhow::Result<ImportedVersion> {
        match self {
            Target::Database { registry, actor } => Ok(registry.import(id, request, actor).await?),
            Target::Server(c) => {
                let body = serde_json::to_value(&request).context("encoding the request")?;
                c.call(Method::POST, &["api", "prompts", id, "import"], Some(body))
                    .await
            }
        }
    }

    /// Activates a version.
    pub async fn deploy(&self, id: &str, version: i64) -> anyhow::Result<DeployRecord> {
        match self {
            Target::Database { registry, actor } => Ok(registry.deploy(id, version, actor).await?),
            Target::Server(c) => {
                let v = version.to_string();
                c.call(Method::POST, &["api", "prompts", id, "deploy", &v], None)
                    .await
            }
        }
    }

    /// Re-activates the previous version.
    pub async fn rollback(&self, id: &str) -> anyhow::Result<DeployRecord> {
        match self {
            Target::Database { registry, actor } => Ok(registry.rollback(id, actor).await?),
            Target::Server(c) => {
                c.call(Method::POST, &["api", "prompts", id, "rollback"], None)
                    .await
            }
        }
    }
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON output")?
    );
    Ok(())
}
