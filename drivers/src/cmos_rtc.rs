//! The PC's CMOS real-time clock (MC146818), read through ports 0x70/0x71.

use crate::ports::Ports;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Bit 7 of the index port disables NMIs; the kernel leaves them enabled.
const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
const CENTURY: u8 = 0x32;

fn read(ports: &impl Ports, register: u8) -> u8 {
    ports.write8(INDEX, register);
    ports.read8(DATA)
}

/// A date and time as the RTC keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Seconds since 1970-01-01 00:00 UTC; `None` for an impossible date.
    pub fn unix_seconds(&self) -> Option<u64> {
        if !(1..=12).contains(&self.month)
            || !(1..=31).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
            || self.year < 1970
        {
            return None;
        }
        // Days from the civil date (proleptic Gregorian), March-based year.
        let (y, m) = if self.month <= 2 {
            (self.year as i64 - 1, self.month as i64 + 9)
        } else {
            (self.year as i64, self.month as i64 - 3)
        };
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let day_of_year = (153 * m + 2) / 5 + self.day as i64 - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        let seconds = days * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64;
        u64::try_from(seconds).ok()
    }
}

fn from_bcd(value: u8) -> u32 {
    ((value >> 4) * 10 + (value & 0xf)) as u32
}

fn read_raw(ports: &impl Ports) -> [u8; 7] {
    [SECONDS, MINUTES, HOURS, DAY, MONTH, YEAR, CENTURY].map(|r| read(ports, r))
}

/// Reads the date and time, waiting out an update in progress and reading
/// until two reads agree (the registers change under the reader).
pub fn read_time(ports: &impl Ports) -> Option<DateTime> {
    for _ in 0..1000 {
        if read(ports, STATUS_A) & 0x80 != 0 {
            continue; // update in progress
        }
        let first = read_raw(ports);
        let second = read_raw(ports);
        if first != second {
            continue;
        }
        let status_b = read(ports, STATUS_B);
        let binary = status_b & 0x04 != 0;
        let twenty_four_hour = status_b & 0x02 != 0;
        let decode = |v: u8| if binary { v as u32 } else { from_bcd(v) };
        let [s, min, h, d, mon, y, century] = first;
        let pm = h & 0x80 != 0;
        let mut hour = decode(h & 0x7f);
        if !twenty_four_hour {
            hour = hour % 12 + if pm { 12 } else { 0 };
        }
        let century = match decode(century) {
            19..=21 => decode(century),
            _ => 20,
        };
        return Some(DateTime {
            year: century * 100 + decode(y),
            month: decode(mon),
            day: decode(d),
            hour,
            minute: decode(min),
            second: decode(s),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A CMOS holding a fixed time, in BCD, 24-hour mode.
    struct Cmos {
        index: Cell<u8>,
        registers: [u8; 128],
    }

    impl Ports for Cmos {
        fn read8(&self, _port: u16) -> u8 {
            self.registers[(self.index.get() & 0x7f) as usize]
        }
        fn write8(&self, port: u16, value: u8) {
            if port == INDEX {
                self.index.set(value);
            }
        }
    }

    #[test]
    fn reads_bcd_time_and_converts_to_unix_seconds() {
        let mut registers = [0u8; 128];
        for (r, v) in [
            (SECONDS, 0x56),
            (MINUTES, 0x34),
            (HOURS, 0x12),
            (DAY, 0x23),
            (MONTH, 0x11),
            (YEAR, 0x26),
            (CENTURY, 0x20),
            (STATUS_B, 0x02),
        ] {
            registers[r as usize] = v;
        }
        let cmos = Cmos {
            index: Cell::new(0),
            registers,
        };
        let time = read_time(&cmos).unwrap();
        assert_eq!(
            time,
            DateTime {
                year: 2026,
                month: 11,
                day: 23,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
        assert_eq!(time.unix_seconds(), Some(1_795_437_296));
    }

    #[test]
    fn known_dates_and_nonsense() {
        let t = |year, month, day| DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(t(1970, 1, 1).unix_seconds(), Some(0));
        assert_eq!(t(2000, 3, 1).unix_seconds(), Some(951_868_800));
        assert_eq!(t(2024, 2, 29).unix_seconds(), Some(1_709_164_800));
        assert_eq!(t(2024, 13, 1).unix_seconds(), None);
        assert_eq!(t(1969, 12, 31).unix_seconds(), None);
    }
}
