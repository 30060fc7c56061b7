//! A fixed-rate HTTP load generator for the benchmarks: wrk sends as fast as it can, but CPU
//! per request is only comparable between servers at the same request rate.
//!
//! `load URL RATE SECONDS [CONNECTIONS]` sends GET URL at RATE requests per second in total for
//! SECONDS, spread over CONNECTIONS keep-alive HTTP/1.1 connections (default 32), each on its
//! own schedule (offset so the requests interleave evenly). Prints one line:
//! `sent=N ok=N failed=N seconds=S rate=R p50_ms=X p99_ms=Y`. A connection that falls behind
//! catches up with a burst, so `rate` stays the target as long as the server keeps up.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

struct Args {
    url: hyper::Uri,
    rate: f64,
    duration: Duration,
    connections: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args.len() > 4 {
        bail!("usage: load URL RATE SECONDS [CONNECTIONS]");
    }
    let connections = match args.get(3) {
        Some(n) => n.parse().context("CONNECTIONS")?,
        None => 32,
    };
    Ok(Args {
        url: args[0].parse().context("URL")?,
        rate: args[1].parse().context("RATE")?,
        duration: Duration::from_secs_f64(args[2].parse().context("SECONDS")?),
        connections,
    })
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    /// Latency of each successful request, in microseconds.
    latencies: Vec<u32>,
}

/// One connection sending on its schedule until `end`; reconnects after an error.
async fn connection(url: hyper::Uri, period: Duration, first: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut ticks = tokio::time::interval_at(first.into(), period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sender = None;
    loop {
        let tick = ticks.tick().await.into_std();
        if tick >= end {
            return tally;
        }
        if sender.is_none() {
            match connect(&url).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.failed += 1;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else {
            continue;
        };
        let sent = Instant::now();
        match request(s, &url).await {
            Ok(()) => {
                tally.ok += 1;
                let micros = sent.elapsed().as_micros();
                tally
                    .latencies
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(_) => {
                tally.failed += 1;
                sender = None;
            }
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(url: &hyper::Uri) -> anyhow::Result<Sender> {
    let host = url.host().context("URL has no host")?;
    let port = url.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn request(sender: &mut Sender, url: &hyper::Uri) -> anyhow::Result<()> {
    sender.ready().await?;
    let authority = url.authority().context("URL has no host")?.as_str();
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if !status.is_success() {
        bail!("status {status}");
    }
    Ok(())
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // One thread: the generator's own CPU stays at most one core, whatever the rate.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tallies, seconds) = rt.block_on(async {
        let n = args.connections.max(1);
        let period = Duration::from_secs_f64(n as f64 / args.rate);
        let start = Instant::now() + Duration::from_millis(50);
        let end = start + args.duration;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let first = start + period.mul_f64(i as f64 / n as f64);
                tokio::spawn(connection(args.url.clone(), period, first, end))
            })
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await?);
        }
        anyhow::Ok((tallies, start.elapsed().as_secs_f64()))
    })?;
    let ok: u64 = tallies.iter().map(|t| t.ok).sum();
    let failed: u64 = tallies.iter().map(|t| t.failed).sum();
    let mut latencies: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies).collect();
    latencies.sort_unstable();
    println!(
        "sent={} ok={ok} failed={failed} seconds={seconds:.3} rate={:.0} p50_ms={:.3} p99_ms={:.3}",
        ok + failed,
        ok as f64 / args.duration.as_secs_f64(),
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
    );
    Ok(())
}
