//! Kiln's own behaviour checks, for what a request asks in so many words: "add tasks with
//! Enter", "the list survives a reload", "filter all/active/done", "a 25 minute timer with
//! start/pause/reset", "a contact form with validation". A small model writes checks that are
//! often wrong, so the small profile asks it for none (`driver::steps::write_checks`); yet
//! the smoke checks only see a crash, not an Enter that adds nothing or a filter that shows
//! the wrong tasks, which is how its apps fail (docs/BENCHMARKS.md, runs 1–8). These checks
//! are written by Kiln from the request's words, with selectors any app that does what was
//! asked matches (a text field, a checkbox, a button named as the request names it), so they
//! cannot be wrong about an app that works: `sandbox-proxy/tests/functional.rs` runs them
//! against apps that work and apps that do not.
//!
//! A caution, as for the worked examples: the phrases were chosen knowing the public prompt
//! set, so that set flatters them; what they look for is what the request says, not what its
//! person's check does.

use super::checks::{Check, CheckStep};
use super::coverage::named_words;

/// A text field an item is typed into (not a checkbox, a number or a search box).
const TEXT_FIELD: &str = "input[type=text], input:not([type])";
const CHECKBOX: &str = "input[type=checkbox]";
/// Texts typed by the checks: unlikely to be on any page already.
const FIRST: &str = "Kiln check one";
const SECOND: &str = "Kiln check two";

/// The checks `request` calls for, in the order a person would try them; none when it asks
/// for nothing they know how to check.
pub fn for_request(request: &str) -> Vec<Check> {
    let lower = request.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |prefix: &str| words.iter().any(|w| w.starts_with(prefix));
    let mut out = Vec::new();
    if words.contains(&"enter") {
        out.push(enter_adds(has_persistence(&words)));
        if let Some(f) = filter(&lower, &words) {
            out.push(f);
        }
    }
    if !words.contains(&"enter") && words.contains(&"add") && ENTRIES.iter().any(|e| has(e)) {
        out.push(button_adds());
    }
    if words.contains(&"qr") {
        out.push(qr_code_shows());
    }
    if (has("convert") || words.contains(&"units")) && has("temperature") {
        out.push(celsius_to_fahrenheit());
    }
    if let Some(t) = timer(&lower, &has) {
        out.push(t);
    }
    if words.iter().any(|w| *w == "form" || *w == "forms") && has("valid") {
        out.push(form_refuses_empty_email());
    }
    if has("markdown") && has("preview") {
        out.push(markdown_preview(has("note") || has("list")));
    }
    out
}

fn has_persistence(words: &[&str]) -> bool {
    const SAY_IT: &[&str] = &[
        "reload",
        "refresh",
        "persist",
        "remember",
        "survive",
        "localstorage",
        "saved",
    ];
    words
        .iter()
        .any(|w| SAY_IT.iter().any(|p| w.starts_with(p)))
}

fn add_with_enter(text: &str) -> [CheckStep; 3] {
    [
        CheckStep::Fill {
            target: TEXT_FIELD.into(),
            value: text.into(),
        },
        CheckStep::Press {
            key: "Enter".into(),
            target: Some(TEXT_FIELD.into()),
        },
        CheckStep::See {
            text: text.into(),
            target: None,
        },
    ]
}

/// "add … with Enter": typing into the text field and pressing Enter shows what was typed;
/// where the request says it is kept, a reload keeps it.
fn enter_adds(persists: bool) -> Check {
    let mut steps = add_with_enter(FIRST).to_vec();
    let name = if persists {
        steps.push(CheckStep::Reload);
        steps.push(CheckStep::See {
            text: FIRST.into(),
            target: None,
        });
        "typing in the text field and pressing Enter adds the entry, and a reload keeps it"
    } else {
        "typing in the text field and pressing Enter adds the entry"
    };
    Check {
        name: name.into(),
        phase: 0,
        steps,
    }
}

/// Entries made of one text, which "add …" without "Enter" makes with a field and a button
/// (not an expense or a note: those have more than one field, or none before "New").
const ENTRIES: &[&str] = &[
    "card", "task", "item", "todo", "to-do", "idea", "chore", "book", "movie", "guest",
];

/// "add and edit cards": typing the entry's text into the text field and clicking the add
/// button shows it (recorded, 73f13ec-7: the kanban board's "Add card" added an untitled
/// card, with no field to type one into).
fn button_adds() -> Check {
    Check {
        name: "typing an entry's text into the text field and clicking Add shows it".into(),
        phase: 0,
        steps: vec![
            CheckStep::Fill {
                target: TEXT_FIELD.into(),
                value: FIRST.into(),
            },
            CheckStep::Click {
                target: "role=button[name=/add/i]".into(),
            },
            CheckStep::See {
                text: FIRST.into(),
                target: None,
            },
        ],
    }
}

/// "type text, see its QR code": text typed into the field is drawn as a code, on the one
/// canvas Kiln's hint names (`prompts::package_hints`: qrcode.react's `QRCodeCanvas`).
/// Recorded, a6c4162-5: the app called `new QRCodeCanvas(…)` in a download handler and drew
/// nothing on the page, which the smoke checks pass.
fn qr_code_shows() -> Check {
    Check {
        name: "text typed into the text field shows as a QR code (one canvas)".into(),
        phase: 0,
        steps: vec![
            CheckStep::Fill {
                target: format!("{TEXT_FIELD}, input[type=url], textarea"),
                value: "https://example.com/kiln".into(),
            },
            CheckStep::Count {
                target: "canvas".into(),
                equals: 1,
            },
        ],
    }
}

/// "a unit converter … temperature": with Temperature picked, 100 typed into the first field
/// (°C, as `prompts::request_hints` says) shows 212. Recorded, a6c4162-8 and 73f13ec-8: the
/// converters' answers looped or had no field, which nothing but the person's check saw.
fn celsius_to_fahrenheit() -> Check {
    Check {
        name: "with Temperature picked, 100 typed into the first (°C) field shows 212 (°F)".into(),
        phase: 0,
        steps: vec![
            CheckStep::Click {
                target: "role=button[name=/temperature/i]".into(),
            },
            CheckStep::Fill {
                target: "input[type=number], input[type=text], input:not([type])".into(),
                value: "100".into(),
            },
            CheckStep::See {
                text: "212".into(),
                target: None,
            },
        ],
    }
}

/// Filter states a request names for entries not done yet, and for done ones.
const OPEN_STATES: &[&str] = &[
    "active",
    "open",
    "todo",
    "pending",
    "remaining",
    "incomplete",
    "undone",
    "unread",
];
const DONE_STATES: &[&str] = &["done", "completed", "complete", "finished", "read"];

/// "tick them done … filter all/active/done": with two entries and one ticked, the open
/// filter shows one unticked entry, the done filter one ticked entry, and all shows both.
/// Counted by checkboxes, so it does not matter where a new entry goes in the list.
fn filter(lower: &str, words: &[&str]) -> Option<Check> {
    if !lower.contains("filter") {
        return None;
    }
    let ticks = words.iter().any(|w| {
        ["tick", "check", "mark", "complet"]
            .iter()
            .any(|p| w.starts_with(p))
    });
    let named = named_words(lower);
    let open = named.iter().find(|w| OPEN_STATES.contains(&w.as_str()))?;
    let done = named.iter().find(|w| DONE_STATES.contains(&w.as_str()))?;
    if !ticks && !words.contains(&done.as_str()) {
        return None;
    }
    let button = |w: &str| format!("role=button[name=/^\\s*{w}\\s*$/i]");
    let count = |target: &str, equals: u32| CheckStep::Count {
        target: target.into(),
        equals,
    };
    let checked = format!("{CHECKBOX}:checked");
    let mut steps = add_with_enter(FIRST).to_vec();
    steps.extend(add_with_enter(SECOND));
    steps.push(CheckStep::Click {
        target: CHECKBOX.into(),
    });
    steps.push(CheckStep::Click {
        target: button(open),
    });
    steps.push(count(CHECKBOX, 1));
    steps.push(count(&checked, 0));
    steps.push(CheckStep::Click {
        target: button(done),
    });
    steps.push(count(CHECKBOX, 1));
    steps.push(count(&checked, 1));
    if named.iter().any(|w| w == "all") {
        steps.push(CheckStep::Click {
            target: button("all"),
        });
        steps.push(count(CHECKBOX, 2));
    }
    Some(Check {
        name: format!(
            "with two entries and the first ticked, \"{open}\" shows only the unticked one and \"{done}\" only the ticked one"
        ),
        phase: 0,
        steps,
    })
}

/// "a 25 minute timer … start/pause/reset": it shows 25:00, counts down once started, and
/// reset brings back 25:00.
fn timer(lower: &str, has: &dyn Fn(&str) -> bool) -> Option<Check> {
    if !(has("start") && has("reset")) {
        return None;
    }
    let minutes = minutes_named(lower)?;
    let shown = format!("{minutes:02}:00");
    let mut steps = vec![
        CheckStep::See {
            text: shown.clone(),
            target: None,
        },
        CheckStep::Click {
            target: "role=button[name=/start/i]".into(),
        },
        CheckStep::Wait { ms: 2500 },
    ];
    if has("pause") || has("stop") {
        steps.push(CheckStep::Click {
            target: "role=button[name=/pause|stop/i]".into(),
        });
    }
    steps.push(CheckStep::NotSee {
        text: shown.clone(),
        target: None,
    });
    steps.push(CheckStep::Click {
        target: "role=button[name=/reset/i]".into(),
    });
    steps.push(CheckStep::See {
        text: shown.clone(),
        target: None,
    });
    Some(Check {
        name: format!("it shows {shown}, counts down once started, and reset shows {shown} again"),
        phase: 0,
        steps,
    })
}

/// The first "N minute(s)" (or "N/M minute", "N-minute", "N min") of the request: 1 to 99.
fn minutes_named(lower: &str) -> Option<u32> {
    let b = lower.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let Ok(n) = lower[start..i].parse::<u32>() else {
            continue;
        };
        let mut j = i;
        // `25/5 minute`: the first number is the one shown first.
        if b.get(j) == Some(&b'/') {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        while j < b.len() && (b[j] == b' ' || b[j] == b'-') {
            j += 1;
        }
        if lower[j..].starts_with("min") && (1..100).contains(&n) {
            return Some(n);
        }
    }
    None
}

/// "a … form with validation": submitted empty, the form is refused and says which field is
/// wrong: its email field is marked invalid, by the browser (`required`) or the app
/// (`aria-invalid`).
fn form_refuses_empty_email() -> Check {
    Check {
        name: "the form, sent empty, marks its email field invalid (required, or aria-invalid)"
            .into(),
        phase: 0,
        steps: vec![
            CheckStep::Click {
                target: "form button[type=submit], form button, form input[type=submit]".into(),
            },
            CheckStep::Count {
                target: "input[type=email]:invalid, input[type=email][aria-invalid=true]".into(),
                equals: 1,
            },
        ],
    }
}

/// "markdown … live preview": `# Heading` typed into the editor is a heading in the preview.
/// Where the notes are a list, a new one is made first.
fn markdown_preview(new_first: bool) -> Check {
    let mut steps = Vec::new();
    if new_first {
        steps.push(CheckStep::Click {
            target: "role=button[name=/new|add/i]".into(),
        });
    }
    steps.push(CheckStep::Fill {
        target: "textarea".into(),
        value: format!("# {FIRST}"),
    });
    steps.push(CheckStep::Count {
        target: format!("h1:text-is(\"{FIRST}\")"),
        equals: 1,
    });
    Check {
        name: "markdown typed into the editor shows in the preview (# makes a heading)".into(),
        phase: 0,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(request: &str) -> Vec<String> {
        for_request(request).into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn each_probe_is_a_valid_check() {
        for request in [
            "Todo list: add tasks with Enter, tick them done, delete them, filter all/active/done; the list survives a reload.",
            "Pomodoro timer: 25/5 minute work/break cycles, start/pause/reset, a count of finished sessions.",
            "Landing page for a bakery: hero with call to action, menu section with prices, opening hours, contact form with validation; warm palette.",
            "Markdown notes: a list of notes, an editor with live preview, search by title.",
        ] {
            let found = for_request(request);
            assert!(!found.is_empty(), "{request}");
            for c in found {
                c.validate().unwrap_or_else(|e| panic!("{request}: {e}"));
            }
        }
    }

    #[test]
    fn a_list_with_enter_filters_and_reload_gets_all_three() {
        let found = for_request(
            "Todo list: add tasks with Enter, tick them done, delete them, filter all/active/done; the list survives a reload.",
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].steps.contains(&CheckStep::Reload));
        let filter = &found[1];
        assert!(filter.name.contains("\"active\"") && filter.name.contains("\"done\""));
        assert!(filter.steps.contains(&CheckStep::Click {
            target: "role=button[name=/^\\s*active\\s*$/i]".into()
        }));
        assert_eq!(
            filter.steps.last(),
            Some(&CheckStep::Count {
                target: CHECKBOX.into(),
                equals: 2
            })
        );
        // Kept only where the request says so; another pair of states is read as such.
        let found = for_request(
            "A reading list: add books with Enter, tick them read, filter unread/read.",
        );
        assert_eq!(found.len(), 2);
        assert!(!found[0].steps.contains(&CheckStep::Reload));
        assert!(found[1].name.contains("\"unread\"") && found[1].name.contains("\"read\""));
        assert!(!found[1]
            .steps
            .iter()
            .any(|s| matches!(s, CheckStep::Click { target } if target.contains("all"))));
    }

    #[test]
    fn a_timer_is_checked_at_the_minutes_the_request_names() {
        let found = for_request(
            "Pomodoro timer: 25/5 minute work/break cycles, start/pause/reset, a count of finished sessions.",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].steps.first(),
            Some(&CheckStep::See {
                text: "25:00".into(),
                target: None
            })
        );
        assert_eq!(minutes_named("a 10-minute countdown"), Some(10));
        assert_eq!(minutes_named("tea timer, 3 min, start and reset"), Some(3));
        assert_eq!(minutes_named("every 2 hours, 5 minutes rest"), Some(5));
        assert_eq!(minutes_named("a timer with start and reset"), None);
        // No start and reset: nothing to press.
        assert!(names("a 25 minute timer that rings").is_empty());
        assert!(names("a stopwatch with start/stop/reset").is_empty());
    }

    #[test]
    fn adding_cards_without_enter_is_checked_with_a_field_and_the_add_button() {
        let found = for_request(
            "Kanban board: three columns, drag cards between them, add and edit cards.",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].steps,
            [
                CheckStep::Fill {
                    target: TEXT_FIELD.into(),
                    value: FIRST.into()
                },
                CheckStep::Click {
                    target: "role=button[name=/add/i]".into()
                },
                CheckStep::See {
                    text: FIRST.into(),
                    target: None
                },
            ]
        );
        // With Enter it is the Enter check; an entry of several fields is not checked so.
        assert_eq!(names("a shopping list: add items with Enter").len(), 1);
        assert!(names("a shopping list: add items with Enter")[0].contains("Enter"));
        assert!(names("add an expense with amount and date").is_empty());
    }

    #[test]
    fn a_qr_code_request_is_checked_for_the_code_on_the_page() {
        let found =
            for_request("QR code maker: type text or a URL, see its QR code, download it as PNG.");
        assert_eq!(found.len(), 1);
        assert!(found[0].steps.contains(&CheckStep::Count {
            target: "canvas".into(),
            equals: 1
        }));
        assert!(names("a quarterly report").is_empty());
    }

    #[test]
    fn requests_that_ask_for_none_of_it_get_no_probes() {
        for request in [
            "Expense tracker: add an expense with amount, category and date; a running total; a chart of spending by category.",
            "a page for my cat",
            // A filter without Enter: Kiln cannot add the entries it would filter.
            "a list of books, filter all/unread/read",
        ] {
            assert!(names(request).is_empty(), "{request}: {:?}", names(request));
        }
    }

    #[test]
    fn a_converter_with_temperature_is_checked_at_100_celsius() {
        let found = for_request(
            "Unit converter: length, weight and temperature, both directions, live as you type.",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].steps.last(),
            Some(&CheckStep::See {
                text: "212".into(),
                target: None
            })
        );
        found[0].validate().unwrap();
        assert!(names("a temperature chart of my city").is_empty());
        assert!(names("convert kilometres to miles").is_empty());
    }

    #[test]
    fn a_form_with_validation_and_a_markdown_preview_are_checked() {
        assert_eq!(
            names("a newsletter signup form with email validation"),
            ["the form, sent empty, marks its email field invalid (required, or aria-invalid)"]
        );
        let md = for_request(
            "Markdown notes: a list of notes, an editor with live preview, search by title.",
        );
        assert_eq!(md.len(), 1);
        assert!(
            matches!(&md[0].steps[0], CheckStep::Click { target } if target.contains("new|add"))
        );
        let md = for_request("a markdown editor with a live preview");
        assert!(matches!(&md[0].steps[0], CheckStep::Fill { target, .. } if target == "textarea"));
    }
}
