//! The `kiln-sandbox-proxy` binary: configuration from flags and environment, then serve.

use kiln_sandbox_proxy::config::{Config, SETTINGS};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("usage: kiln-sandbox-proxy [--setting value]... (or KILN_SANDBOX_SETTING=value)");
        for (name, help) in SETTINGS {
            eprintln!("  --{name:<20} {help}");
        }
        return;
    }
    let cfg = match Config::from_args_and_env(args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandbox-proxy: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = kiln_sandbox_proxy::serve(cfg).await {
        eprintln!("sandbox-proxy: {e}");
        std::process::exit(1);
    }
}
