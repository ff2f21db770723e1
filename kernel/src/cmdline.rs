//! The kernel command line: space-separated `key=value` words and bare flags.

/// A parsed view of a command line; borrows the text.
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Wraps `text`; nothing is parsed until asked.
    pub fn new(text: &'a str) -> Self {
        Cmdline { text }
    }

    fn words(&self) -> impl Iterator<Item = &'a str> {
        self.text.split_ascii_whitespace()
    }

    /// The value of the last `key=value` word for `key`: later words
    /// override earlier ones, as boot loaders append to a default line.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.words()
            .filter_map(|word| word.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .last()
    }

    /// The words meant for init (`init.net.ip=10.0.2.15/24`), without
    /// their `init.` prefix, in order.
    pub fn init_options(&self) -> impl Iterator<Item = &'a str> {
        self.words().filter_map(|word| word.strip_prefix("init."))
    }

    /// Init's argument string: its mode, then its options.
    pub fn init_argument(&self, mode: &str) -> alloc::string::String {
        let mut argument = alloc::string::String::from(mode);
        for option in self.init_options() {
            argument.push(' ');
            argument.push_str(option);
        }
        argument
    }

    /// Whether `flag` appears as a bare word.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.words().any(|word| word == flag)
    }

    /// The value for `key` parsed as a number, or an error naming the key.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, &'static str> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| "a numeric command-line value is not a number"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    /// Any text: the mode is read or refused, never a panic; a value found
    /// is one of the line's words, and init's argument is its mode, then
    /// every `init.` word.
    #[test]
    fn fuzz_command_lines() {
        bolero::check!().with_type::<String>().for_each(|text| {
            let line = Cmdline::new(text);
            let _ = Mode::from_cmdline(&line);
            if let Some(value) = line.get("mode") {
                assert!(text.contains(value));
            }
            let _ = line.get_u64("exit.code");
            let argument = line.init_argument("run");
            let expected = line.init_options().count();
            assert!(argument.starts_with("run"));
            assert_eq!(argument.split(' ').count(), 1 + expected, "{text:?}");
        });
    }

    #[test]
    fn finds_values_and_flags() {
        let line = Cmdline::new("  mode=test quiet test.ram_mib=128 mode=run ");
        assert_eq!(line.get("mode"), Some("run"));
        assert_eq!(line.get("test.ram_mib"), Some("128"));
        assert_eq!(line.get("missing"), None);
        assert!(line.has_flag("quiet"));
        assert!(!line.has_flag("mode"));
        assert_eq!(line.get_u64("test.ram_mib"), Ok(Some(128)));
        assert!(line.get_u64("mode").is_err());
    }

    #[test]
    fn init_options_keep_their_order_without_the_prefix() {
        let line = Cmdline::new("mode=run init.net.ip=10.0.2.15/24 quiet init.x initial=1");
        assert_eq!(
            line.init_options().collect::<alloc::vec::Vec<_>>(),
            ["net.ip=10.0.2.15/24", "x"]
        );
        assert_eq!(line.init_argument("run"), "run net.ip=10.0.2.15/24 x");
        assert_eq!(Cmdline::new("mode=test").init_argument("test"), "test");
    }

    #[test]
    fn modes_parse_and_reject_garbage() {
        let mode = |text| Mode::from_cmdline(&Cmdline::new(text));
        assert_eq!(mode(""), Ok(Mode::Run));
        assert_eq!(mode("mode=test"), Ok(Mode::Test));
        assert_eq!(mode("mode=bench"), Ok(Mode::Bench));
        assert_eq!(mode("mode=exit exit.code=7"), Ok(Mode::Exit(7)));
        assert!(mode("mode=exit").is_err());
        assert!(mode("mode=exit exit.code=300").is_err());
        assert!(mode("mode=dance").is_err());
    }
}
