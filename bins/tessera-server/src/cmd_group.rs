//! `tessera-server group …`: group manifests (`<data>/repo/manifests/groups/<name>`), edited
//! directly in the repository with the same code the admin API uses (atomic writes). A
//! running server reads manifests from disk on each request, so it serves the change at
//! once. Two writers editing the same group at the same moment (this command and the admin
//! API) are not serialised; the last one wins.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tessera_manifest::Repo;
use tessera_server::datadir::DataDir;
use tessera_server::groups::{self, Group};

/// `group` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum GroupCommand {
    /// List group manifests.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create an empty group manifest `groups/NAME` searching the `production` catalog.
    Create {
        /// The group's name: one path component (no `/`, `..` or control characters).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's catalogs, includes and item lists.
    Show {
        /// The group's name (`lab` or `groups/lab`).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add items to a list of a group (managed_installs unless --key).
    Add(EditArgs),
    /// Remove items from a list of a group (managed_installs unless --key).
    Remove(EditArgs),
}

#[derive(Args, Debug, Clone)]
struct EditArgs {
    /// The group's name (`lab` or `groups/lab`).
    name: String,
    /// Item names (Munki `name` or `name-version`).
    #[arg(required = true)]
    items: Vec<String>,
    /// The list: managed_installs, managed_uninstalls, managed_updates, optional_installs,
    /// featured_items, default_installs, included_manifests or catalogs.
    #[arg(long, default_value = "managed_installs")]
    key: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(data: &Path, args: &GroupArgs) -> anyhow::Result<ExitCode> {
    let root = DataDir::new(data).repo();
    // Opening fails only when the directory is missing; Repo's own message suggests
    // `--repo`, which this command does not take.
    let repo = Repo::open(&root).map_err(|_| {
        anyhow::anyhow!(
            "no Munki repository at {}: run `tessera-server --data {} serve` once to initialise the data directory",
            root.display(),
            data.display()
        )
    })?;
    match &args.command {
        GroupCommand::List { json } => {
            let groups = groups::list(&repo)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&groups)?);
            } else if groups.is_empty() {
                eprintln!(
                    "no group manifests under {}",
                    root.join("manifests/groups").display()
                );
            } else {
                for g in &groups {
                    println!(
                        "{:<24} {} managed_installs, {} optional_installs, {} managed_uninstalls",
                        g.manifest,
                        g.managed_installs.len(),
                        g.optional_installs.len(),
                        g.managed_uninstalls.len()
                    );
                }
            }
        }
        GroupCommand::Create { name, json } => {
            let group = groups::create(&repo, name)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&group)?);
            } else {
                println!(
                    "Created {}; computer manifests include it in included_manifests (a device can join it with POST /enroll/join).",
                    group.manifest
                );
            }
        }
        GroupCommand::Show { name, json } => {
            let group = groups::show(&repo, name)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&group)?);
            } else {
                print_group(&group);
            }
        }
        GroupCommand::Add(edit) | GroupCommand::Remove(edit) => {
            let adding = matches!(args.command, GroupCommand::Add(_));
            let (add, remove): (&[String], &[String]) = if adding {
                (&edit.items, &[])
            } else {
                (&[], &edit.items)
            };
            let edited = groups::edit(&repo, &edit.name, Some(&edit.key), add, remove)?;
            if edit.json {
                println!("{}", serde_json::to_string_pretty(&edited)?);
                return Ok(ExitCode::SUCCESS);
            }
            let changed = if adding {
                &edited.added
            } else {
                &edited.removed
            };
            for item in &edit.items {
                if !changed.contains(item) {
                    let state = if adding { "already" } else { "not" };
                    eprintln!(
                        "{item} was {state} in {} of {}",
                        edit.key, edited.group.manifest
                    );
                }
            }
            if !changed.is_empty() {
                println!(
                    "{} {} {}: {}",
                    if adding { "Added to" } else { "Removed from" },
                    edited.group.manifest,
                    edit.key,
                    changed.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_group(group: &Group) {
    println!("{}", group.manifest);
    for (key, items) in [
        ("catalogs", &group.catalogs),
        ("included_manifests", &group.included_manifests),
        ("managed_installs", &group.managed_installs),
        ("managed_uninstalls", &group.managed_uninstalls),
        ("managed_updates", &group.managed_updates),
        ("optional_installs", &group.optional_installs),
        ("featured_items", &group.featured_items),
        ("default_installs", &group.default_installs),
    ] {
        if items.is_empty() {
            println!("{key}: (none)");
        } else {
            println!("{key}: {}", items.join(", "));
        }
    }
    if group.conditional_items > 0 {
        println!(
            "conditional_items: {} (edit the plist to change them)",
            group.conditional_items
        );
    }
}
