//! Peak RSS and CPU time of a process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use std::process::Command;

use crate::error::{Error, Result};

/// Resource use of a process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss: u64,
    /// The anonymous part of `rss` (`RssAnon`: heap and stacks), bytes; the rest is mostly the
    /// binary's own code and data pages.
    pub rss_anon: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
}

/// Reads the usage of process `pid`; `ticks_per_second` comes from [`clock_ticks`].
pub fn read(pid: u32, ticks_per_second: u64) -> Result<Usage> {
    let status_path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&status_path).map_err(|e| Error::io(format!("read {status_path}"), e))?;
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path).map_err(|e| Error::io(format!("read {stat_path}"), e))?;
    let (peak_rss, rss, rss_anon) = parse_status(&status_path, &status)?;
    let cpu_seconds = parse_stat(&stat_path, &stat, ticks_per_second)?;
    Ok(Usage {
        peak_rss,
        rss,
        rss_anon,
        cpu_seconds,
    })
}

/// `(VmHWM, VmRSS, RssAnon)` in bytes from the text of `/proc/<pid>/status`.
pub fn parse_status(what: &str, text: &str) -> Result<(u64, u64, u64)> {
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| Error::parse(what, format!("no {name} line")))?;
        let kib: u64 = line
            .trim_start_matches(':')
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .map_err(|_| Error::parse(what, format!("{name} is not a number of kB: {line:?}")))?;
        Ok(kib * 1024)
    };
    Ok((field("VmHWM")?, field("VmRSS")?, field("RssAnon")?))
}

/// `utime + stime` in seconds from the text of `/proc/<pid>/stat`.
pub fn parse_stat(what: &str, text: &str, ticks_per_second: u64) -> Result<f64> {
    // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ')'.
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| Error::parse(what, "no ')' after the command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime is field 14 and stime field 15.
    let tick = |i: usize, name: &str| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::parse(what, format!("no numeric {name} field")))
    };
    let ticks = tick(11, "utime")? + tick(12, "stime")?;
    Ok(ticks as f64 / ticks_per_second.max(1) as f64)
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked (the value on every Linux
/// architecture we run on).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_peak_and_current_rss_in_bytes() {
        let text = "Name:\tccm\nVmPeak:\t  900000 kB\nVmHWM:\t   24576 kB\nVmRSS:\t   20480 kB\nRssAnon:\t   12288 kB\nRssFile:\t    8192 kB\n";
        assert_eq!(parse_status("s", text).unwrap(), (24 << 20, 20 << 20, 12 << 20));
        let err = parse_status("/proc/1/status", "Name: x\n").unwrap_err();
        assert!(err.to_string().contains("VmHWM"), "{err}");
    }

    #[test]
    fn stat_sums_user_and_system_ticks_even_with_spaces_in_the_name() {
        let text = "4242 (my ccm (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat("s", text, 100).unwrap(), 3.25);
        assert!(parse_stat("/proc/1/stat", "4242 (ccm) S 1", 100).is_err());
    }

    #[test]
    fn reads_this_process() {
        let u = read(std::process::id(), clock_ticks()).unwrap();
        assert!(
            u.peak_rss >= u.rss && u.rss > u.rss_anon && u.rss_anon > 0,
            "{u:?}"
        );
        assert!(u.cpu_seconds >= 0.0);
    }
}
