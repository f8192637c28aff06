//! What a request names that a person will look for on the page. "filter all/active/done",
//! "start/pause/reset", "amount, category and date", "length, weight and temperature": the
//! items of a request's lists are the buttons, fields and labels its person checks first,
//! and the ones a small model most often leaves out. Kiln's own check (`checks::mentions`)
//! looks for each on the page — in its text, labels, placeholders and control names — and a
//! missing one goes to the fixer as plainly as a crash would.

/// At most this many words are looked for.
const MAX_WORDS: usize = 10;

/// The words of `request`'s lists, lower case, in order, each once.
pub fn named_words(request: &str) -> Vec<String> {
    let tokens: Vec<&str> = request.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut add = |w: &str| {
        let w = w.to_lowercase();
        if w.len() >= 2 && !out.contains(&w) && out.len() < MAX_WORDS {
            out.push(w);
        }
    };
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        // `all/active/done`: every part a word (not `25/5`, not a URL or a path).
        let bare = trim_punct(t);
        if bare.contains('/') {
            let parts: Vec<&str> = bare.split('/').collect();
            if parts.len() >= 2 && parts.iter().all(|p| is_word(p)) {
                for p in parts {
                    add(p);
                }
            }
            i += 1;
            continue;
        }
        // `amount, category and date`: three or more one-word items.
        if let Some((items, next)) = comma_list(&tokens, i) {
            for w in items {
                add(w);
            }
            i = next;
            continue;
        }
        i += 1;
    }
    out
}

/// The list starting at `tokens[i]`, and the index after it.
fn comma_list<'a>(tokens: &[&'a str], i: usize) -> Option<(Vec<&'a str>, usize)> {
    let mut items = Vec::new();
    let mut j = i;
    while let Some(t) = tokens.get(j) {
        match t.strip_suffix(',') {
            Some(w) if is_item(w) => {
                items.push(w);
                j += 1;
            }
            _ => break,
        }
    }
    if items.is_empty() {
        return None;
    }
    let conj = |t: &str| t == "and" || t == "or";
    // `a, b and c` or `a, b, and c`.
    let (last, after) = match (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2)) {
        (Some(c), Some(w), _) if conj(c) => (*w, j + 2),
        (Some(w), Some(c), Some(z)) if conj(c) && is_item(w) => {
            items.push(w);
            (*z, j + 3)
        }
        _ => return None,
    };
    let last = trim_punct(last);
    if !is_item(last) {
        return None;
    }
    items.push(last);
    (items.len() >= 3).then_some((items, after))
}

fn trim_punct(t: &str) -> &str {
    t.trim_matches(|c: char| {
        matches!(
            c,
            ',' | '.' | ';' | ':' | '!' | '?' | '"' | '\'' | '(' | ')'
        )
    })
}

fn is_word(w: &str) -> bool {
    w.len() >= 2 && w.chars().all(|c| c.is_alphabetic())
}

/// Words that end a clause rather than name a thing ("drag cards between them, add and edit
/// cards" is no list).
const NOT_ITEMS: &[&str] = &[
    "it", "them", "they", "this", "that", "these", "those", "me", "you", "us",
];

fn is_item(w: &str) -> bool {
    is_word(w) && !NOT_ITEMS.contains(&w.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_items_of_a_requests_lists_are_the_words_looked_for() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Todo list: add tasks with Enter, tick them done, delete them, filter all/active/done; the list survives a reload.",
                &["all", "active", "done"],
            ),
            (
                "Expense tracker: add an expense with amount, category and date; a running total; a chart of spending by category.",
                &["amount", "category", "date"],
            ),
            (
                "Pomodoro timer: 25/5 minute work/break cycles, start/pause/reset, a count of finished sessions.",
                &["work", "break", "start", "pause", "reset"],
            ),
            (
                "Unit converter: length, weight and temperature, both directions, live as you type.",
                &["length", "weight", "temperature"],
            ),
            ("a form with name, email, and message", &["name", "email", "message"]),
            // No list of one-word items, nothing to look for.
            (
                "Landing page for a bakery: hero with call to action, menu section with prices, opening hours, contact form with validation; warm palette.",
                &[],
            ),
            ("QR code maker: type text or a URL, see its QR code, download it as PNG.", &[]),
            ("Kanban board: three columns, drag cards between them, add and edit cards.", &[]),
            ("fetch https://example.com/a/b and show it", &[]),
        ];
        for (request, want) in cases {
            assert_eq!(named_words(request), *want, "{request}");
        }
    }

    #[test]
    fn words_are_kept_once_and_at_most_ten() {
        assert_eq!(
            named_words("Start/stop, then START/Stop"),
            ["start", "stop"]
        );
        let many = (b'a'..=b'z')
            .map(|c| format!("{0}{0}", c as char))
            .collect::<Vec<_>>()
            .join("/");
        assert_eq!(named_words(&many).len(), MAX_WORDS);
    }
}
