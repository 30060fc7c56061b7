//! `boson new` and `boson add`: the flags (Spin's: `<template> <name>`, `-t`, `-o`) and what
//! each prints.

use std::path::PathBuf;

use crate::app::AppLocation;

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The template (see `--list`), then the app's name; with `-t`, only the name.
    #[arg(value_name = "TEMPLATE")]
    pub first: Option<String>,
    /// The app's name: lowercase letters, digits and '-' (the component id, folder and package
    /// name).
    #[arg(value_name = "NAME")]
    pub second: Option<String>,
    /// The template, as in `spin new -t http-rust hello`.
    #[arg(long, short = 't', value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// The folder to create (default: `./<name>`); it must not exist, or be empty.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// List the templates and exit.
    #[arg(long, conflicts_with_all = ["first", "second", "template", "output"])]
    pub list: bool,
}

/// Which template and name `new`/`add` were given: `<template> <name>`, or `-t <template> <name>`.
fn template_and_name(
    command: &str,
    flag: Option<&str>,
    first: Option<&str>,
    second: Option<&str>,
) -> anyhow::Result<(&'static super::Template, String)> {
    let usage = format!(
        "usage: `boson {command} <template> <name>` (or `-t <template> <name>`); the templates \
         are: {} (`boson new --list` describes them)",
        super::known_ids()
    );
    let (template, name) = match (flag, first, second) {
        (Some(t), Some(name), None) | (None, Some(t), Some(name)) => (t, name),
        (Some(t), Some(a), Some(b)) => anyhow::bail!(
            "`-t {t}` gives the template, so only the name may follow, not `{a} {b}`\n{usage}"
        ),
        (Some(t), None, _) => anyhow::bail!("`-t {t}`: give the name too\n{usage}"),
        (None, Some(only), None) => {
            let template = super::template(only)?;
            anyhow::bail!(
                "give a name after the template: `boson {command} {} <name>`",
                template.id
            )
        }
        (None, None, _) => anyhow::bail!("give a template and a name\n{usage}"),
    };
    Ok((super::template(template)?, name.to_string()))
}

impl NewArgs {
    pub fn run(&self) -> anyhow::Result<()> {
        if self.list {
            print!("{}", super::list());
            return Ok(());
        }
        let (template, name) = template_and_name(
            "new",
            self.template.as_deref(),
            self.first.as_deref(),
            self.second.as_deref(),
        )?;
        super::check_name(&name)?;
        let dir = self.output.clone().unwrap_or_else(|| PathBuf::from(&name));
        super::create_app(template, &name, &dir)?;
        println!(
            "Created app `{name}` ({}) in {}. Its README.md lists the tools the build needs; then:",
            template.id,
            dir.display()
        );
        println!("    cd {}", dir.display());
        println!("    boson build");
        println!("    boson up");
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The template (see `boson new --list`), then the component's name; with `-t`, only the
    /// name.
    #[arg(value_name = "TEMPLATE")]
    pub first: Option<String>,
    /// The component's name: lowercase letters, digits and '-' (its id, folder and route).
    #[arg(value_name = "NAME")]
    pub second: Option<String>,
    /// The template, as in `spin add -t http-rust api`.
    #[arg(long, short = 't', value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// The app: a manifest or a folder holding one (default: the current folder).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// The component's folder, relative to the manifest (default: `<name>`).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
}

impl AddArgs {
    pub fn run(&self) -> anyhow::Result<()> {
        let (template, name) = template_and_name(
            "add",
            self.template.as_deref(),
            self.first.as_deref(),
            self.second.as_deref(),
        )?;
        let manifest = match AppLocation::find(self.from.as_deref())? {
            AppLocation::Manifest(path) => path,
            AppLocation::Wasm(path) => anyhow::bail!(
                "{} is a component, not an app: `boson add` adds to a manifest (spin.toml)",
                path.display()
            ),
        };
        let added = super::add_component(template, &name, &manifest, self.output.as_deref())?;
        let route = match &added.route {
            Some(route) => format!(", answering on {route}"),
            None => String::new(),
        };
        println!(
            "Added component `{name}` ({}) in {}{route}. Its README.md lists the tools the build \
             needs; then:",
            template.id,
            added.folder.display()
        );
        if self.from.is_some()
            && let Some(app_dir) = manifest.parent().filter(|p| !p.as_os_str().is_empty())
        {
            println!("    cd {}", app_dir.display());
        }
        println!("    boson build");
        println!("    boson up");
        Ok(())
    }
}
