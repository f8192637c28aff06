use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use kiln_e2e::{Kiln, User};
use serde_json::json;

use crate::{add_member, join, project, put};

/// The keys in the local R2 bucket, read from miniflare's own SQLite store.
fn r2_keys(kiln: &Kiln, prefix: &str) -> Vec<String> {
    let script = r#"
import glob, sqlite3, sys
keys = []
for f in glob.glob(sys.argv[1] + '/v3/r2/miniflare-R2BucketObject/*.sqlite'):
    if f.endswith('metadata.sqlite'):
        continue
    keys += [k for (k,) in sqlite3.connect(f).execute('SELECT key FROM _mf_objects')]
print('\n'.join(sorted(keys)))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&kiln.state_dir)
        .output()
        .expect("python3 reads the local R2 store");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|k| k.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn snapshot(kiln: &Kiln, user: &User, pid: &str, message: &str) -> serde_json::Value {
    kiln.post(
        &format!("/api/projects/{pid}/versions"),
        user.token(),
        json!({ "message": message }),
    )
    .expect(201)
}

fn read(kiln: &Kiln, user: &User, path: &str) -> (u16, Vec<u8>) {
    let headers = vec![("authorization".to_owned(), format!("Bearer {}", user.token))];
    let resp = kiln.raw_bytes("GET", path, &headers);
    (resp.0, resp.1)
}

fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = vec![];
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().expect("UTF-8 name").to_string(), data);
    }
    out
}

#[test]
fn versions_snapshot_diff_restore_and_export() {
    let kiln = Kiln::start();
    let (owner, pid) = project(&kiln, "versions");
    let logo: Vec<u8> = (0..=255u8).rev().collect();
    let v1_files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"same\n".to_vec()),
        ("b.txt", b"same\n".to_vec()),
        ("c/d.txt", b"same\n".to_vec()),
        ("e.txt", b"one\ntwo\nthree\n".to_vec()),
        ("img/logo.bin", logo.clone()),
    ];
    for (path, bytes) in &v1_files {
        put(&kiln, &owner, &pid, path, bytes, None).expect(201);
    }
    let v1 = snapshot(&kiln, &owner, &pid, "first");
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["parent"], serde_json::Value::Null);
    assert_eq!(v1["file_count"], 5);
    // Five files, three distinct contents: three blobs.
    assert_eq!(r2_keys(&kiln, "blobs/").len(), 3);
    assert_eq!(r2_keys(&kiln, "manifests/").len(), 1);

    put(&kiln, &owner, &pid, "e.txt", b"one\n2\nthree\n", Some(1)).expect(200);
    put(&kiln, &owner, &pid, "f.txt", b"new file\n", None).expect(201);
    let headers = vec![
        (
            "authorization".to_owned(),
            format!("Bearer {}", owner.token),
        ),
        ("if-match".to_owned(), "1".to_owned()),
    ];
    kiln.raw(
        "DELETE",
        &format!("/api/projects/{pid}/files/b.txt"),
        &headers,
        None,
    )
    .expect(204);
    let v2 = snapshot(&kiln, &owner, &pid, "second");
    assert_eq!(
        (v2["number"].as_u64(), v2["parent"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        r2_keys(&kiln, "blobs/").len(),
        5,
        "only the two new contents were added"
    );
    // Nothing changed: a new version, the same manifest, no new blob.
    let v3 = snapshot(&kiln, &owner, &pid, "");
    assert_eq!(v3["message"], "Snapshot");
    assert_eq!(r2_keys(&kiln, "blobs/").len(), 5);
    assert_eq!(r2_keys(&kiln, "manifests/").len(), 2);

    let list = kiln
        .get(&format!("/api/projects/{pid}/versions"), owner.token())
        .expect(200);
    let numbers: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1]);

    assert_eq!(
        read(
            &kiln,
            &owner,
            &format!("/api/projects/{pid}/versions/1/files/e.txt")
        ),
        (200, b"one\ntwo\nthree\n".to_vec())
    );
    assert_eq!(
        read(
            &kiln,
            &owner,
            &format!("/api/projects/{pid}/versions/1/files/img/logo.bin")
        ),
        (200, logo.clone())
    );
    kiln.get(
        &format!("/api/projects/{pid}/versions/2/files/b.txt"),
        owner.token(),
    )
    .expect_error(404, "not_found");
    kiln.get(
        &format!("/api/projects/{pid}/versions/9/files/a.txt"),
        owner.token(),
    )
    .expect_error(404, "not_found");
    kiln.get(
        &format!("/api/projects/{pid}/versions/x/files/a.txt"),
        owner.token(),
    )
    .expect_error(404, "not_found");

    let diff = kiln
        .get(
            &format!("/api/projects/{pid}/versions/1/diff/2"),
            owner.token(),
        )
        .expect(200);
    let files = diff["files"].as_array().unwrap();
    let by_path: BTreeMap<&str, &serde_json::Value> = files
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f))
        .collect();
    assert_eq!(
        by_path.keys().copied().collect::<Vec<_>>(),
        vec!["b.txt", "e.txt", "f.txt"]
    );
    assert_eq!(by_path["b.txt"]["change"], "removed");
    assert_eq!(by_path["f.txt"]["change"], "added");
    assert_eq!(by_path["e.txt"]["change"], "modified");
    let e = by_path["e.txt"]["diff"].as_str().unwrap();
    assert!(
        e.contains("--- a/e.txt\n+++ b/e.txt\n") && e.contains("\n-two\n+2\n"),
        "{e}"
    );
    assert!(by_path["f.txt"]["diff"]
        .as_str()
        .unwrap()
        .contains("+new file"));
    let none = kiln
        .get(
            &format!("/api/projects/{pid}/versions/2/diff/3"),
            owner.token(),
        )
        .expect(200);
    assert!(none["files"].as_array().unwrap().is_empty());

    // Restore: every client sees the changes; a new version records it.
    let (mut watcher, _) = join(&kiln, &pid, &owner);
    let v4 = kiln
        .post(
            &format!("/api/projects/{pid}/versions/1/restore"),
            owner.token(),
            json!({}),
        )
        .expect(201);
    assert_eq!(v4["number"], 4);
    assert_eq!(v4["message"], "Restore version 1");
    let events = watcher.drain(Duration::from_millis(1500));
    let kinds: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"] != "presence")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("file_deleted".into(), "f.txt".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("file_edited".into(), "e.txt".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("file_edited".into(), "b.txt".into())),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap().0, "version_created");
    for (path, bytes) in &v1_files {
        assert_eq!(
            read(&kiln, &owner, &format!("/api/projects/{pid}/files/{path}")),
            (200, bytes.clone()),
            "{path}"
        );
    }
    kiln.get(&format!("/api/projects/{pid}/files/f.txt"), owner.token())
        .expect_error(404, "not_found");
    // Versions are immutable: version 2 still has f.txt.
    assert_eq!(
        read(
            &kiln,
            &owner,
            &format!("/api/projects/{pid}/versions/2/files/f.txt")
        )
        .1,
        b"new file\n"
    );
    kiln.post(
        &format!("/api/projects/{pid}/versions/99/restore"),
        owner.token(),
        json!({}),
    )
    .expect_error(404, "not_found");

    // ZIP export round-trips byte for byte, with project paths only.
    let (status, zip_v2) = read(
        &kiln,
        &owner,
        &format!("/api/projects/{pid}/export.zip?version=2"),
    );
    assert_eq!(status, 200);
    let got = unzip(&zip_v2);
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for path in ["a.txt", "c/d.txt", "e.txt", "f.txt", "img/logo.bin"] {
        want.insert(
            path.to_owned(),
            read(
                &kiln,
                &owner,
                &format!("/api/projects/{pid}/versions/2/files/{path}"),
            )
            .1,
        );
    }
    assert_eq!(got, want);
    let (_, tree_zip) = read(&kiln, &owner, &format!("/api/projects/{pid}/export.zip"));
    let tree = unzip(&tree_zip);
    let expected: BTreeMap<String, Vec<u8>> = v1_files
        .iter()
        .map(|(p, b)| (p.to_string(), b.clone()))
        .collect();
    assert_eq!(tree, expected, "the working tree now equals version 1");
    kiln.get(
        &format!("/api/projects/{pid}/export.zip?version=42"),
        owner.token(),
    )
    .expect_error(404, "not_found");

    // A client reads versions and exports but cannot make or restore them.
    let client = add_member(&kiln, &owner, "versions-client", "client");
    kiln.get(&format!("/api/projects/{pid}/versions"), client.token())
        .expect(200);
    assert_eq!(
        read(
            &kiln,
            &client,
            &format!("/api/projects/{pid}/export.zip?version=1")
        )
        .0,
        200
    );
    kiln.post(
        &format!("/api/projects/{pid}/versions"),
        client.token(),
        json!({ "message": "x" }),
    )
    .expect_error(403, "forbidden");
    kiln.post(
        &format!("/api/projects/{pid}/versions/1/restore"),
        client.token(),
        json!({}),
    )
    .expect_error(403, "forbidden");
}
