//! A unified-diff parser that says where a diff goes wrong.
//!
//! It accepts what `diff -u` and `git diff` print: optional preamble lines before the first
//! file (a commit message, "Here is the patch:"), `diff --git a/x b/x` headers with their
//! extended lines (`index`, `old mode`/`new mode`, `new file mode`, `deleted file mode`,
//! `similarity index`, `rename from`/`rename to`, `copy from`/`copy to`,
//! `Binary files … differ`), `--- a/x` / `+++ b/x` with optional tab-separated timestamps,
//! `/dev/null` for created or deleted files, hunks `@@ -l,s +l,s @@ section` whose counts must
//! match their bodies (an omitted count is 1), and `\ No newline at end of file`.
//!
//! Once the first file header is seen the parser is strict: a line that is neither a header,
//! a hunk line nor trailing blank text is an error with its 1-based line number. One leniency:
//! an empty line inside a hunk that still expects lines is read as an empty context line,
//! because editors and chat interfaces strip the lone space such lines carry.

/// A parsed diff: one entry per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The files, in order.
    pub files: Vec<FileDiff>,
}

/// The changes to one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDiff {
    /// The old path without its `a/` prefix; `None` for `/dev/null` (a created file).
    pub old_path: Option<String>,
    /// The new path without its `b/` prefix; `None` for `/dev/null` (a deleted file).
    pub new_path: Option<String>,
    /// The hunks, in order.
    pub hunks: Vec<Hunk>,
    /// Whether a `diff --git` header introduced the file.
    pub git: bool,
    /// Git's extended header lines (`index …`, `new file mode …`), as written.
    pub extended: Vec<String>,
    /// Whether git reported a binary change instead of hunks.
    pub binary: bool,
}

impl FileDiff {
    /// The path the file has after the change, or before it when the file is deleted.
    pub fn path(&self) -> Option<&str> {
        self.new_path.as_deref().or(self.old_path.as_deref())
    }
}

/// One hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First line in the old file.
    pub old_start: u64,
    /// Lines of the old file the hunk covers.
    pub old_count: u64,
    /// First line in the new file.
    pub new_start: u64,
    /// Lines of the new file the hunk covers.
    pub new_count: u64,
    /// Text after the second `@@`, usually a function name.
    pub section: String,
    /// The body.
    pub lines: Vec<HunkLine>,
    /// 1-based line of the `@@` header in the input.
    pub line: usize,
}

/// One line of a hunk body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    /// Unchanged (` `).
    Context(String),
    /// Added (`+`).
    Added(String),
    /// Removed (`-`).
    Removed(String),
    /// `\ No newline at end of file`, about the line before it.
    NoNewlineAtEnd,
}

/// Why the text is not a valid unified diff, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct DiffError {
    /// 1-based line number of the defect.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Diff {
    /// Lines added across all files.
    pub fn added(&self) -> usize {
        self.count(|l| matches!(l, HunkLine::Added(_)))
    }

    /// Lines removed across all files.
    pub fn removed(&self) -> usize {
        self.count(|l| matches!(l, HunkLine::Removed(_)))
    }

    fn count(&self, pick: impl Fn(&HunkLine) -> bool) -> usize {
        self.files
            .iter()
            .flat_map(|f| &f.hunks)
            .flat_map(|h| &h.lines)
            .filter(|l| pick(l))
            .count()
    }
}

/// Parses a unified diff.
pub fn parse(text: &str) -> Result<Diff, DiffError> {
    Parser::new(text).run()
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    at: usize,
    files: Vec<FileDiff>,
}

fn err(line: usize, reason: impl Into<String>) -> DiffError {
    DiffError {
        line,
        reason: reason.into(),
    }
}

const GIT_EXTENDED: [&str; 12] = [
    "index ",
    "old mode ",
    "new mode ",
    "new file mode ",
    "deleted file mode ",
    "similarity index ",
    "dissimilarity index ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
    "GIT binary patch",
];

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        // `lines()` semantics: a final newline ends the last line rather than starting an
        // empty one, which would otherwise read as a blank context line.
        let lines = text
            .split_inclusive('\n')
            .map(|l| l.strip_suffix('\n').unwrap_or(l))
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        Self {
            lines,
            at: 0,
            files: Vec::new(),
        }
    }

    /// 1-based number of the current line.
    fn line_no(&self) -> usize {
        self.at + 1
    }

    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.at).copied()
    }

    fn rest_is_blank(&self) -> bool {
        self.lines[self.at..].iter().all(|l| l.trim().is_empty())
    }

    fn run(mut self) -> Result<Diff, DiffError> {
        // Preamble: anything before the first file header.
        while let Some(line) = self.peek() {
            if line.starts_with("diff --git ") || line.starts_with("--- ") {
                break;
            }
            if line.starts_with("@@ ") {
                return Err(err(
                    self.line_no(),
                    "hunk header before any `---`/`+++` file header",
                ));
            }
            if line.starts_with("+++ ") {
                return Err(err(
                    self.line_no(),
                    "`+++` header without a preceding `---` header",
                ));
            }
            self.at += 1;
        }
        if self.peek().is_none() {
            return Err(err(1, "no file header (`diff --git` or `---`/`+++`) found"));
        }
        while self.at < self.lines.len() {
            if self.rest_is_blank() {
                break;
            }
            let line = self.lines[self.at];
            if line.starts_with("diff --git ") {
                self.git_file()?;
            } else if line.starts_with("--- ") {
                let mut file = FileDiff::default();
                self.file_headers(&mut file)?;
                self.hunks(&mut file)?;
                self.files.push(file);
            } else {
                return Err(err(
                    self.line_no(),
                    format!(
                        "expected a file header (`diff --git` or `---`), found {:?}",
                        clip(line)
                    ),
                ));
            }
        }
        Ok(Diff { files: self.files })
    }

    fn git_file(&mut self) -> Result<(), DiffError> {
        let header_line = self.line_no();
        let header = self.lines[self.at];
        let (old, new) = split_git_header(&header["diff --git ".len()..]).ok_or_else(|| {
            err(
                header_line,
                "malformed `diff --git` header: expected `a/<path> b/<path>`",
            )
        })?;
        let mut file = FileDiff {
            old_path: Some(old),
            new_path: Some(new),
            git: true,
            ..FileDiff::default()
        };
        self.at += 1;
        while let Some(line) = self.peek() {
            if GIT_EXTENDED.iter().any(|p| line.starts_with(p)) {
                if line.starts_with("GIT binary patch") {
                    return Err(err(self.line_no(), "git binary patches are not supported"));
                }
                if line.starts_with("new file mode ") {
                    file.old_path = None;
                }
                if line.starts_with("deleted file mode ") {
                    file.new_path = None;
                }
                file.extended.push(line.to_owned());
                self.at += 1;
            } else if line.starts_with("Binary files ") && line.ends_with(" differ") {
                file.binary = true;
                self.at += 1;
            } else {
                break;
            }
        }
        if self.peek().is_some_and(|l| l.starts_with("--- ")) {
            self.file_headers(&mut file)?;
            self.hunks(&mut file)?;
        } else if self.peek().is_some_and(|l| l.starts_with("@@")) {
            return Err(err(self.line_no(), "hunk without `---`/`+++` file headers"));
        }
        self.files.push(file);
        Ok(())
    }

    fn file_headers(&mut self, file: &mut FileDiff) -> Result<(), DiffError> {
        let old = self.lines[self.at];
        file.old_path = header_path(&old[4..], "a/");
        self.at += 1;
        match self.peek() {
            Some(new) if new.starts_with("+++ ") => {
                file.new_path = header_path(&new[4..], "b/");
                self.at += 1;
            }
            _ => {
                return Err(err(
                    self.line_no(),
                    "`---` header not followed by a `+++` header",
                ));
            }
        }
        if file.old_path.is_none() && file.new_path.is_none() {
            return Err(err(self.at, "both paths are /dev/null"));
        }
        match self.peek() {
            Some(l) if l.starts_with("@@") => Ok(()),
            _ if self.at >= self.lines.len() || self.rest_is_blank() => {
                Err(err(self.line_no(), "file header without any hunk"))
            }
            Some(l) => Err(err(
                self.line_no(),
                format!("expected a `@@` hunk header, found {:?}", clip(l)),
            )),
            None => Err(err(self.line_no(), "file header without any hunk")),
        }
    }

    fn hunks(&mut self, file: &mut FileDiff) -> Result<(), DiffError> {
        while let Some(line) = self.peek() {
            if !line.starts_with("@@") {
                break;
            }
            let hunk = self.hunk()?;
            file.hunks.push(hunk);
        }
        Ok(())
    }

    fn hunk(&mut self) -> Result<Hunk, DiffError> {
        let header_line = self.line_no();
        let (old_start, old_count, new_start, new_count, section) =
            parse_hunk_header(self.lines[self.at]).map_err(|reason| err(header_line, reason))?;
        self.at += 1;
        let mut hunk = Hunk {
            old_start,
            old_count,
            new_start,
            new_count,
            section,
            lines: Vec::new(),
            line: header_line,
        };
        let (mut old_left, mut new_left) = (old_count, new_count);
        while old_left > 0 || new_left > 0 {
            let Some(line) = self.peek() else {
                return Err(err(
                    header_line,
                    format!(
                        "hunk ends early: its header promises {old_count} old and {new_count} new lines, \
                         the input ends {old_left} old and {new_left} new lines short"
                    ),
                ));
            };
            let mut chars = line.chars();
            match chars.next() {
                Some(' ') | None => {
                    if old_left == 0 || new_left == 0 {
                        return Err(self.count_mismatch(header_line, old_left, new_left));
                    }
                    old_left -= 1;
                    new_left -= 1;
                    hunk.lines
                        .push(HunkLine::Context(chars.as_str().to_owned()));
                }
                Some('-') => {
                    if old_left == 0 {
                        return Err(self.count_mismatch(header_line, old_left, new_left));
                    }
                    old_left -= 1;
                    hunk.lines
                        .push(HunkLine::Removed(chars.as_str().to_owned()));
                }
                Some('+') => {
                    if new_left == 0 {
                        return Err(self.count_mismatch(header_line, old_left, new_left));
                    }
                    new_left -= 1;
                    hunk.lines.push(HunkLine::Added(chars.as_str().to_owned()));
                }
                Some('\\') => {
                    self.no_newline(&mut hunk)?;
                    continue;
                }
                Some(_) => {
                    return Err(err(
                        self.line_no(),
                        format!(
                            "hunk from line {header_line} still expects {old_left} old and {new_left} new \
                             lines, but this line starts with neither ' ', '-' nor '+': {:?}",
                            clip(line)
                        ),
                    ));
                }
            }
            self.at += 1;
        }
        if self.peek().is_some_and(|l| l.starts_with('\\')) {
            self.no_newline(&mut hunk)?;
        }
        // A body longer than its header: the next line still looks like hunk content.
        if let Some(line) = self.peek()
            && (line.starts_with('+') && !line.starts_with("+++ ")
                || line.starts_with('-') && !line.starts_with("--- ")
                || line.starts_with(' '))
            && !self.rest_is_blank()
        {
            return Err(err(
                self.line_no(),
                format!(
                    "hunk from line {header_line} has more lines than its header `-{old_start},{old_count} \
                     +{new_start},{new_count}` says"
                ),
            ));
        }
        if hunk.lines.is_empty() {
            return Err(err(header_line, "empty hunk"));
        }
        Ok(hunk)
    }

    fn no_newline(&mut self, hunk: &mut Hunk) -> Result<(), DiffError> {
        let line = self.lines[self.at];
        if !line.starts_with("\\ ") {
            return Err(err(
                self.line_no(),
                format!("unexpected line {:?}", clip(line)),
            ));
        }
        if matches!(hunk.lines.last(), None | Some(HunkLine::NoNewlineAtEnd)) {
            return Err(err(
                self.line_no(),
                "`\\ No newline at end of file` does not follow a hunk line",
            ));
        }
        hunk.lines.push(HunkLine::NoNewlineAtEnd);
        self.at += 1;
        Ok(())
    }

    fn count_mismatch(&self, header_line: usize, old_left: u64, new_left: u64) -> DiffError {
        err(
            self.line_no(),
            format!(
                "line does not fit the hunk from line {header_line}: it still expects {old_left} old and \
                 {new_left} new lines"
            ),
        )
    }
}

/// `-l,s +l,s @@ section` → numbers; an omitted count is 1.
fn parse_hunk_header(line: &str) -> Result<(u64, u64, u64, u64, String), String> {
    let malformed = || {
        format!(
            "malformed hunk header {:?}: expected `@@ -l,s +l,s @@`",
            clip(line)
        )
    };
    let rest = line.strip_prefix("@@ -").ok_or_else(malformed)?;
    let (ranges, section) = rest.split_once(" @@").ok_or_else(malformed)?;
    let (old, new) = ranges.split_once(" +").ok_or_else(malformed)?;
    let range = |r: &str| -> Option<(u64, u64)> {
        match r.split_once(',') {
            Some((start, count)) => Some((digits(start)?, digits(count)?)),
            None => Some((digits(r)?, 1)),
        }
    };
    let (old_start, old_count) = range(old).ok_or_else(malformed)?;
    let (new_start, new_count) = range(new).ok_or_else(malformed)?;
    if old_count == 0 && new_count == 0 {
        return Err("hunk header covers no lines".to_owned());
    }
    Ok((
        old_start,
        old_count,
        new_start,
        new_count,
        section.trim().to_owned(),
    ))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The path of a `---`/`+++` header: timestamp dropped, quotes removed, prefix stripped;
/// `None` for `/dev/null`.
fn header_path(raw: &str, prefix: &str) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw).trim_end();
    let raw = unquote(raw);
    if raw == "/dev/null" {
        return None;
    }
    Some(raw.strip_prefix(prefix).unwrap_or(&raw).to_owned())
}

/// `a/x b/y` (or quoted forms) → (`x`, `y`).
fn split_git_header(rest: &str) -> Option<(String, String)> {
    if let Some(inner) = rest.strip_prefix('"') {
        let close = inner.find('"')? + 1;
        let old = unquote(&rest[..=close]);
        let new = unquote(rest[close + 1..].trim_start());
        return Some((
            old.strip_prefix("a/")?.to_owned(),
            new.strip_prefix("b/")?.to_owned(),
        ));
    }
    // Unquoted paths may contain spaces; the header is symmetric, so try the split that makes
    // both sides name the same path first, then any ` b/`.
    let candidates: Vec<usize> = rest.match_indices(" b/").map(|(i, _)| i).collect();
    let pick = candidates
        .iter()
        .find(|&&i| rest[..i].strip_prefix("a/") == Some(&rest[i + 3..]))
        .or(candidates.first())?;
    let old = rest[..*pick].strip_prefix("a/")?;
    let new = &rest[*pick + 3..];
    if old.is_empty() || new.is_empty() {
        return None;
    }
    Some((old.to_owned(), new.to_owned()))
}

/// Removes git's C-style quoting (`"a/with space"`, `\t`, `\"`, `\\`).
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_owned();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A line shortened for an error message.
fn clip(line: &str) -> String {
    const MAX: usize = 60;
    if line.chars().count() <= MAX {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(MAX).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIT: &str = "\
diff --git a/src/lib.rs b/src/lib.rs
index 3b18e51..a9c1f2e 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,3 +1,4 @@ fn main
 use std::io;
-fn old() {}
+fn new() {}
+fn extra() {}
 // end
@@ -10 +11 @@
-x
+y
\\ No newline at end of file
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..ce01362
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-bye
-now
diff --git a/bin.png b/bin.png
index 1111111..2222222 100644
Binary files a/bin.png and b/bin.png differ
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";

    #[test]
    fn parses_a_git_diff_with_every_kind_of_file() {
        let diff = parse(GIT).unwrap();
        assert_eq!(diff.files.len(), 5);
        let lib = &diff.files[0];
        assert_eq!(lib.path(), Some("src/lib.rs"));
        assert_eq!(lib.hunks.len(), 2);
        assert_eq!((lib.hunks[0].old_count, lib.hunks[0].new_count), (3, 4));
        assert_eq!(lib.hunks[0].section, "fn main");
        assert_eq!((lib.hunks[1].old_count, lib.hunks[1].new_start), (1, 11));
        assert_eq!(lib.hunks[1].lines.last(), Some(&HunkLine::NoNewlineAtEnd));
        assert_eq!(
            (diff.files[1].old_path.as_deref(), diff.files[1].path()),
            (None, Some("new.txt"))
        );
        assert_eq!(
            (diff.files[2].new_path.as_deref(), diff.files[2].path()),
            (None, Some("old.txt"))
        );
        assert!(diff.files[3].binary);
        assert_eq!(
            diff.files[4].extended,
            ["old mode 100644", "new mode 100755"]
        );
        assert_eq!((diff.added(), diff.removed()), (4, 4));
    }

    #[test]
    fn parses_plain_diff_u_with_timestamps_and_preamble() {
        let text = "Here is the patch:\n\n--- a.txt\t2024-01-01 10:00:00\n+++ b.txt\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n\n";
        let diff = parse(text).unwrap();
        assert_eq!(diff.files[0].old_path.as_deref(), Some("a.txt"));
        assert_eq!(diff.files[0].new_path.as_deref(), Some("b.txt"));
        assert!(!diff.files[0].git);
    }

    #[test]
    fn crlf_and_blank_context_lines_are_accepted() {
        let text = "--- a/x\r\n+++ b/x\r\n@@ -1,3 +1,3 @@\r\n a\r\n\r\n-b\r\n+c\r\n";
        let diff = parse(text).unwrap();
        assert_eq!(
            diff.files[0].hunks[0].lines[1],
            HunkLine::Context(String::new())
        );
    }

    #[test]
    fn quoted_and_spaced_git_paths() {
        let text = "diff --git \"a/my file.txt\" \"b/my file.txt\"\n--- \"a/my file.txt\"\n+++ \"b/my file.txt\"\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse(text).unwrap().files[0].path(), Some("my file.txt"));
        let text = "diff --git a/x b/y b/x b/y\nold mode 100644\nnew mode 100755\n";
        assert_eq!(parse(text).unwrap().files[0].path(), Some("x b/y"));
    }

    fn error(text: &str) -> DiffError {
        parse(text).expect_err("should be rejected")
    }

    #[test]
    fn counts_are_checked_against_bodies() {
        let e = error("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("ends early"), "{e}");
        let e = error("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n");
        assert_eq!(e.line, 6, "{e}");
        assert!(e.reason.contains("more lines than its header"), "{e}");
        let e = error("--- a/x\n+++ b/x\n@@ -1,2 +1,1 @@\n-a\n+b\n+c\n");
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn structural_errors_carry_their_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "no file header"),
            ("just some prose\nno diff here\n", 1, "no file header"),
            ("@@ -1 +1 @@\n-a\n+b\n", 1, "before any"),
            ("+++ b/x\n", 1, "without a preceding"),
            ("--- a/x\nfoo\n", 2, "not followed by a `+++`"),
            ("--- a/x\n+++ b/x\n", 3, "without any hunk"),
            ("--- a/x\n+++ b/x\nhello\n", 3, "expected a `@@`"),
            (
                "--- a/x\n+++ b/x\n@@ -a +1 @@\n",
                3,
                "malformed hunk header",
            ),
            (
                "--- a/x\n+++ b/x\n@@ -1 +1\n-a\n+b\n",
                3,
                "malformed hunk header",
            ),
            ("--- a/x\n+++ b/x\n@@ -1,0 +1,0 @@\n", 3, "covers no lines"),
            ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n*b\n", 5, "neither"),
            (
                "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\ntrailing prose\n",
                6,
                "expected a file header",
            ),
            (
                "--- /dev/null\n+++ /dev/null\n@@ -0,0 +1 @@\n+a\n",
                2,
                "both paths",
            ),
            ("diff --git x y\n", 1, "malformed `diff --git`"),
            (
                "diff --git a/x b/x\n@@ -1 +1 @@\n-a\n+b\n",
                2,
                "without `---`",
            ),
            ("diff --git a/x b/x\nGIT binary patch\n", 2, "binary"),
            (
                "--- a/x\n+++ b/x\n@@ -1 +1 @@\n\\ No newline at end of file\n-a\n+b\n",
                4,
                "does not follow",
            ),
        ];
        for (text, line, reason) in cases {
            let e = error(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
        }
    }
}
