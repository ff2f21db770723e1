//! Console system calls: `write` and `read`.

use super::{CHUNK, Outcome, UserBuffer, in_space, one};
use crate::{console, console_input};
use hal::Arch;
use hal::trap::Access;

/// `text` is decoded: at most `abi::MAX_WRITE_LENGTH` bytes.
pub(super) fn write<A: Arch>(text: UserBuffer) -> Outcome {
    let len = text.len;
    // All or nothing: the whole buffer is checked before any is written.
    in_space(|space| text.check::<A>(space, Access::Read))?;
    let mut buffer = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let piece = &mut buffer[..(len - done).min(CHUNK)];
        in_space(|space| text.read::<A>(space, done, piece))?;
        console::write_text(piece);
        done += piece.len();
    }
    one(len)
}

pub(super) fn read<A: Arch>(into: UserBuffer) -> Outcome {
    let capacity = into.len;
    if capacity == 0 {
        return one(0);
    }
    // Only the bytes that arrive are written (and their pages brought in).
    in_space(|space| into.covers::<A>(space, Access::Write))?;
    // Input is the console driver's: read it through the console service.
    if crate::object::device::console_handed_over() {
        return Err(abi::Error::NotFound);
    }
    loop {
        // Interrupts are masked in system calls, so no input can arrive
        // between finding none and starting to wait.
        let mut buffer = [0u8; CHUNK];
        let mut count = 0;
        while count < capacity.min(CHUNK) {
            match console_input::read() {
                Some(byte) => {
                    buffer[count] = byte;
                    count += 1;
                }
                None => break,
            }
        }
        if count > 0 {
            in_space(|space| into.write::<A>(space, 0, &buffer[..count]))?;
            return one(count);
        }
        console_input::wait::<A>()?;
    }
}
