//! The QEMU `vexpress-a15` board: where its devices are, and the device tree
//! Ferrite boots it with.
//!
//! QEMU does not generate a device tree for this board, so the project
//! supplies one, written from these facts by [`device_tree`] (host only).
//! The kernel does not use these constants to find devices: it reads the
//! device tree QEMU passes, and its tests compare what it read with them.

/// The machine's name, as QEMU's `-M` and the kernel's banner call it.
pub const MACHINE: &str = "vexpress-a15";

/// The root `compatible` strings, most specific first.
pub const COMPATIBLE: [&str; 2] = ["arm,vexpress,v2p-ca15,tc1", "arm,vexpress"];

/// A memory-mapped device: register window and interrupts (as GIC SPI
/// numbers, i.e. interrupt ID minus 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// Node name prefix in the device tree.
    pub node: &'static str,
    /// `compatible` strings, most specific first.
    pub compatible: &'static [&'static str],
    /// Physical address of the registers.
    pub base: u32,
    /// Size of the register window.
    pub size: u32,
    /// Shared peripheral interrupts.
    pub spis: &'static [u32],
    /// The device's function clock, if it has one.
    pub clock_hz: Option<u32>,
}

/// GIC interrupt IDs of shared peripheral interrupts start here.
pub const SPI_BASE: u32 = 32;

/// The GIC interrupt ID of shared peripheral interrupt `spi`.
pub const fn gic_id(spi: u32) -> u32 {
    SPI_BASE + spi
}

/// PL011 UART 0: the console.
pub const UART0: Device = Device {
    node: "uart",
    compatible: &["arm,pl011", "arm,primecell"],
    base: 0x1c09_0000,
    size: 0x1000,
    spis: &[5],
    clock_hz: Some(UART_CLOCK_HZ),
};

/// The UARTs' reference clock (and the peripherals' bus clock).
pub const UART_CLOCK_HZ: u32 = 24_000_000;

/// The SP804's timer clock.
pub const TIMER_CLOCK_HZ: u32 = 1_000_000;

/// SP804 dual timer (timers 0 and 1): the kernel's tick.
pub const SP804_TIMER01: Device = Device {
    node: "timer",
    compatible: &["arm,sp804", "arm,primecell"],
    base: 0x1c11_0000,
    size: 0x1000,
    spis: &[2],
    clock_hz: Some(TIMER_CLOCK_HZ),
};

/// The second SP804 dual timer (timers 2 and 3): left to user space.
pub const SP804_TIMER23: Device = Device {
    node: "timer",
    compatible: &["arm,sp804", "arm,primecell"],
    base: 0x1c12_0000,
    size: 0x1000,
    spis: &[3],
    clock_hz: Some(TIMER_CLOCK_HZ),
};

/// PL031 real-time clock.
pub const PL031_RTC: Device = Device {
    node: "rtc",
    compatible: &["arm,pl031", "arm,primecell"],
    base: 0x1c17_0000,
    size: 0x1000,
    spis: &[4],
    clock_hz: None,
};

/// The motherboard's system registers.
pub const SYSREG: Device = Device {
    node: "sysreg",
    compatible: &["arm,vexpress-sysreg"],
    base: 0x1c01_0000,
    size: 0x1000,
    spis: &[],
    clock_hz: None,
};

/// Devices described in the board's device tree.
pub const DEVICES: [Device; 5] = [UART0, SP804_TIMER01, SP804_TIMER23, PL031_RTC, SYSREG];

/// GICv2 distributor registers.
pub const GIC_DISTRIBUTOR: u32 = 0x2c00_1000;
/// GICv2 CPU interface registers.
pub const GIC_CPU_INTERFACE: u32 = 0x2c00_2000;

/// QEMU adds this many VirtIO-MMIO transports to the device tree.
pub const VIRTIO_MMIO_COUNT: u32 = 4;
/// The first VirtIO-MMIO transport.
pub const VIRTIO_MMIO_BASE: u32 = 0x1c13_0000;
/// Distance between VirtIO-MMIO transports.
pub const VIRTIO_MMIO_STRIDE: u32 = 0x200;
/// SPI of the first VirtIO-MMIO transport; the others follow.
pub const VIRTIO_MMIO_FIRST_SPI: u32 = 40;

/// What varies between the device trees the host writes for the board:
/// normally RAM and CPUs as QEMU is told; for hostile-input tests, memory
/// and reservations that make no sense.
#[cfg(any(test, feature = "board-dtb"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeOptions {
    /// `/memory` node `reg` entries (address, size); none: no node.
    pub memory: Vec<(u64, u64)>,
    /// `/memreserve/` entries (address, size).
    pub reservations: Vec<(u64, u64)>,
    /// CPU nodes under `/cpus`.
    pub cpus: u32,
    /// `/chosen/bootargs`: empty for QEMU to fill in from `-append`; a
    /// tree loaded as it is keeps its own.
    pub bootargs: &'static str,
}

#[cfg(any(test, feature = "board-dtb"))]
impl TreeOptions {
    /// The board as QEMU runs it: `ram_bytes` of RAM from the RAM base.
    pub fn board(ram_bytes: u64, cpus: u32) -> Self {
        TreeOptions {
            memory: vec![(crate::layout::RAM_BASE as u64, ram_bytes)],
            reservations: Vec::new(),
            cpus,
            bootargs: "",
        }
    }
}

/// Two cells per address and size: RAM past 4 GiB (up to 30 GiB on this
/// board) must be expressible.
#[cfg(any(test, feature = "board-dtb"))]
fn reg_cells(entries: &[(u64, u64)]) -> Vec<u32> {
    entries
        .iter()
        .flat_map(|&(address, size)| {
            [
                (address >> 32) as u32,
                address as u32,
                (size >> 32) as u32,
                size as u32,
            ]
        })
        .collect()
}

/// The device tree for the board as `options` describe it. When passed
/// with `-dtb`, QEMU rewrites the memory size and the command line, and
/// adds the VirtIO-MMIO nodes.
#[cfg(any(test, feature = "board-dtb"))]
pub fn device_tree(options: &TreeOptions) -> Result<Vec<u8>, vm_fdt::Error> {
    const GIC_PHANDLE: u32 = 1;
    const CLOCK_24MHZ: u32 = 2;
    const CLOCK_1MHZ: u32 = 3;
    const SPI: u32 = 0;
    const PPI: u32 = 1;
    const LEVEL_HIGH: u32 = 4;
    const PPI_ALL_CPUS_LEVEL_LOW: u32 = 0xf08;
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let reservations: Vec<vm_fdt::FdtReserveEntry> = options
        .reservations
        .iter()
        .map(|&(address, size)| vm_fdt::FdtReserveEntry::new(address, size))
        .collect::<Result<_, _>>()?;
    let mut fdt = vm_fdt::FdtWriter::new_with_mem_reserv(&reservations)?;
    let root = fdt.begin_node("")?;
    fdt.property_string("model", "V2P-CA15")?;
    fdt.property_string_list("compatible", strings(&COMPATIBLE))?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let uart0_path = format!("/{}@{:x}", UART0.node, UART0.base);
    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", options.bootargs)?;
    fdt.property_string("stdout-path", &uart0_path)?;
    fdt.end_node(chosen)?;

    if let Some(&(first, _)) = options.memory.first() {
        let memory = fdt.begin_node(&format!("memory@{first:x}"))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u32("reg", &reg_cells(&options.memory))?;
        fdt.end_node(memory)?;
    }

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for n in 0..options.cpus {
        // MPIDR affinity level 0 is the CPU's number in its cluster.
        let cpu = fdt.begin_node(&format!("cpu@{n}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,cortex-a15")?;
        fdt.property_u32("reg", n)?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    // QEMU only adds its VirtIO-MMIO nodes when it finds a GIC node with
    // this older compatible string and a phandle.
    let gic = fdt.begin_node(&format!("interrupt-controller@{GIC_DISTRIBUTOR:x}"))?;
    fdt.property_string_list(
        "compatible",
        strings(&["arm,cortex-a15-gic", "arm,cortex-a9-gic"]),
    )?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_array_u32(
        "reg",
        &reg_cells(&[
            (GIC_DISTRIBUTOR as u64, 0x1000),
            (GIC_CPU_INTERFACE as u64, 0x2000),
        ]),
    )?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv7-timer")?;
    let mut cells = Vec::new();
    for ppi in [13, 14, 11, 10] {
        cells.extend([PPI, ppi, PPI_ALL_CPUS_LEVEL_LOW]);
    }
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.end_node(timer)?;

    for (name, hz, phandle) in [
        ("clock24mhz", UART_CLOCK_HZ, CLOCK_24MHZ),
        ("clock1mhz", TIMER_CLOCK_HZ, CLOCK_1MHZ),
    ] {
        let clock = fdt.begin_node(name)?;
        fdt.property_string("compatible", "fixed-clock")?;
        fdt.property_u32("#clock-cells", 0)?;
        fdt.property_u32("clock-frequency", hz)?;
        fdt.property_phandle(phandle)?;
        fdt.end_node(clock)?;
    }

    for device in DEVICES {
        let node = fdt.begin_node(&format!("{}@{:x}", device.node, device.base))?;
        fdt.property_string_list("compatible", strings(device.compatible))?;
        fdt.property_array_u32(
            "reg",
            &reg_cells(&[(device.base as u64, device.size as u64)]),
        )?;
        if !device.spis.is_empty() {
            let cells: Vec<u32> = device
                .spis
                .iter()
                .flat_map(|&spi| [SPI, spi, LEVEL_HIGH])
                .collect();
            fdt.property_array_u32("interrupts", &cells)?;
        }
        if device.compatible.contains(&"arm,primecell") {
            // The function clock first, then the bus clock.
            let function = if device.clock_hz == Some(TIMER_CLOCK_HZ) {
                CLOCK_1MHZ
            } else {
                CLOCK_24MHZ
            };
            fdt.property_array_u32("clocks", &[function, CLOCK_24MHZ])?;
            fdt.property_string_list("clock-names", strings(&["function", "apb_pclk"]))?;
        }
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    fdt.finish()
}
