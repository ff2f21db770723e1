//! Lint and the host unit tests, read from libtest's output.

use super::*;

/// Packages whose unit tests run on the host, and which of their targets.
pub(super) const HOST_TEST_PACKAGES: [(&str, &str); 8] = [
    ("hal", "--lib"),
    ("abi", "--lib"),
    ("kernel", "--lib"),
    ("drivers", "--lib"),
    ("arch-x86_64", "--lib"),
    ("arch-armv7", "--lib"),
    ("ferrite-protocols", "--lib"),
    ("xtask", "--bins"),
];

pub(super) fn lint(tally: &mut Tally) -> Result<()> {
    let started = Instant::now();
    step("lint: rustfmt and clippy");
    for check in crate::lint::checks() {
        let output = crate::lint::run_check(&check)?;
        let ok = output.status.success();
        tally.record(ok, "lint", &check.name, "");
        if !ok {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            for line in text.lines().take(60) {
                println!("    | {line}");
            }
        }
    }
    let cycles = crate::lint::module_cycles()?;
    tally.record(cycles.is_empty(), "lint", "module cycles", "");
    for cycle in &cycles {
        println!("    | {cycle}");
    }
    step(format!("lint finished in {}", seconds(started.elapsed())));
    Ok(())
}

/// The result of one libtest line, `test name ... ok`.
pub(super) fn parse_libtest_line(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("test ")?;
    let (name, verdict) = rest.rsplit_once(" ... ")?;
    match verdict.trim() {
        "ok" => Some((name, true)),
        "FAILED" => Some((name, false)),
        _ => None, // ignored tests and benches are not results
    }
}

pub(super) fn host_tests(tally: &mut Tally) -> Result<()> {
    let started = Instant::now();
    step("host unit tests");
    let before = (tally.passed, tally.failed);
    for (package, target) in HOST_TEST_PACKAGES {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args(["test", "--package", package, target])
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut results = 0;
        for (name, ok) in stdout.lines().filter_map(parse_libtest_line) {
            tally.record(ok, &format!("host {package}"), name, "");
            results += 1;
        }
        if !output.status.success() && results == 0 {
            // It did not get as far as running tests: show why.
            let stderr = String::from_utf8_lossy(&output.stderr);
            tally.record(
                false,
                &format!("host {package}"),
                "unit tests build and run",
                "",
            );
            for line in stderr
                .lines()
                .rev()
                .take(FAILURE_CONTEXT_LINES)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                println!("    | {line}");
            }
        } else if !output.status.success() {
            for line in stdout.lines().skip_while(|l| !l.starts_with("failures:")) {
                println!("    | {line}");
            }
        }
    }
    step(format!(
        "host: {} passed, {} failed in {}",
        tally.passed - before.0,
        tally.failed - before.1,
        seconds(started.elapsed())
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_lines() {
        assert_eq!(parse_libtest_line("test a::b ... ok"), Some(("a::b", true)));
        assert_eq!(
            parse_libtest_line("test a::b ... FAILED"),
            Some(("a::b", false))
        );
        assert_eq!(parse_libtest_line("test a::b ... ignored"), None);
        assert_eq!(parse_libtest_line("test result: ok. 3 passed"), None);
    }
}
