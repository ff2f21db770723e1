//! Memory quotas: init's covers what it may hand out; a quota split off
//! it bounds what a child started on it may take, and everything charged
//! comes back when the child and the quota go.

use crate::Test;
use crate::fail;
use alloc::format;
use alloc::string::String;
use core::mem::ManuallyDrop;
use rt::Error;
use rt::process::Exit;
use rt::quota::{Quota, Usage};

pub const TESTS: &[Test] = &[
    Test {
        name: "quota::init_holds_the_memory_it_may_hand_out",
        run: init_holds_the_memory_it_may_hand_out,
    },
    Test {
        name: "quota::a_split_quota_bounds_a_child_and_comes_back",
        run: a_split_quota_bounds_a_child_and_comes_back,
    },
    Test {
        name: "quota::memory_objects_are_charged_to_their_maker",
        run: memory_objects_are_charged_to_their_maker,
    },
    Test {
        name: "quota::bad_splits_and_spawns_are_refused",
        run: bad_splits_and_spawns_are_refused,
    },
];

/// Init's quota, which the kernel gave it and it keeps.
fn init_quota() -> ManuallyDrop<Quota> {
    ManuallyDrop::new(Quota::from_handle(abi::INIT_QUOTA))
}

fn usage(quota: &Quota) -> Result<Usage, String> {
    quota.usage().map_err(fail("quota_info"))
}

/// Pages a probe holds once started: its image and its stack, about.
const PROBE_START_PAGES: usize = 64;

fn init_holds_the_memory_it_may_hand_out() -> Outcome {
    let memory = rt::process::memory().map_err(fail("memory info"))?;
    let quota = usage(&init_quota())?;
    // Every frame free at boot: fewer than the machine has (the kernel's
    // image and boot data hold some).
    ensure!(
        quota.limit < memory.total_frames as usize,
        "{} of {} frames",
        quota.limit,
        memory.total_frames
    );
    ensure!(quota.used > 0, "init's own image and stack are charged");
    ensure!(quota.used <= quota.limit, "{quota:?}");
    Ok(())
}

type Outcome = Result<(), String>;

fn a_split_quota_bounds_a_child_and_comes_back() -> Outcome {
    let init = init_quota();
    let before = usage(&init)?;
    let budget = PROBE_START_PAGES + 64;
    let quota = init.split(budget).map_err(fail("split"))?;
    ensure_eq!(
        usage(&init)?.used,
        before.used + budget,
        "the budget is held"
    );
    ensure_eq!(
        usage(&quota)?,
        Usage {
            limit: budget,
            used: 0
        },
        "a fresh quota"
    );
    // Within the budget: 32 pages of anonymous memory and a 16-page object.
    let run = |arguments: &str| -> Result<Exit, String> {
        let child = quota
            .start("probe", arguments, &[])
            .map_err(fail("start"))?;
        child.wait().map_err(fail("wait"))
    };
    ensure_eq!(run("quota-take 32 16")?, Exit::Code(0), "within the quota");
    // Beyond it: the map, then the object, is refused.
    ensure_eq!(
        run(&format!("quota-take {budget} 0"))?,
        Exit::Code(Error::LimitReached as i32),
        "anonymous memory beyond the quota"
    );
    ensure_eq!(
        run(&format!("quota-take 0 {budget}"))?,
        Exit::Code(100 + Error::LimitReached as i32),
        "a memory object beyond the quota"
    );
    // A quota too small for a program's image and stack starts nothing.
    let tiny = init.split(2).map_err(fail("split"))?;
    ensure_eq!(
        tiny.start("probe", "exit 0", &[]).map(|_| ()),
        Err(Error::LimitReached),
        "a child that does not fit"
    );
    ensure_eq!(usage(&tiny)?.used, 0, "nothing held by the failed start");
    drop(tiny);
    ensure_eq!(usage(&quota)?.used, 0, "the children's memory came back");
    drop(quota);
    ensure_eq!(usage(&init)?.used, before.used, "the budget came back");
    Ok(())
}

fn memory_objects_are_charged_to_their_maker() -> Outcome {
    let init = init_quota();
    let before = usage(&init)?.used;
    let object = rt::ipc::Memory::create(16 * 4096 - 1, false).map_err(fail("create"))?;
    ensure_eq!(usage(&init)?.used, before + 16, "charged by the page");
    drop(object);
    ensure_eq!(usage(&init)?.used, before, "freed with the object");
    // A child's object stays charged to the child's quota, whoever holds it.
    let quota = init.split(PROBE_START_PAGES + 32).map_err(fail("split"))?;
    let child = quota
        .start("probe", "quota-take 0 8", &[])
        .map_err(fail("start"))?;
    ensure_eq!(
        child.wait().map_err(fail("wait"))?,
        Exit::Code(0),
        "the child"
    );
    ensure_eq!(usage(&quota)?.used, 0, "its object went with it");
    Ok(())
}

fn bad_splits_and_spawns_are_refused() -> Outcome {
    let init = init_quota();
    let left = {
        let usage = usage(&init)?;
        usage.limit - usage.used
    };
    ensure_eq!(
        init.split(left + 1).map(|_| ()),
        Err(Error::LimitReached),
        "more than is left"
    );
    ensure_eq!(
        init.split(usize::MAX).map(|_| ()),
        Err(Error::LimitReached),
        "no overflow"
    );
    let quota = init.split(8).map_err(fail("split"))?;
    let unsplittable = quota.copy(abi::RIGHT_GRANT, 0).map_err(fail("copy"))?;
    ensure_eq!(
        unsplittable.split(1).map(|_| ()),
        Err(Error::MissingRight),
        "no split right"
    );
    let ungrantable = quota.copy(abi::RIGHT_SPLIT, 0).map_err(fail("copy"))?;
    ensure_eq!(
        ungrantable.start("probe", "exit 0", &[]).map(|_| ()),
        Err(Error::MissingRight),
        "a quota given needs the grant right"
    );
    let endpoint = rt::ipc::Endpoint::create().map_err(fail("endpoint"))?;
    ensure_eq!(
        rt::quota::usage(endpoint.handle()),
        Err(Error::WrongType),
        "not a quota"
    );
    ensure_eq!(
        rt::process::start_with_flags("probe", "exit 0", abi::SPAWN_QUOTA, &[endpoint.handle()])
            .map(|_| ()),
        Err(Error::WrongType),
        "spawn's first handle is not a quota"
    );
    ensure_eq!(
        rt::process::start_with_flags("probe", "exit 0", abi::SPAWN_QUOTA, &[]).map(|_| ()),
        Err(Error::InvalidArgument),
        "a quota flag and no handle"
    );
    ensure_eq!(
        rt::quota::usage(abi::INIT_QUOTA + (1 << abi::HANDLE_INDEX_BITS)),
        Err(Error::InvalidHandle),
        "a stale handle"
    );
    Ok(())
}
