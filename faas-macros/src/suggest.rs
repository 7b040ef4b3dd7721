//! "Did you mean ...?" suggestions for misspelt option names, trigger kinds
//! and HTTP methods.

/// Returns the candidate closest to `found`, if one is close enough to be a
/// plausible typo.
///
/// `aliases` maps names that other frameworks use for the same idea (for
/// example `max_in_flight`) to the name this crate uses; an alias wins over
/// the edit distance.
pub(crate) fn closest<'a>(
    found: &str,
    candidates: &[&'a str],
    aliases: &[(&str, &'a str)],
) -> Option<&'a str> {
    let lowered = found.to_ascii_lowercase();
    if let Some((_, to)) = aliases.iter().find(|(from, _)| *from == lowered) {
        return Some(to);
    }
    candidates
        .iter()
        .copied()
        .filter_map(|candidate| {
            let distance = edit_distance(&lowered, &candidate.to_ascii_lowercase());
            let longest = lowered.chars().count().max(candidate.chars().count());
            let close = distance <= (longest / 3).max(1)
                || (common_prefix(&lowered, candidate) >= 4 && distance <= longest / 2);
            close.then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Formats ` Did you mean `x`?` (with a leading space) or nothing.
pub(crate) fn did_you_mean(found: &str, candidates: &[&str], aliases: &[(&str, &str)]) -> String {
    match closest(found, candidates, aliases) {
        Some(candidate) => format!(" Did you mean `{candidate}`?"),
        None => String::new(),
    }
}

/// Formats a list of names as "`a`, `b` and `c`".
pub(crate) fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The number of leading characters two strings share.
fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// The edit distance between two strings, in characters: insertions,
/// deletions, substitutions and swaps of two neighbours each count one
/// (`strsim`'s optimal string alignment distance, so that `POTS` is one edit
/// away from `POST`).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[&str] = &[
        "name",
        "trigger",
        "timeout",
        "concurrency",
        "retries",
        "description",
        "crate",
    ];

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("timeout", "timout"), 1);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(edit_distance("POTS", "POST"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(closest("timout", OPTIONS, &[]), Some("timeout"));
        assert_eq!(closest("concurency", OPTIONS, &[]), Some("concurrency"));
        assert_eq!(closest("triger", OPTIONS, &[]), Some("trigger"));
        assert_eq!(closest("retry", OPTIONS, &[]), Some("retries"));
        assert_eq!(closest("Name", OPTIONS, &[]), Some("name"));
        assert_eq!(closest("descripton", OPTIONS, &[]), Some("description"));
    }

    #[test]
    fn stays_silent_when_nothing_is_close() {
        assert_eq!(closest("banana", OPTIONS, &[]), None);
        assert_eq!(closest("x", OPTIONS, &[]), None);
    }

    #[test]
    fn aliases_win() {
        let aliases = &[("max_in_flight", "concurrency")];
        assert_eq!(
            closest("max_in_flight", OPTIONS, aliases),
            Some("concurrency")
        );
        assert_eq!(
            closest("MAX_IN_FLIGHT", OPTIONS, aliases),
            Some("concurrency")
        );
    }

    #[test]
    fn formats() {
        assert_eq!(
            did_you_mean("timout", OPTIONS, &[]),
            " Did you mean `timeout`?"
        );
        assert_eq!(did_you_mean("banana", OPTIONS, &[]), "");
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
