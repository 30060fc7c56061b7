//! Resource limits: the defaults, the runtime-config file that overrides them per component, and
//! the parsers for human sizes and durations (`256MiB`, `30s`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::runtime_config::LimitsSection;
use anyhow::{Context as _, bail};

/// The limits one component runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Wall-clock and CPU deadline for one request (epoch interruption plus a timer).
    pub timeout: Duration,
    /// Largest linear memory one instance may grow to, in bytes.
    pub memory: usize,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_request_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory: 256 << 20,
            max_request_body: 16 << 20,
        }
    }
}

/// Global limits plus per-component overrides.
#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    pub defaults: Limits,
    pub per_component: BTreeMap<String, Limits>,
}

impl LimitsConfig {
    pub fn for_component(&self, id: &str) -> Limits {
        self.per_component.get(id).copied().unwrap_or(self.defaults)
    }

    /// Applies a runtime config's `[limits]` on top of `defaults`.
    pub fn from_section(
        section: &LimitsSection,
        defaults: Limits,
        file: &Path,
    ) -> anyhow::Result<Self> {
        let global = apply(defaults, section, file, "[limits]")?;
        let mut per_component = BTreeMap::new();
        for (id, table) in &section.component {
            if !table.component.is_empty() {
                bail!(
                    "{}: [limits.component.{id}] cannot nest further components",
                    file.display()
                );
            }
            let l = apply(global, table, file, &format!("[limits.component.{id}]"))?;
            per_component.insert(id.clone(), l);
        }
        Ok(Self {
            defaults: global,
            per_component,
        })
    }
}

fn apply(base: Limits, t: &LimitsSection, path: &Path, section: &str) -> anyhow::Result<Limits> {
    let ctx = |field: &str| format!("{}: {section} {field}", path.display());
    Ok(Limits {
        timeout: match &t.timeout {
            Some(v) => parse_duration(v).with_context(|| ctx("timeout"))?,
            None => base.timeout,
        },
        memory: match &t.memory {
            Some(v) => usize::try_from(parse_size(v).with_context(|| ctx("memory"))?)?,
            None => base.memory,
        },
        max_request_body: match &t.max_request_body {
            Some(v) => parse_size(v).with_context(|| ctx("max_request_body"))?,
            None => base.max_request_body,
        },
    })
}

/// Parses `500ms`, `30s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration; write e.g. `500ms`, `30s` or `2m`"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => bail!("`{s}`: unknown duration unit `{other}`; use ms, s, m or h"),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        bail!("`{s}`: a duration must be greater than zero");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1024`, `64KiB`, `256MiB`, `1GiB`, `10MB` into bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a size; write e.g. `256MiB` or `1048576`"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => bail!("`{s}`: unknown size unit `{other}`; use KiB, MiB or GiB"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_config::RuntimeConfig;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("17").unwrap(), 17);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn runtime_config_overrides_per_component() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.toml");
        std::fs::write(
            &path,
            "[limits]\ntimeout = \"5s\"\n[limits.component.slow]\ntimeout = \"200ms\"\nmemory = \"64MiB\"\n",
        )
        .unwrap();
        let load = |path: &Path| {
            let rc = RuntimeConfig::load(path)?;
            LimitsConfig::from_section(&rc.limits, Limits::default(), path)
        };
        let cfg = load(&path).unwrap();
        assert_eq!(cfg.for_component("any").timeout, Duration::from_secs(5));
        assert_eq!(
            cfg.for_component("slow").timeout,
            Duration::from_millis(200)
        );
        assert_eq!(cfg.for_component("slow").memory, 64 << 20);
        std::fs::write(&path, "[limits]\ntimeuot = \"5s\"\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("timeuot"), "{err}");
    }
}
