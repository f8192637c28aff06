//! Prometheus text metrics: counters and a few gauges, no registry crate.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Metrics {
    pub requests: Counter,
    pub request_micros: Counter,
    pub sandboxes_created: Counter,
    pub sandboxes_stopped_idle: Counter,
    pub execs: Counter,
    pub exec_timeouts: Counter,
    pub exec_oom_kills: Counter,
    pub preview_requests: Counter,
    pub preview_micros: Counter,
    pub egress_tunnels: Counter,
    pub egress_denied: Counter,
    /// Egress connections refused because their sandbox held its maximum.
    pub egress_busy: Counter,
    /// Sandbox starts refused because their org ran its maximum (429).
    pub org_quota_refused: Counter,
    /// Vite reconnect pings refused (sandbox or dev server down, or no real use lately).
    pub preview_pings_refused: Counter,
}

impl Metrics {
    pub fn render(&self, running: usize, known: usize) -> String {
        let mut s = String::new();
        let mut c = |name: &str, help: &str, kind: &str, v: f64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        c(
            "kiln_sandboxes_running",
            "Sandboxes with live namespaces.",
            "gauge",
            running as f64,
        );
        c(
            "kiln_sandboxes_known",
            "Sandboxes with files on this host.",
            "gauge",
            known as f64,
        );
        c(
            "kiln_sandboxes_created_total",
            "Sandboxes created.",
            "counter",
            self.sandboxes_created.get() as f64,
        );
        c(
            "kiln_sandboxes_idle_stopped_total",
            "Sandboxes stopped by the idle reaper.",
            "counter",
            self.sandboxes_stopped_idle.get() as f64,
        );
        c(
            "kiln_sandbox_org_quota_refused_total",
            "Sandbox starts refused because their org ran its maximum at once.",
            "counter",
            self.org_quota_refused.get() as f64,
        );
        c(
            "kiln_execs_total",
            "Commands run.",
            "counter",
            self.execs.get() as f64,
        );
        c(
            "kiln_exec_timeouts_total",
            "Commands killed at their wall-clock limit.",
            "counter",
            self.exec_timeouts.get() as f64,
        );
        c(
            "kiln_exec_oom_kills_total",
            "Commands killed by the memory limit.",
            "counter",
            self.exec_oom_kills.get() as f64,
        );
        c(
            "kiln_preview_requests_total",
            "Requests through the preview proxy.",
            "counter",
            self.preview_requests.get() as f64,
        );
        c(
            "kiln_preview_pings_refused_total",
            "Vite reconnect pings refused so that an idle tab does not wake its sandbox.",
            "counter",
            self.preview_pings_refused.get() as f64,
        );
        c(
            "kiln_preview_seconds_sum",
            "Time to the upstream's response head, summed.",
            "counter",
            self.preview_micros.get() as f64 / 1e6,
        );
        c(
            "kiln_egress_tunnels_total",
            "CONNECT tunnels opened.",
            "counter",
            self.egress_tunnels.get() as f64,
        );
        c(
            "kiln_egress_denied_total",
            "CONNECT requests refused.",
            "counter",
            self.egress_denied.get() as f64,
        );
        c(
            "kiln_egress_busy_total",
            "Egress connections refused because their sandbox held its maximum.",
            "counter",
            self.egress_busy.get() as f64,
        );
        c(
            "kiln_http_requests_total",
            "API requests served.",
            "counter",
            self.requests.get() as f64,
        );
        c(
            "kiln_http_request_seconds_sum",
            "API request latency to the response head, summed.",
            "counter",
            self.request_micros.get() as f64 / 1e6,
        );
        s
    }
}
