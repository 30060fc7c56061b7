//! Transfer progress: one bar per layer when stderr is a terminal, one log line per layer
//! otherwise (CI logs and pipes get no control characters).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress of one push or pull.
pub struct Transfer {
    bars: Option<MultiProgress>,
}

impl Transfer {
    pub fn new() -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self {
            bars: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Starts reporting one layer of `size` bytes, described by `label`.
    pub fn layer(&self, label: String, size: u64) -> Layer {
        let bar = self.bars.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:40!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_message(label.clone());
            bar
        });
        Layer { bar, label, size }
    }
}

/// One layer's progress.
#[derive(Clone)]
pub struct Layer {
    bar: Option<ProgressBar>,
    label: String,
    size: u64,
}

impl Layer {
    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Ends the layer with `outcome` ("pushed", "pulled", "already there", ...).
    pub fn finish(self, outcome: &str) {
        match self.bar {
            Some(bar) => {
                bar.set_position(self.size);
                bar.finish_with_message(format!("{} ({outcome})", self.label));
            }
            None => tracing::info!("{}: {outcome} ({})", self.label, human_size(self.size)),
        }
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_well() {
        assert_eq!(super::human_size(12), "12 B");
        assert_eq!(super::human_size(1536), "1.5 KiB");
        assert_eq!(super::human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
