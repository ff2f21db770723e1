//! The live memory map of a running machine, checked from the host.

use super::*;

/// Inspects the running machine's page tables from the host and checks
/// them against the layout.
pub(super) fn memmap_check(config: &Config, kernel: &Path, tally: &mut Tally) -> Duration {
    let scope = &config.scope();
    step(format!("booting {scope} to inspect its page tables"));
    let started = Instant::now();
    match crate::memmap::inspect(config, kernel) {
        Ok(inspection) => {
            let detail = match inspection.problems.as_slice() {
                [] => String::new(),
                problems => {
                    for problem in problems {
                        println!("    | {problem}");
                    }
                    format!(
                        "{} mismatch(es); the first: {}",
                        problems.len(),
                        problems[0]
                    )
                }
            };
            tally.record(
                detail.is_empty(),
                scope,
                "memmap::live_tables_match_the_layout",
                &detail,
            );
            let names: Vec<&str> = inspection
                .processes
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            let inspected = names.iter().any(|n| n.ends_with("(init)"))
                && names.iter().any(|n| n.ends_with("(sh)"))
                && inspection.processes.iter().all(|p| !p.user.is_empty());
            tally.record(
                inspected,
                scope,
                "memmap::init_and_the_shell_are_inspected",
                &if inspected {
                    String::new()
                } else {
                    format!("processes found: {names:?}")
                },
            );
        }
        Err(e) => tally.record(
            false,
            scope,
            "memmap::live_tables_match_the_layout",
            &e.to_string(),
        ),
    }
    started.elapsed()
}
