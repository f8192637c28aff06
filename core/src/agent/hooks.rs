//! Hooks called outside a component, moved into it. A small model often writes a React file
//! as a script: `const [items, setItems] = useState([])` and the functions that use it at the
//! top of the module, with `App` below (or with no `App` at all, the JSX in a bare
//! `return (…)`). It type-checks, and then throws "Invalid hook call" on load: a blank page,
//! and a fix round the model rarely gets right. The repair is mechanical: the hook calls,
//! and every top-level statement that depends on what they declare, go into `App`'s body in
//! their order; a file with a bare `return` gets the `App` around it.
//!
//! The file is cut into top-level statements by lines: a statement begins on a line that
//! starts at column 0 with a name or keyword while no bracket is open. Brackets inside quotes
//! and comments on the same line do not count; model code is formatted, so that is enough,
//! and a file that does not balance is left alone.

use std::collections::BTreeSet;

/// `text` with its module-scope hooks moved into its component, and a note; `None` when it
/// has none or cannot be cut safely.
pub fn move_into_component(text: &str) -> Option<(String, String)> {
    let chunks = chunks(text)?;
    let kinds: Vec<Kind> = chunks.iter().map(|c| Kind::of(c)).collect();
    if !kinds.iter().any(|k| matches!(k, Kind::Hook(_))) {
        return None;
    }
    let app = kinds
        .iter()
        .position(|k| matches!(k, Kind::Component(n) if n == "App"));
    let bare_return = kinds.iter().position(|k| *k == Kind::Return);
    let has_default = chunks.iter().any(|c| c.starts_with("export default"));
    let (new, moved) = match (app, bare_return) {
        (Some(app), _) => into_app(&chunks, &kinds, app)?,
        (None, Some(ret)) if !has_default => wrap_in_app(&chunks, &kinds, ret)?,
        _ => return None,
    };
    let mut out = new.concat();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let note = format!(
        "moved {} out of the module's top level into App (hooks run only inside a component)",
        moved
    );
    Some((out, note))
}

/// What a top-level statement is, by its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `import …`, `export … from`, `type`, `interface`, `enum`, `declare`.
    Header,
    /// A hook called at module scope; the names it declares.
    Hook(Vec<String>),
    /// A capitalised function: a component (maybe `App`).
    Component(String),
    /// A function or any other declaration, with its name when it has one.
    Other(Option<String>),
    /// `return …` at column 0: a component's body written as a script.
    Return,
}

impl Kind {
    fn of(chunk: &str) -> Kind {
        let first = chunk.lines().next().unwrap_or("");
        let rest = first
            .strip_prefix("export default ")
            .or_else(|| first.strip_prefix("export "))
            .unwrap_or(first);
        let word = |s: &str| {
            s.split(|c: char| !is_ident_char(c))
                .next()
                .unwrap_or("")
                .to_owned()
        };
        if first.starts_with("import ")
            || first.starts_with("import{")
            || (first.starts_with("export ") && first.contains(" from "))
            || ["type ", "interface ", "enum ", "declare "]
                .iter()
                .any(|k| rest.starts_with(k))
        {
            return Kind::Header;
        }
        if rest.starts_with("return ") || rest == "return" || rest.starts_with("return(") {
            return Kind::Return;
        }
        for kw in ["const ", "let ", "var "] {
            if let Some(decl) = rest.strip_prefix(kw) {
                let (lhs, rhs) = decl.split_once('=').unwrap_or((decl, ""));
                let rhs = rhs.trim_start();
                if calls_hook(rhs) {
                    return Kind::Hook(bound_names(lhs));
                }
                let name = word(lhs.trim());
                let is_fn = rhs.starts_with('(')
                    || rhs.starts_with("async")
                    || rhs.starts_with("function")
                    || rhs.contains("=>");
                if is_fn && name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    return Kind::Component(name);
                }
                return Kind::Other(Some(name).filter(|n| !n.is_empty()));
            }
        }
        let f = rest.strip_prefix("async ").unwrap_or(rest);
        if let Some(sig) = f.strip_prefix("function ") {
            let name = word(sig.trim_start());
            if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return Kind::Component(name);
            }
            return Kind::Other(Some(name).filter(|n| !n.is_empty()));
        }
        if calls_hook(rest) {
            return Kind::Hook(vec![]);
        }
        Kind::Other(None)
    }
}

/// Whether an expression starts with a hook call: `useX(` or `useX<T>(`.
fn calls_hook(expr: &str) -> bool {
    let name: String = expr.chars().take_while(|c| is_ident_char(*c)).collect();
    name.len() > 3
        && name.starts_with("use")
        && name[3..].starts_with(|c: char| c.is_ascii_uppercase())
        && expr[name.len()..].trim_start().starts_with(['(', '<'])
}

/// The names a declaration's left side binds: `[a, setA]`, `{ x, y: z }`, `name: Type`.
fn bound_names(lhs: &str) -> Vec<String> {
    let lhs = lhs.trim();
    let inner = lhs
        .strip_prefix('[')
        .and_then(|l| l.split_once(']'))
        .or_else(|| lhs.strip_prefix('{').and_then(|l| l.split_once('}')))
        .map(|(i, _)| i);
    match inner {
        Some(list) => list
            .split(',')
            .map(|part| part.rsplit(':').next().unwrap_or("").trim())
            .map(|n| n.split('=').next().unwrap_or("").trim().to_owned())
            .filter(|n| !n.is_empty() && n.chars().all(is_ident_char))
            .collect(),
        None => {
            let name: String = lhs.chars().take_while(|c| is_ident_char(*c)).collect();
            if name.is_empty() {
                vec![]
            } else {
                vec![name]
            }
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn mentions(chunk: &str, names: &BTreeSet<String>) -> bool {
    let mut word = String::new();
    for c in chunk.chars().chain(std::iter::once(' ')) {
        if is_ident_char(c) {
            word.push(c);
        } else if !word.is_empty() {
            if names.contains(&word) {
                return true;
            }
            word.clear();
        }
    }
    false
}

/// The hooks and what depends on them (to a fixed point), as chunk indices.
fn dependents(chunks: &[String], kinds: &[Kind], skip: usize) -> BTreeSet<usize> {
    let mut names = BTreeSet::new();
    let mut moved = BTreeSet::new();
    for (i, k) in kinds.iter().enumerate() {
        if let Kind::Hook(bound) = k {
            moved.insert(i);
            names.extend(bound.iter().cloned());
        }
    }
    loop {
        let mut grew = false;
        for (i, k) in kinds.iter().enumerate() {
            if i == skip || moved.contains(&i) || matches!(k, Kind::Header | Kind::Return) {
                continue;
            }
            if mentions(&chunks[i], &names) {
                moved.insert(i);
                if let Kind::Component(n) | Kind::Other(Some(n)) = k {
                    names.insert(n.clone());
                }
                grew = true;
            }
        }
        if !grew {
            return moved;
        }
    }
}

fn indented(chunk: &str) -> String {
    let chunk = chunk.strip_prefix("export ").unwrap_or(chunk);
    let mut out = String::new();
    for line in chunk.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line);
        } else {
            out.push_str("  ");
            out.push_str(line);
        }
    }
    out
}

fn into_app(chunks: &[String], kinds: &[Kind], app: usize) -> Option<(Vec<String>, usize)> {
    let moved = dependents(chunks, kinds, app);
    // The body opens on the first line of the declaration that ends with `{`.
    let app_chunk = &chunks[app];
    let open = app_chunk
        .split_inclusive('\n')
        .position(|l| l.trim_end().ends_with('{'))?;
    let lines: Vec<&str> = app_chunk.split_inclusive('\n').collect();
    let mut body = String::new();
    for i in &moved {
        body.push_str(&indented(chunks[*i].trim_end()));
        body.push('\n');
    }
    let mut new_app: String = lines[..=open].concat();
    new_app.push_str(&body);
    new_app.push_str(&lines[open + 1..].concat());
    let out = chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| !moved.contains(i))
        .map(|(i, c)| if i == app { new_app.clone() } else { c.clone() })
        .collect();
    Some((out, moved.len()))
}

fn wrap_in_app(chunks: &[String], kinds: &[Kind], ret: usize) -> Option<(Vec<String>, usize)> {
    let first = kinds.iter().position(|k| matches!(k, Kind::Hook(_)))?;
    if first > ret {
        return None;
    }
    let mut out: Vec<String> = chunks[..first].to_vec();
    let mut body = String::from("export default function App() {\n");
    for c in &chunks[first..=ret] {
        body.push_str(&indented(c.trim_end()));
        body.push('\n');
    }
    body.push_str("}\n");
    out.push(body);
    out.extend(chunks[ret + 1..].iter().cloned());
    Some((out, ret - first + 1))
}

/// The file's top-level statements, each with its trailing blank lines; `None` when the
/// brackets do not balance.
fn chunks(text: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut depth: i64 = 0;
    let mut in_block_comment = false;
    let mut in_template = false;
    for line in text.split_inclusive('\n') {
        let starts_statement = depth == 0
            && !in_block_comment
            && !in_template
            && line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$');
        if starts_statement || out.is_empty() {
            out.push(String::new());
        }
        out.last_mut()?.push_str(line);
        let mut chars = line.chars().peekable();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            if in_block_comment {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    in_block_comment = false;
                }
                continue;
            }
            if in_template {
                if c == '`' {
                    in_template = false;
                }
                continue;
            }
            if let Some(q) = quote {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '/' if chars.peek() == Some(&'/') => break,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    in_block_comment = true;
                }
                '\'' | '"' => quote = Some(c),
                '`' => in_template = true,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return None;
            }
        }
    }
    (depth == 0 && !in_template && !in_block_comment).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run 92ccf79's expense tracker, as the model wrote it (shortened): its state and the
    /// functions that use it at the top of the module, App below.
    const EXPENSE: &str = "import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Expense = {
  id: number
  amount: number
}

const [expenses, setExpenses] = usePersistentState<Expense[]>('expenses', [])
const [total, setTotal] = useState(0)

function add() {
  const amount = parseFloat(prompt('Enter expense amount'))
  setExpenses([...expenses, { id: Date.now(), amount }])
  setTotal(total + amount)
}

function Total() {
  return (
    <p data-testid=\"total\">Total: {total.toFixed(2)}</p>
  )
}

const LABEL = 'Expenses'

export default function App() {
  return (
    <main>
      <h1>{LABEL}</h1>
      <button onClick={add}>Add</button>
      <Total />
    </main>
  )
}
";

    #[test]
    fn module_scope_hooks_and_what_uses_them_move_into_app() {
        let (out, note) = move_into_component(EXPENSE).expect("a repair");
        assert!(note.contains("moved 4"), "{note}");
        assert_eq!(
            out,
            "import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Expense = {
  id: number
  amount: number
}

const LABEL = 'Expenses'

export default function App() {
  const [expenses, setExpenses] = usePersistentState<Expense[]>('expenses', [])
  const [total, setTotal] = useState(0)
  function add() {
    const amount = parseFloat(prompt('Enter expense amount'))
    setExpenses([...expenses, { id: Date.now(), amount }])
    setTotal(total + amount)
  }
  function Total() {
    return (
      <p data-testid=\"total\">Total: {total.toFixed(2)}</p>
    )
  }
  return (
    <main>
      <h1>{LABEL}</h1>
      <button onClick={add}>Add</button>
      <Total />
    </main>
  )
}
"
        );
        // Done once, there is nothing left to move.
        assert_eq!(move_into_component(&out), None);
    }

    /// Run 92ccf79's unit converter (shortened): the whole component as a script, with its
    /// JSX in a bare `return` and no App.
    #[test]
    fn a_component_written_as_a_script_gets_its_app() {
        let script = "import { useState } from 'react'

// Length conversion
const lengthUnits = ['m', 'cm']

const [value, setValue] = useState('')

const convert = () => {
  return Number(value) * 100
}

// Render the app
return (
  <main>
    <input value={value} onChange={(e) => setValue(e.target.value)} />
    <p>{convert()} {lengthUnits[1]}</p>
  </main>
)
";
        let (out, _) = move_into_component(script).expect("a repair");
        assert_eq!(
            out,
            "import { useState } from 'react'

// Length conversion
const lengthUnits = ['m', 'cm']

export default function App() {
  const [value, setValue] = useState('')
  const convert = () => {
    return Number(value) * 100
  }

  // Render the app
  return (
    <main>
      <input value={value} onChange={(e) => setValue(e.target.value)} />
      <p>{convert()} {lengthUnits[1]}</p>
    </main>
  )
}
"
        );
    }

    #[test]
    fn files_without_module_scope_hooks_or_that_do_not_balance_are_left_alone() {
        let fine = "import { useState } from 'react'\n\nexport default function App() {\n  const [n, setN] = useState(0)\n  return <button onClick={() => setN(n + 1)}>{n}</button>\n}\n";
        assert_eq!(move_into_component(fine), None);
        let custom_hook = "export function useThing() {\n  return useState(0)\n}\n";
        assert_eq!(move_into_component(custom_hook), None);
        let broken = "const [a, setA] = useState(0)\nexport default function App() {\n  return (\n";
        assert_eq!(move_into_component(broken), None);
        // Quotes, comments and template literals do not unbalance the cut.
        let tricky = "const [a, setA] = useState('(')\n/* { */\nconst s = `{\n`\nexport default function App() {\n  // }\n  return <p>{a}{s}</p>\n}\n";
        let (out, _) = move_into_component(tricky).expect("a repair");
        assert!(
            out.contains("function App() {\n  const [a, setA] = useState('(')\n"),
            "{out}"
        );
    }

    #[test]
    fn the_names_a_declaration_binds_are_read_from_its_pattern() {
        assert_eq!(bound_names("[todos, setTodos] "), ["todos", "setTodos"]);
        assert_eq!(bound_names("{ data, error: err } "), ["data", "err"]);
        assert_eq!(bound_names("ref: HTMLDivElement "), ["ref"]);
        assert!(calls_hook("useState<number>(0)"));
        assert!(calls_hook("usePersistentState ('k', [])"));
        assert!(!calls_hook("user.name"));
        assert!(!calls_hook("useless"));
    }
}
