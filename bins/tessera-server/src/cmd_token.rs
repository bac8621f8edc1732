//! `tessera-server token …`: enrollment tokens, straight on the data directory's database
//! (safe beside a running server: SQLite in WAL mode).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tessera_server::secret;
use tessera_store::{NewToken, Store};
use time::OffsetDateTime;

/// `token` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum TokenCommand {
    /// Create a token and print it (once).
    Create {
        /// What the token is for.
        #[arg(long)]
        label: String,
        /// Hours until it expires (default: never).
        #[arg(long, value_name = "HOURS")]
        expires_in: Option<u32>,
        /// Enrollments it allows (default: unlimited; 1 = single use).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its ID.
    Revoke {
        /// The token's ID (from `token list`).
        id: i64,
    },
}

pub(crate) fn run(data: &Path, args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let (runtime, store) = crate::local_store::open(data)?;
    runtime.block_on(async {
        let now = OffsetDateTime::now_utc();
        match &args.command {
            TokenCommand::Create {
                label,
                expires_in,
                uses,
                json,
            } => {
                anyhow::ensure!(
                    !label.trim().is_empty(),
                    "give the token a label with --label"
                );
                let token = secret::generate("tse");
                let record = store
                    .create_token(
                        &NewToken {
                            token_hash: secret::hash(&token),
                            label: label.clone(),
                            expires_at: expires_in
                                .map(|h| now + time::Duration::hours(i64::from(h))),
                            uses: uses.map(i64::from),
                        },
                        now,
                    )
                    .await?;
                if *json {
                    println!("{}", serde_json::json!({"token": token, "record": record}));
                } else {
                    println!("{token}");
                    eprintln!(
                        "token {} ({}) created; it is shown only now",
                        record.id, record.label
                    );
                }
            }
            TokenCommand::List { json } => {
                let tokens = store.list_tokens().await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&tokens)?);
                } else {
                    println!(
                        "{:>4}  {:<24} {:<10} {:<22} label",
                        "id", "created", "uses left", "expires / revoked"
                    );
                    for t in tokens {
                        let state = match (t.revoked_at, t.expires_at) {
                            (Some(at), _) => format!("revoked {}", at.date()),
                            (None, Some(at)) if at <= now => format!("expired {}", at.date()),
                            (None, Some(at)) => format!("expires {}", at.date()),
                            (None, None) => "never expires".to_owned(),
                        };
                        let uses = t
                            .uses_left
                            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
                        println!(
                            "{:>4}  {:<24} {:<10} {:<22} {}",
                            t.id,
                            t.created_at.date(),
                            uses,
                            state,
                            t.label
                        );
                    }
                }
            }
            TokenCommand::Revoke { id } => {
                anyhow::ensure!(
                    store.revoke_token(*id, now).await?,
                    "no active token with ID {id}"
                );
                eprintln!("token {id} revoked");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
