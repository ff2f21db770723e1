//! Host tests of system-call decoding: every check the registers alone
//! allow, with the errors the ABI documents.

use super::UserBuffer;
use super::decode::{Call, MapRequest, decode};
use crate::fake_arch::FakeArch;
use abi::{Error, InfoKind, Syscall};
use hal::Memory;
use hal::mm::{MapFlags, PAGE_SIZE};

fn call(syscall: Syscall, args: [usize; 6]) -> Result<Call, Error> {
    decode(syscall as usize, args, FakeArch::USER_END)
}

const ANON: usize = abi::layout::ANON_START;

#[test]
fn unknown_numbers_are_refused() {
    for number in [Syscall::ALL.len() + 100, usize::MAX, 4096] {
        assert_eq!(
            decode(number, [0; 6], FakeArch::USER_END),
            Err(Error::UnknownSyscall),
            "{number}"
        );
    }
}

#[test]
fn every_known_number_decodes_with_harmless_arguments() {
    for syscall in Syscall::ALL {
        let args = match syscall {
            Syscall::Map | Syscall::Unmap => [ANON, 1, abi::PROT_READ, 0, 0, 0],
            Syscall::MemoryCreate => [PAGE_SIZE, 0, 0, 0, 0, 0],
            Syscall::MemoryUnmap => [ANON, 0, 0, 0, 0, 0],
            Syscall::Spawn => [0x1000, 4, 0, 0, 0, 0],
            Syscall::IrqClaim => [1, 24, 2, 1, 0, 0],
            Syscall::MemoryDevice => [1, 0, 1, 0, 0, 0],
            Syscall::PortIn | Syscall::PortOut => [1, 0x70, 1, 0, 0, 0],
            Syscall::ProcessWatch => [1, 2, 1, 0, 0, 0],
            _ => [0; 6],
        };
        assert!(call(syscall, args).is_ok(), "{syscall:?}");
    }
}

#[test]
fn process_calls_check_how_and_bits() {
    let kill = |how| call(Syscall::ProcessKill, [1, how, 0, 0, 0, 0]);
    assert!(matches!(
        kill(0),
        Ok(Call::ProcessKill {
            as_fault: false,
            ..
        })
    ));
    assert!(matches!(
        kill(abi::KILL_AS_FAULT),
        Ok(Call::ProcessKill { as_fault: true, .. })
    ));
    assert_eq!(
        kill(2),
        Err(Error::InvalidArgument),
        "an unknown way to kill"
    );
    let watch = |bits| call(Syscall::ProcessWatch, [1, 2, bits, 0, 0, 0]);
    assert_eq!(watch(0), Err(Error::InvalidArgument), "no bits to signal");
    assert!(matches!(
        watch(1 << 5),
        Ok(Call::ProcessWatch { bits: 32, .. })
    ));
}

#[test]
fn device_calls_check_their_arguments_before_any_capability() {
    let claim = |bits| call(Syscall::IrqClaim, [1, 24, 2, bits, 0, 0]);
    assert_eq!(claim(0), Err(Error::InvalidArgument), "no bits to signal");
    assert!(claim(1 << 3).is_ok());
    let device = |offset, size| call(Syscall::MemoryDevice, [1, offset, size, 0, 0, 0]);
    assert_eq!(device(0x800, 1), Err(Error::InvalidArgument), "misaligned");
    assert_eq!(device(0, 0), Err(Error::InvalidArgument), "empty");
    assert!(device(PAGE_SIZE, 1).is_ok());
    for width in [0, 3, 8, usize::MAX] {
        for syscall in [Syscall::PortIn, Syscall::PortOut] {
            assert_eq!(
                call(syscall, [1, 0x70, width, 0, 0, 0]),
                Err(Error::InvalidArgument),
                "{syscall:?} width {width}"
            );
        }
    }
    assert_eq!(
        call(Syscall::PortOut, [1, 0x71, 2, 0x1_0000_00ab, 0, 0]),
        Ok(Call::PortOut {
            handle: 1,
            port: 0x71,
            width: 2,
            value: 0xab
        }),
        "values are cut to 32 bits; the width check comes when performed"
    );
}

#[test]
fn write_lengths_are_bounded_before_memory_is_looked_at() {
    let max = abi::MAX_WRITE_LENGTH;
    assert_eq!(
        call(Syscall::Write, [0, max, 0, 0, 0, 0]),
        Ok(Call::Write(UserBuffer::new(0, max)))
    );
    assert_eq!(
        call(Syscall::Write, [0, max + 1, 0, 0, 0, 0]),
        Err(Error::TooLong)
    );
    assert_eq!(
        call(Syscall::Write, [0, usize::MAX, 0, 0, 0, 0]),
        Err(Error::TooLong)
    );
}

#[test]
fn sleep_joins_its_halves() {
    assert_eq!(
        call(Syscall::Sleep, [0xdead_beef, 0x12, 0, 0, 0, 0]),
        Ok(Call::Sleep { ns: 0x12_dead_beef })
    );
    // Only the low 32 bits of the low half count.
    assert_eq!(
        call(Syscall::Sleep, [usize::MAX, 0, 0, 0, 0, 0]),
        Ok(Call::Sleep { ns: 0xffff_ffff })
    );
}

#[test]
fn map_requests_are_rounded_and_checked() {
    assert_eq!(
        call(
            Syscall::Map,
            [0, 1, abi::PROT_READ | abi::PROT_WRITE, 0, 0, 0]
        ),
        Ok(Call::Map(MapRequest {
            start: None,
            len: PAGE_SIZE,
            flags: MapFlags::USER_RW
        }))
    );
    assert_eq!(
        call(Syscall::Map, [ANON, PAGE_SIZE + 1, abi::PROT_READ, 0, 0, 0]),
        Ok(Call::Map(MapRequest {
            start: Some(ANON),
            len: 2 * PAGE_SIZE,
            flags: MapFlags::USER_RO
        }))
    );
    let refused = [
        [0, 0, abi::PROT_READ],                                     // nothing to map
        [0, PAGE_SIZE, 4],                                          // no such protection
        [0, usize::MAX, abi::PROT_READ],                            // rounding overflows
        [ANON + 1, PAGE_SIZE, abi::PROT_READ],                      // misaligned
        [ANON - PAGE_SIZE, PAGE_SIZE, abi::PROT_READ],              // below the window
        [FakeArch::USER_END, PAGE_SIZE, abi::PROT_READ],            // past user space
        [usize::MAX & !(PAGE_SIZE - 1), PAGE_SIZE, abi::PROT_READ], // wraps
    ];
    for [address, len, protection] in refused {
        assert_eq!(
            call(Syscall::Map, [address, len, protection, 0, 0, 0]),
            Err(Error::InvalidArgument),
            "map({address:#x}, {len:#x}, {protection})"
        );
    }
}

#[test]
fn unmap_needs_an_aligned_range_in_the_window() {
    assert_eq!(
        call(Syscall::Unmap, [ANON, 3 * PAGE_SIZE - 1, 0, 0, 0, 0]),
        Ok(Call::Unmap {
            start: ANON,
            end: ANON + 3 * PAGE_SIZE
        })
    );
    for [address, len] in [[0, PAGE_SIZE], [ANON, 0], [ANON + 8, PAGE_SIZE]] {
        assert_eq!(
            call(Syscall::Unmap, [address, len, 0, 0, 0, 0]),
            Err(Error::InvalidArgument)
        );
    }
}

#[test]
fn spawn_checks_flags_then_lengths() {
    let name_max = abi::MAX_NAME_LENGTH;
    let args_max = abi::MAX_ARGUMENTS_LENGTH;
    assert_eq!(
        call(
            Syscall::Spawn,
            [
                1,
                name_max,
                2,
                args_max,
                3 << abi::SPAWN_HANDLES_SHIFT,
                0x4000
            ]
        ),
        Ok(Call::Spawn {
            name: UserBuffer::new(1, name_max),
            arguments: UserBuffer::new(2, args_max),
            handles: UserBuffer::new(0x4000, 3 * size_of::<abi::Handle>()),
            quota: false,
        })
    );
    assert_eq!(
        call(
            Syscall::Spawn,
            [
                1,
                4,
                0,
                0,
                1 << abi::SPAWN_HANDLES_SHIFT | abi::SPAWN_QUOTA,
                0x4000
            ]
        ),
        Ok(Call::Spawn {
            name: UserBuffer::new(1, 4),
            arguments: UserBuffer::new(0, 0),
            handles: UserBuffer::new(0x4000, size_of::<abi::Handle>()),
            quota: true,
        }),
        "the first handle names the child's quota"
    );
    assert_eq!(
        call(Syscall::Spawn, [1, 4, 0, 0, abi::SPAWN_QUOTA, 0x4000]),
        Err(Error::InvalidArgument),
        "a quota flag with no handle"
    );
    let too_many = (abi::MAX_SPAWN_HANDLES + 1) << abi::SPAWN_HANDLES_SHIFT;
    assert_eq!(
        call(Syscall::Spawn, [1, 4, 0, 0, too_many, 0x4000]),
        Err(Error::InvalidArgument),
        "more handles than spawn passes"
    );
    assert_eq!(
        call(Syscall::Spawn, [1, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        call(Syscall::Spawn, [1, 4, 0, 0, 2, 0]),
        Err(Error::InvalidArgument)
    );
    // A bad flag is reported before a bad length.
    assert_eq!(
        call(Syscall::Spawn, [1, name_max + 1, 0, 0, 2, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        call(Syscall::Spawn, [1, name_max + 1, 0, 0, 0, 0]),
        Err(Error::TooLong)
    );
    assert_eq!(
        call(Syscall::Spawn, [1, 4, 0, args_max + 1, 0, 0]),
        Err(Error::TooLong)
    );
}

#[test]
fn wait_takes_any_child_and_an_optional_status() {
    assert_eq!(
        call(Syscall::Wait, [0, 0, 0, 0, 0, 0]),
        Ok(Call::Wait { status: None })
    );
    assert_eq!(
        call(Syscall::Wait, [0x2000, 0, 0, 0, 0, 0]),
        Ok(Call::Wait {
            status: Some(UserBuffer::new(0x2000, size_of::<abi::WaitStatus>()))
        })
    );
}

#[test]
fn info_kinds_come_from_the_abi() {
    for kind in InfoKind::ALL {
        assert_eq!(
            call(Syscall::Info, [kind as usize, 0x3000, 64, 0, 0, 0]),
            Ok(Call::Info {
                kind,
                buffer: UserBuffer::new(0x3000, 64)
            })
        );
    }
    let beyond = InfoKind::ALL.len() + 1;
    assert_eq!(
        call(Syscall::Info, [beyond, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn statuses_are_truncated_as_documented() {
    assert_eq!(
        call(Syscall::Exit, [(-3i32) as usize, 0, 0, 0, 0, 0]),
        Ok(Call::Exit(-3))
    );
    assert_eq!(
        call(Syscall::PowerOff, [5, 0x1ff, 0, 0, 0, 0]),
        Ok(Call::PowerOff {
            control: 5,
            status: 0xff
        })
    );
}

#[test]
fn messages_keep_their_label_narrow_and_flags_known() {
    let widest = abi::LABEL_MASK;
    assert_eq!(
        call(Syscall::Send, [5, widest | abi::SEND_NONBLOCK, 1, 2, 3, 4]),
        Ok(Call::Send {
            handle: 5,
            message: crate::task::Message {
                label: widest,
                badge: 0,
                words: [1, 2, 3, 4]
            },
            transfer: None,
            nonblocking: true
        })
    );
    // A bit above the label that is not a flag, for each call that sends.
    for syscall in [Syscall::Send, Syscall::Call, Syscall::ReplyRecv] {
        assert_eq!(
            call(syscall, [5, 1 << 30, 0, 0, 0, 0]),
            Err(Error::InvalidArgument),
            "{syscall:?}"
        );
    }
    assert_eq!(
        call(Syscall::Reply, [1 << abi::LABEL_BITS, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        call(Syscall::Recv, [5, abi::RECV_NONBLOCK, 0, 0, 0, 0]),
        Ok(Call::Recv {
            handle: 5,
            nonblocking: true
        })
    );
    assert_eq!(
        call(Syscall::Recv, [5, 2, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn handles_wider_than_32_bits_name_nothing() {
    if usize::BITS > 32 {
        for syscall in [
            Syscall::CapInfo,
            Syscall::CapDelete,
            Syscall::CapCopy,
            Syscall::Send,
            Syscall::Recv,
            Syscall::Signal,
            Syscall::NotificationWait,
        ] {
            assert_eq!(
                call(syscall, [1 << 32 | 5, 0, 0, 0, 0, 0]),
                Err(Error::InvalidHandle),
                "{syscall:?}"
            );
        }
    }
    assert_eq!(
        call(Syscall::CapCopy, [5, abi::RIGHT_SEND as usize, 9, 0, 0, 0]),
        Ok(Call::CapCopy {
            handle: 5,
            rights: abi::RIGHT_SEND,
            badge: 9
        })
    );
}

#[test]
fn memory_objects_are_sized_and_mapped_in_the_window() {
    assert_eq!(
        call(
            Syscall::MemoryCreate,
            [3 * PAGE_SIZE, abi::MEMORY_CONTIGUOUS, 0, 0, 0, 0]
        ),
        Ok(Call::MemoryCreate {
            size: 3 * PAGE_SIZE,
            contiguous: true
        })
    );
    for (args, error) in [
        ([0, 0], Error::InvalidArgument),
        ([PAGE_SIZE, 2], Error::InvalidArgument),
        ([abi::MAX_MEMORY_OBJECT_BYTES + 1, 0], Error::TooLong),
    ] {
        assert_eq!(
            call(Syscall::MemoryCreate, [args[0], args[1], 0, 0, 0, 0]),
            Err(error)
        );
    }
    assert_eq!(
        call(
            Syscall::MemoryMap,
            [7, 0, abi::PROT_READ | abi::PROT_WRITE, 0, 0, 0]
        ),
        Ok(Call::MemoryMap {
            handle: 7,
            start: None,
            writable: true
        })
    );
    for (address, protection) in [
        (ANON + 1, abi::PROT_READ),
        (PAGE_SIZE, abi::PROT_READ),
        (ANON, 4),
    ] {
        assert_eq!(
            call(Syscall::MemoryMap, [7, address, protection, 0, 0, 0]),
            Err(Error::InvalidArgument),
            "map at {address:#x}, protection {protection}"
        );
    }
    assert_eq!(
        call(Syscall::MemoryUnmap, [ANON + 8, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn a_capability_in_a_message_is_named_in_the_last_word() {
    use super::decode::CapSend;
    let info = 9 | abi::MESSAGE_CAP | abi::MESSAGE_CAP_MOVE;
    assert_eq!(
        call(Syscall::Call, [5, info, 1, 2, 3, 0x77]),
        Ok(Call::Invoke {
            handle: 5,
            message: crate::task::Message {
                label: 9 | abi::MESSAGE_CAP,
                badge: 0,
                words: [1, 2, 3, 0]
            },
            transfer: Some(CapSend {
                handle: 0x77,
                moved: true
            })
        })
    );
    assert_eq!(
        call(Syscall::Send, [5, 9 | abi::MESSAGE_CAP_MOVE, 0, 0, 0, 0x77]),
        Err(Error::InvalidArgument),
        "moving without a capability"
    );
    if usize::BITS > 32 {
        assert_eq!(
            call(Syscall::Reply, [abi::MESSAGE_CAP, 0, 0, 0, 1 << 33, 0]),
            Err(Error::InvalidHandle),
            "a capability named by a value wider than a handle"
        );
    }
}

#[test]
fn payloads_are_at_most_a_page_and_buffers_page_aligned() {
    let info = 3 | abi::MESSAGE_PAYLOAD;
    assert_eq!(
        call(Syscall::Send, [5, info, 0, 0, abi::MAX_PAYLOAD, 0]).map(|c| match c {
            Call::Send { message, .. } => message.label,
            _ => 0,
        }),
        Ok(info)
    );
    assert_eq!(
        call(Syscall::Call, [5, info, 0, 0, abi::MAX_PAYLOAD + 1, 0]),
        Err(Error::TooLong)
    );
    assert_eq!(
        call(Syscall::IpcBuffer, [ANON + 8, 0, 0, 0, 0, 0]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        call(Syscall::IpcBuffer, [ANON, 0, 0, 0, 0, 0]),
        Ok(Call::IpcBuffer { address: ANON })
    );
}
