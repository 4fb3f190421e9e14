//! `serve --demo` / `serve --reset-demo`: what a service does with its demo data. The
//! demo's credentials are public, so demo data is only allowed where nobody but this
//! machine can reach the service.

/// What `serve` does with the demo data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Demo {
    /// Nothing: no demo data (production).
    #[default]
    Off,
    /// `--demo`: create the demo data that is missing; what exists is left alone.
    Seed,
    /// `--reset-demo`: delete the demo data with everything that hangs off it, then
    /// create it afresh.
    Reset,
}

impl Demo {
    /// `--demo` / `--reset-demo` (which implies `--demo`) as a mode.
    pub fn from_flags(demo: bool, reset_demo: bool) -> Self {
        match (demo, reset_demo) {
            (_, true) => Self::Reset,
            (true, false) => Self::Seed,
            (false, false) => Self::Off,
        }
    }

    /// Whether demo data is seeded at all.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }

    /// Refuses demo data unless `url`, the service's public URL setting named `setting`,
    /// is an `http` or `https` URL on `localhost` or a loopback IP. Always `Ok` when off.
    pub fn permitted(self, setting: &str, url: &str) -> Result<(), String> {
        if !self.is_on() || config::is_local_http_url(url) {
            return Ok(());
        }
        Err(format!(
            "--demo and --reset-demo seed publicly known credentials, so they need {setting} \
             on localhost or a loopback IP (http or https); {setting} is {url:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_only_on_local_urls() {
        assert_eq!(Demo::from_flags(false, false), Demo::Off);
        assert_eq!(Demo::from_flags(true, false), Demo::Seed);
        assert_eq!(Demo::from_flags(false, true), Demo::Reset);
        for mode in [Demo::Seed, Demo::Reset] {
            assert!(mode.permitted("issuer", "http://localhost:8080").is_ok());
            assert!(mode.permitted("issuer", "https://127.0.0.1").is_ok());
            let refused = mode
                .permitted("issuer", "https://id.example.com")
                .unwrap_err();
            assert!(
                refused.contains("issuer is \"https://id.example.com\""),
                "{refused}"
            );
        }
        assert!(
            Demo::Off
                .permitted("issuer", "https://id.example.com")
                .is_ok()
        );
    }
}
