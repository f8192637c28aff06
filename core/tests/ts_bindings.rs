//! The web UI's TypeScript types (`web/src/gen/`) are generated from the wire types in this
//! crate, never written by hand. This test renders them into a scratch directory and compares
//! them with the committed files; with `KILN_WRITE_TS=1` (`./kiln gen-types`) it writes them.
//!
//! Run: `cargo test -p kiln-core --features ts --test ts_bindings`.
#![cfg(feature = "ts")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_core::agent::blueprint::{Blueprint, DesignBrief, ImageSpec, Phase, Swatch};
use kiln_core::agent::checks::CheckReport;
use kiln_core::agent::llm::ChatMessage;
use kiln_core::agent::machine::{Generation, Step, Totals};
use kiln_core::api::*;
use kiln_core::diff::{Change, FileDiff};
use kiln_core::error::{ErrorBody, ErrorCode, ErrorDetail};
use kiln_core::ids::{OrgId, ProjectId, SessionId, UserId};
use kiln_core::path::ProjectPath;
use kiln_core::protocol::{ClientMsg, Encoding, PresenceUser, Sequenced, ServerEvent, VersionInfo};
use kiln_core::role::Role;
use kiln_core::sandbox::{DevServerStatus, Template};
use kiln_core::tree::FileMeta;
use ts_rs::{Config, Dummy, TS};

const INDEX_NOTE: &str = "// Generated from kiln-core by core/tests/ts_bindings.rs. Do not edit: run `./kiln gen-types`.\n";

/// Every file of the bindings (name → contents), `index.ts` included.
fn render() -> BTreeMap<String, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ts-bindings-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    // JSON numbers: every u64/i64 on the wire (revs, seqs, sizes, millis) stays below 2^53.
    let cfg = Config::new().with_large_int("number").with_out_dir(&dir);

    macro_rules! export {
        ($($t:ty),* $(,)?) => {$(
            <$t>::export_all(&cfg)
                .unwrap_or_else(|e| panic!("exporting {}: {e}", stringify!($t)));
        )*};
    }
    // The roots; `export_all` adds whatever they contain.
    export!(
        // WebSocket (core::protocol)
        ClientMsg,
        Sequenced,
        ServerEvent,
        Encoding,
        PresenceUser,
        VersionInfo,
        FileMeta,
        Blueprint,
        DesignBrief,
        Swatch,
        ImageSpec,
        Phase,
        CheckReport,
        Template,
        ProjectPath,
        // GET /api/projects/:id/generation
        Generation,
        // POST /api/projects/:id/dev-server/restart
        DevServerStatus,
        // GET /api/projects/:id/versions/:n/files
        kiln_core::api::VersionFile,
        // /api/projects/:id/publish
        kiln_core::sites::Site,
        kiln_core::sites::PublishState,
        kiln_core::sites::PublishRequest,
        // /api/tokens
        kiln_core::api::CreateToken,
        kiln_core::api::TokenInfo,
        kiln_core::api::TokenCreated,
        kiln_core::tokens::Scope,
        // /api/projects/:id/webhooks, /hooks/:id
        kiln_core::api::CreateWebhook,
        kiln_core::api::WebhookInfo,
        kiln_core::api::WebhookCreated,
        kiln_core::api::WebhookSecret,
        kiln_core::api::Delivery,
        kiln_core::api::HookAccepted,
        // /api/orgs/:org/usage, /api/projects/:id/usage
        kiln_core::usage::Usage,
        // /api/orgs/:org/credits
        kiln_core::api::Credits,
        kiln_core::api::CreditEntry,
        kiln_core::api::GrantCredits,
        // /api/projects/:id/notifications
        kiln_core::api::CreateNotifyTarget,
        kiln_core::api::NotifyTarget,
        kiln_core::api::NotifyTargetCreated,
        kiln_core::api::NotifyAttempt,
        Step,
        Totals,
        ChatMessage,
        // REST (core::api, core::error, core::diff)
        Credentials,
        User,
        AuthResponse,
        MeResponse,
        Org,
        CreateOrg,
        Member,
        AddMember,
        Invitation,
        InvitationStatus,
        UpdateMember,
        Project,
        CreateProject,
        UpdateProject,
        Page<Dummy>,
        Items<Dummy>,
        InvitationSent,
        InvitationAccepted,
        WsTicket,
        PreviewLink,
        CreateVersion,
        VersionDiff,
        StartGeneration,
        GenerationStarted,
        FileDiff,
        Change,
        ErrorBody,
        ErrorDetail,
        ErrorCode,
        Role,
        UserId,
        OrgId,
        ProjectId,
        SessionId,
    );

    let mut files = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("the bindings directory") {
        let path = entry.expect("a directory entry").path();
        assert!(path.is_file(), "{} is not a file", path.display());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(name, fs::read_to_string(&path).expect("a bindings file"));
    }
    fs::remove_dir_all(&dir).expect("removing the scratch directory");

    let mut index = String::from(INDEX_NOTE);
    for name in files.keys() {
        let ty = name.strip_suffix(".ts").expect("a .ts file");
        index += &format!("export type {{ {ty} }} from \"./{ty}\";\n");
    }
    files.insert("index.ts".to_owned(), index);
    files
}

fn gen_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src/gen")
}

/// The `.ts` files now in `dir` (a missing directory has none).
fn committed(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ts"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                fs::read_to_string(&p).expect("a committed bindings file"),
            )
        })
        .collect()
}

#[test]
fn typescript_bindings_are_up_to_date() {
    let want = render();
    let dir = gen_dir();
    let have = committed(&dir);

    if std::env::var("KILN_WRITE_TS").as_deref() == Ok("1") {
        fs::create_dir_all(&dir).expect("creating web/src/gen");
        for name in have.keys().filter(|n| !want.contains_key(*n)) {
            fs::remove_file(dir.join(name)).expect("removing a stale bindings file");
        }
        for (name, text) in &want {
            if have.get(name) != Some(text) {
                fs::write(dir.join(name), text).expect("writing a bindings file");
            }
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, text) in &want {
        match have.get(name) {
            None => problems.push(format!("web/src/gen/{name} is missing")),
            Some(t) if t != text => problems.push(format!("web/src/gen/{name} is stale")),
            Some(_) => {}
        }
    }
    for name in have.keys().filter(|n| !want.contains_key(*n)) {
        problems.push(format!(
            "web/src/gen/{name} is not generated from any Rust type (any more)"
        ));
    }
    assert!(
        problems.is_empty(),
        "the TypeScript bindings do not match the Rust types in kiln-core:\n  {}\n\
         run `./kiln gen-types` and commit web/src/gen/",
        problems.join("\n  ")
    );
}
