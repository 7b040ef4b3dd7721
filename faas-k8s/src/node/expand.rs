//! `$(VAR)` expansion, as a kubelet applies it to env values, commands and arguments.
//!
//! `$(NAME)` becomes the value of `NAME` when it is defined and stays as written otherwise; `$$`
//! is an escaped `$`, so `$$(NAME)` is the literal `$(NAME)`; a `$` followed by anything else, or a
//! `$(` that is never closed, is kept as written.

/// Expands every `$(NAME)` in `input` with `lookup`.
pub(crate) fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.as_bytes().first() {
            Some(b'$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some(b'(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(_) | None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Expands each string of `items` against `env` (the container's resolved environment).
pub(crate) fn expand_all(items: &[String], env: &[(String, String)]) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            expand(item, |name| {
                env.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("HOST".to_owned(), "127.1.0.5".to_owned()),
            ("PORT".to_owned(), "8080".to_owned()),
        ]
    }

    fn x(input: &str) -> String {
        expand_all(&[input.to_owned()], &env()).remove(0)
    }

    #[test]
    fn defined_variables_are_replaced() {
        assert_eq!(x("--bind=$(HOST):$(PORT)"), "--bind=127.1.0.5:8080");
        assert_eq!(x("$(PORT)$(PORT)"), "80808080");
    }

    #[test]
    fn undefined_variables_stay_as_written() {
        assert_eq!(x("$(NOPE) and $(PORT)"), "$(NOPE) and 8080");
        assert_eq!(x("$()"), "$()");
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(x("$$(PORT)"), "$(PORT)");
        assert_eq!(x("$$$(PORT)"), "$8080");
        assert_eq!(x("cost: $$5"), "cost: $5");
    }

    #[test]
    fn lone_and_unclosed_dollars_are_kept() {
        assert_eq!(x("$HOME $"), "$HOME $");
        assert_eq!(x("$(PORT"), "$(PORT");
        assert_eq!(x("a$"), "a$");
        assert_eq!(x("$(PORT"), "$(PORT");
    }

    #[test]
    fn later_definitions_win() {
        let mut env = env();
        env.push(("PORT".to_owned(), "9090".to_owned()));
        assert_eq!(expand_all(&["$(PORT)".to_owned()], &env), vec!["9090"]);
    }
}
