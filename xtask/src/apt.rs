//! The machine's APT package sources, read so that an extra suite (Debian
//! 12's backports, for a recent QEMU) comes from the mirror the machine
//! already uses, with the key it already trusts: no mirror is written into
//! the project.
//!
//! Both formats are read: deb822 `.sources` files and one-line `.list`
//! files (`deb [options] URI SUITE COMPONENT...`).

use std::path::Path;

/// One enabled `deb` entry of the machine's sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The keyring the entry is verified with, if it names one.
    pub signed_by: Option<String>,
}

/// Binary-package (`deb`) entries of a deb822 file; disabled stanzas and
/// source-only ones are left out.
pub fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line (a multi-line Signed-By key, say).
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let words = |name: &str| -> Vec<String> {
            field(name)
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        let enabled = field("enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if enabled && words("types").iter().any(|t| t == "deb") {
            sources.push(Source {
                uris: words("uris"),
                suites: words("suites"),
                components: words("components"),
                signed_by: field("signed-by").map(String::from),
            });
        }
    }
    sources
}

/// The `deb` lines of a one-line sources file.
pub fn parse_one_line(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(String::from);
            rest = after.trim_start();
        }
        let mut words = rest.split_whitespace().map(String::from);
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(Source {
            uris: vec![uri],
            suites: vec![suite],
            components: words.collect(),
            signed_by,
        });
    }
    sources
}

/// Every enabled `deb` entry under `root` (normally `/`): the main
/// sources.list and the `.list` and `.sources` files beside it (other
/// names are ignored, as APT does).
pub fn machine_sources(root: &Path) -> Vec<Source> {
    let apt = root.join("etc/apt");
    let mut sources = std::fs::read_to_string(apt.join("sources.list"))
        .map(|t| parse_one_line(&t))
        .unwrap_or_default();
    let mut files: Vec<_> = std::fs::read_dir(apt.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        match path.extension().and_then(|e| e.to_str()) {
            Some("list") => sources.extend(parse_one_line(&text)),
            Some("sources") => sources.extend(parse_deb822(&text)),
            _ => {}
        }
    }
    sources
}

/// What to do so that `suite` (e.g. `bookworm-backports`) of the release
/// `codename` can be installed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuitePlan {
    /// A source already offers the suite: add nothing.
    Present,
    /// Write `contents` (a deb822 stanza) to `path`.
    Add { path: String, contents: String },
    /// No source of the release itself to take a mirror from.
    NoReleaseSource,
}

/// Plans `suite` after the entry that serves the release `codename`: same
/// mirror, same components' `main`, same keyring.
pub fn plan_suite(sources: &[Source], codename: &str, suite: &str) -> SuitePlan {
    if sources.iter().any(|s| s.suites.iter().any(|x| x == suite)) {
        return SuitePlan::Present;
    }
    let Some(release) = sources
        .iter()
        .find(|s| s.suites.iter().any(|x| x == codename) && !s.uris.is_empty())
    else {
        return SuitePlan::NoReleaseSource;
    };
    let mut contents = format!(
        "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: main\n",
        release.uris[0]
    );
    if let Some(key) = &release.signed_by {
        // A key given inline keeps its continuation lines indented.
        contents.push_str(&format!("Signed-By: {}\n", key.replace('\n', "\n ")));
    }
    SuitePlan::Add {
        path: format!("/etc/apt/sources.list.d/{suite}.sources"),
        contents,
    }
}

/// The shell command that writes `contents` to `path`, shown to the user
/// before it runs.
pub fn write_command(path: &str, contents: &str) -> String {
    let quoted: Vec<String> = contents
        .lines()
        .map(|l| format!("'{}'", l.replace('\'', r"'\''")))
        .collect();
    format!("printf '%s\\n' {} > {path}", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm-backports
Components: main

Enabled: no
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-backports
Components: main
";

    #[test]
    fn deb822_entries_are_read_with_their_keys() {
        let sources = parse_deb822(DEB822);
        assert_eq!(
            sources.len(),
            2,
            "deb-src and disabled stanzas are not used"
        );
        assert_eq!(sources[0].uris, ["http://mirror.example/debian"]);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert_eq!(sources[1].signed_by, None);
    }

    #[test]
    fn one_line_entries_are_read_with_their_options() {
        let text = "\
# deb http://old.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/local.gpg] http://snapshot.example/debian/20250520 bookworm main contrib
deb-src http://snapshot.example/debian bookworm main
deb http://snapshot.example/debian-security bookworm-security main # security
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uris, ["http://snapshot.example/debian/20250520"]);
        assert_eq!(sources[0].suites, ["bookworm"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].signed_by.as_deref(),
            Some("/etc/apt/keyrings/local.gpg")
        );
        assert_eq!(sources[1].suites, ["bookworm-security"]);
    }

    #[test]
    fn backports_follow_the_release_mirror_and_key() {
        let plan = plan_suite(&parse_deb822(DEB822), "bookworm", "bookworm-backports");
        assert_eq!(
            plan,
            SuitePlan::Add {
                path: "/etc/apt/sources.list.d/bookworm-backports.sources".into(),
                contents: "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n".into(),
            }
        );
        let one_line = parse_one_line("deb http://proxy.example:3142/debian bookworm main\n");
        let SuitePlan::Add { contents, .. } =
            plan_suite(&one_line, "bookworm", "bookworm-backports")
        else {
            panic!("a plan to add the suite");
        };
        assert!(contents.contains("URIs: http://proxy.example:3142/debian\n"));
        assert!(!contents.contains("Signed-By"));
    }

    #[test]
    fn a_configured_suite_adds_nothing() {
        let mut sources = parse_deb822(DEB822);
        sources.extend(parse_one_line(
            "deb http://mirror.example/debian bookworm-backports main\n",
        ));
        assert_eq!(
            plan_suite(&sources, "bookworm", "bookworm-backports"),
            SuitePlan::Present
        );
    }

    #[test]
    fn without_a_release_source_there_is_no_plan() {
        assert_eq!(
            plan_suite(&[], "bookworm", "bookworm-backports"),
            SuitePlan::NoReleaseSource
        );
        let security_only =
            parse_one_line("deb http://x.example/debian-security bookworm-security main\n");
        assert_eq!(
            plan_suite(&security_only, "bookworm", "bookworm-backports"),
            SuitePlan::NoReleaseSource
        );
    }

    #[test]
    fn the_written_file_is_shown_as_one_command() {
        let command = write_command(
            "/tmp/x.sources",
            "Types: deb\nURIs: http://a.example/it's\n",
        );
        assert_eq!(
            command,
            r"printf '%s\n' 'Types: deb' 'URIs: http://a.example/it'\''s' > /tmp/x.sources"
        );
    }

    #[test]
    fn the_machine_files_are_found_by_their_names() {
        let root = std::env::temp_dir().join(format!("ferrite-apt-{}", std::process::id()));
        let dir = root.join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            root.join("etc/apt/sources.list"),
            "deb http://a.example/debian bookworm main\n",
        )
        .unwrap();
        std::fs::write(dir.join("extra.sources"), DEB822).unwrap();
        std::fs::write(
            dir.join("off.list.disabled"),
            "deb http://b.example/debian bookworm-backports main\n",
        )
        .unwrap();
        let sources = machine_sources(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(sources.len(), 3, "{sources:?}");
        assert_eq!(sources[0].uris, ["http://a.example/debian"]);
        assert!(!sources.iter().any(|s| s.uris[0].contains("b.example")));
    }
}
