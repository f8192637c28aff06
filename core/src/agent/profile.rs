//! Model profiles: the same pipeline serves a 1.5B local model and a frontier hosted one; what
//! differs between them is decided here, from the configured model (`KILN_MODEL_PROFILE`
//! overrides), so each difference is one place to read and test.

/// How capable the configured model is taken to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A small local model (the embedded default): gate only on what breaks the app.
    Small,
    /// A large hosted model: hold the code to the strict type-check too.
    Large,
}

impl Profile {
    /// `small` / `large` from the override; otherwise from the model's name: a size written
    /// in it (`…-1.5b-…`, `7B`) of at most 14 billion parameters is small, anything else
    /// (hosted models name no size) large.
    pub fn choose(model: &str, set: Option<&str>) -> Profile {
        match set.map(str::trim) {
            Some("small") => return Profile::Small,
            Some("large") => return Profile::Large,
            _ => {}
        }
        let name = model.to_ascii_lowercase();
        let small = name
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .filter_map(|part| part.strip_suffix('b'))
            .filter_map(|n| n.parse::<f32>().ok())
            .any(|billions| billions > 0.0 && billions <= 14.0);
        if small {
            Profile::Small
        } else {
            Profile::Large
        }
    }

    /// Whether a type-check diagnostic (`TSnnnn`) stops the app from being checked in the
    /// browser. A syntax error, a name or module that does not exist or an export that is
    /// missing breaks the page (Vite cannot transform it, or it throws on load); a type
    /// complaint of strict mode (implicit `any`, a mismatched prop type, an unused name) does
    /// not, and the browser checks judge what the app does. The small profile blocks on the
    /// first kind only; the large one on every diagnostic.
    pub fn blocks(self, code: u32) -> bool {
        match self {
            Profile::Large => true,
            Profile::Small => !TYPE_ONLY.contains(&code) && !(7000..8000).contains(&code),
        }
    }
}

impl Profile {
    /// Fix rounds per phase. A small model's new app is repaired by fresh tries, and it
    /// passes on one try in a few: in runs 9–12 most apps that failed had used their three
    /// rounds by 200–400 s of their 10 minutes (a try is 30–110 s), and a pass came as late as
    /// the fourth try. So it gets six, where the rest (a large model, a follow-up's edits)
    /// gets three.
    pub fn fix_rounds(self, new_app: bool) -> u32 {
        match self {
            Profile::Small if new_app => 6,
            _ => super::machine::MAX_FIX_ROUNDS,
        }
    }
}

/// The longest answer the small profile waits for, in tokens. Its answers are one file: the
/// longest that ended of run 9's 22 was 1,162 tokens. The unit converter of that run wrote
/// near-repeats (the same `if` with other units, which no exact-repeat guard sees) for all
/// of its 10 minutes; at 10–15 tokens/s this cap ends such an answer in about 4 minutes, and
/// it is asked again, warmer.
pub const SMALL_ANSWER_TOKENS: u32 = 3000;

/// Diagnostics about types alone, which a small model cannot be asked to satisfy in time and
/// which do not change what the page does: unused names (6xxx), assignability and argument
/// types, missing or excess props, possibly-null values. Implicit `any` (7xxx) is matched by
/// range.
const TYPE_ONLY: &[u32] = &[
    6133, 6192, 6196, 6198, // declared but never used
    2322, 2345, 2352, 2353, 2739, 2740, 2741, 2769, // types do not match
    2554, 2555, // argument counts
    2531, 2532, 2533, 18046, 18047, 18048, 18049, // possibly null or undefined
    2339,  // a property a type does not declare
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_follows_the_model_size_unless_set() {
        for (model, set, want) in [
            ("qwen2.5-coder-1.5b-instruct-q4_k_m", None, Profile::Small),
            ("Qwen/Qwen2.5-Coder-7B-Instruct", None, Profile::Small),
            ("llama-3.1-70b", None, Profile::Large),
            ("claude-sonnet-4-5", None, Profile::Large),
            ("gpt-4o-mini", None, Profile::Large),
            ("default", None, Profile::Large),
            ("claude-sonnet-4-5", Some("small"), Profile::Small),
            ("qwen2.5-coder-1.5b", Some("large"), Profile::Large),
            ("qwen2.5-coder-1.5b", Some("other"), Profile::Small),
        ] {
            assert_eq!(Profile::choose(model, set), want, "{model} {set:?}");
        }
    }

    #[test]
    fn a_small_models_new_app_gets_more_fresh_tries() {
        assert_eq!(Profile::Small.fix_rounds(true), 6);
        assert_eq!(Profile::Small.fix_rounds(false), 3);
        assert_eq!(Profile::Large.fix_rounds(true), 3);
    }

    #[test]
    fn the_small_profile_blocks_on_what_breaks_the_page_only() {
        // From the baseline run's Todo list (docs/BENCHMARKS.md): implicit any everywhere.
        for code in [7031, 7006, 7016, 6133, 2322, 2554] {
            assert!(!Profile::Small.blocks(code), "TS{code}");
            assert!(Profile::Large.blocks(code), "TS{code}");
        }
        // Syntax, unknown names, missing modules and exports, JSX with two roots.
        for code in [
            1005, 1109, 1128, 2304, 2305, 2307, 2552, 2613, 2614, 2657, 2724, 2488,
        ] {
            assert!(Profile::Small.blocks(code), "TS{code}");
        }
    }
}
