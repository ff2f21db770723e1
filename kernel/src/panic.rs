//! Reporting a kernel panic. The architecture's `#[panic_handler]` calls
//! [`report`] and then stops the machine with [`crate::exit_code::PANIC`].

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Prints the panic's location and message. A panic while reporting a panic
/// prints only a short note, so a broken console cannot recurse forever.
pub fn report(info: &PanicInfo<'_>) {
    if PANICKING.swap(true, Ordering::SeqCst) {
        crate::console::print_unlocked(format_args!("\nKERNEL PANIC while panicking\n"));
        return;
    }
    let location = info.location();
    crate::console::print_unlocked(format_args!(
        "\nKERNEL PANIC at {}:{}: {}\n",
        location.map_or("<unknown>", |l| l.file()),
        location.map_or(0, |l| l.line()),
        info.message()
    ));
}
