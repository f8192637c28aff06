#!/usr/bin/env python3
"""Turns the model calls a bench run recorded (`KILN_RECORD_LLM`, bench/record-llm.py) into
fixtures for the native replay harness (core/tests/recorded.rs): one JSON file per app with
each call's kind, the model's answer, its usage and time, and for a fix the failures it was
shown and the files quoted to it (the recorded state the deterministic repairs run on).
Prompts are not kept: they are the code's, and rebuilt by it.

    python3 bench/recordings.py CALLS.jsonl APPS.txt OUT_DIR COMMIT
APPS.txt is bench/apps.py's output (one JSON line per app, in order).
"""
import json
import re
import sys

KINDS = [("You are the planner", "plan"), ("You are a senior front-end engineer", "code"),
         ("You write acceptance checks", "test"), ("You fix bugs", "fix"), ("You change an existing", "edit")]


def kind(req):
    system = req["messages"][0]["content"] if req.get("messages") else ""
    return next((k for prefix, k in KINDS if system.startswith(prefix)), "other")


def main():
    calls_path, apps_path, out_dir, commit = sys.argv[1:5]
    calls = [json.loads(l) for l in open(calls_path, encoding="utf-8")]
    apps = [json.loads(l) for l in open(apps_path, encoding="utf-8") if l.startswith("{")]
    # A new app starts with a planner call, or (the small profile asks no planner) with a
    # coder call for an app of another name ("App: NAME — …" in its brief).
    runs, cur, cur_name = [], None, None
    for c in calls:
        k = kind(c["request"])
        m = re.search(r"^App: (.+?) — ", c["request"]["messages"][-1]["content"], re.M)
        name = m.group(1) if m and k in ("code", "fix") else None
        planned_only = cur is not None and all(x["kind"] == "plan" for x in cur)
        if (k == "plan" and (cur is None or not planned_only)) or (
                k == "code" and name != cur_name and not planned_only):
            cur = []
            runs.append(cur)
        if name:
            cur_name = name
        if cur is None:
            continue
        rec = {"kind": k, "answer": c["answer"], "usage": c.get("usage"), "secs": c["secs"],
               "status": c["status"]}
        if k == "fix":
            user = c["request"]["messages"][-1]["content"]
            m = re.search(r"The check failed with:\n(.*?)\n\n(?:The user has just asked|Current files:)", user, re.S)
            rec["failures"] = m.group(1) if m else ""
            quoted = re.findall(r'<file path="([^"]+)">\n(.*?)\n</file>\n', user, re.S)
            # The code and its manifest: what the type-check and the repairs read.
            rec["files"] = {p: t for p, t in quoted
                            if re.search(r"\.(tsx?|jsx?|html|css)$", p) or p == "package.json"}
        if k == "plan":
            rec["prompt"] = c["request"]["messages"][-1]["content"]
        cur.append(rec)
    for app, run in zip(apps, runs):
        slug = re.sub(r"[^a-z0-9]+", "-", app["app"].lower()).strip("-")
        out = {"about": f"{app['app']}: the local model's calls in bench run {commit}",
               "model": calls[0]["request"].get("model"), "commit": commit, "app": app["app"],
               "end": app["end"], "worked": app["worked"], "calls": run}
        path = f"{out_dir}/{commit}-{app['n']}-{slug}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(path, len(run), "calls")


if __name__ == "__main__":
    main()
