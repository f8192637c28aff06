//! The `kiln-sandbox-proxy` binary: configuration from flags and environment, then serve.

use kiln_sandbox_proxy::config::{Config, SETTINGS};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `credential <host-id>`: the fleet credential a host is started with, signed with the
    // edge's KILN_FLEET_SECRET (run where that secret is, never on the host).
    if args.first().map(String::as_str) == Some("credential") {
        let secret = std::env::var("KILN_FLEET_SECRET").unwrap_or_default();
        match args
            .get(1)
            .map(|id| kiln_sandbox_proxy::fleet::mint_credential(&secret, id))
        {
            Some(Ok(token)) => println!("{token}"),
            Some(Err(e)) => {
                eprintln!("sandbox-proxy credential: {e}");
                std::process::exit(2);
            }
            None => {
                eprintln!("usage: KILN_FLEET_SECRET=... kiln-sandbox-proxy credential <host-id>");
                std::process::exit(2);
            }
        }
        return;
    }
    // `layers [--cache-dir DIR]`: install the templates' and tools' node_modules layers now,
    // so an image built with them needs no registry when it starts.
    if args.first().map(String::as_str) == Some("layers") {
        let cache = match args.get(1..) {
            Some([flag, dir]) if flag == "--cache-dir" => dir.clone(),
            Some([]) => "/var/cache/kiln-sandbox".into(),
            _ => {
                eprintln!("usage: kiln-sandbox-proxy layers [--cache-dir DIR]");
                std::process::exit(2);
            }
        };
        if let Err(e) = kiln_sandbox_proxy::templates::install_all(cache.as_ref()).await {
            eprintln!("sandbox-proxy layers: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("usage: kiln-sandbox-proxy [--setting value]... (or KILN_SANDBOX_SETTING=value)");
        eprintln!("       KILN_FLEET_SECRET=... kiln-sandbox-proxy credential <host-id>");
        eprintln!("       kiln-sandbox-proxy layers [--cache-dir DIR]");
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
