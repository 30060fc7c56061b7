//! `boson registry push | pull | login`: the flags (Spin's names) and what each does.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::{RegistryOptions, auth, parse_reference};
use crate::app::AppLocation;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Package an app and push it to an OCI registry (Spin's layout: `spin up -f <ref>` runs it).
    Push(PushArgs),
    /// Pull an app from an OCI registry into the cache.
    Pull(PullArgs),
    /// Store a registry login in Docker's config file (~/.docker/config.json).
    Login(LoginArgs),
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Where to push: host[:port]/repository:tag, e.g. ghcr.io/you/app:v1.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// The app: a manifest or a folder holding one (default: the current folder).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// Talk plain HTTP instead of HTTPS (a local registry, say).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Cache for sources fetched while packing (default: $BOSON_CACHE_DIR, else ~/.cache/boson).
    #[arg(long, value_name = "DIR", env = "BOSON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to pull: host[:port]/repository[:tag] or host[:port]/repository@sha256:<digest>.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Talk plain HTTP instead of HTTPS (a local registry, say).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Where pulled apps are kept (default: $BOSON_CACHE_DIR, else ~/.cache/boson).
    #[arg(long, value_name = "DIR", env = "BOSON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry: host[:port], e.g. ghcr.io or 127.0.0.1:5000.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// The username.
    #[arg(long, short = 'u', value_name = "USER")]
    pub username: String,
    /// The password or token (prefer --password-stdin: this one shows in `ps` and history).
    #[arg(
        long,
        short = 'p',
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,
    /// Read the password or token from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Talk plain HTTP instead of HTTPS (a local registry, say).
    #[arg(long, short = 'k')]
    pub insecure: bool,
}

pub async fn run(command: RegistryCommand, default_cache_dir: PathBuf) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Push(args) => {
            let reference = parse_reference(&args.reference)?;
            let manifest = match AppLocation::find(args.from.as_deref())? {
                AppLocation::Manifest(path) => path,
                AppLocation::Wasm(path) => bail!(
                    "{} is a bare component; `boson registry push` pushes an app — write a spin.toml naming it",
                    path.display()
                ),
            };
            let options = RegistryOptions {
                cache_dir: args.cache_dir.unwrap_or(default_cache_dir),
                insecure: args.insecure,
            };
            let digest = super::push(&manifest, &reference, &options).await?;
            println!("Pushed {reference}");
            println!("Digest: {digest}");
            Ok(())
        }
        RegistryCommand::Pull(args) => {
            let reference = parse_reference(&args.reference)?;
            let options = RegistryOptions {
                cache_dir: args.cache_dir.unwrap_or(default_cache_dir),
                insecure: args.insecure,
            };
            let app = super::pull(&reference, &options).await?;
            println!("Pulled {reference}");
            println!("Digest: {}", app.digest);
            println!(
                "App: {}",
                app.manifest.parent().unwrap_or(&app.manifest).display()
            );
            Ok(())
        }
        RegistryCommand::Login(args) => {
            let password = match (args.password, args.password_stdin) {
                (Some(p), _) => p,
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
                (None, false) => bail!(
                    "give the password: pipe it in with --password-stdin (e.g. `echo $TOKEN | boson registry login {} -u {} --password-stdin`)",
                    args.registry,
                    args.username
                ),
            };
            if password.is_empty() {
                bail!("the password is empty");
            }
            let credentials = auth::Credentials {
                username: args.username,
                password,
            };
            let path = super::login(&args.registry, credentials, args.insecure).await?;
            println!("Login succeeded; saved in {}", path.display());
            Ok(())
        }
    }
}
