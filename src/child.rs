//! The commands signet starts (serve's `publish-command`, the policy's
//! `parent.submit-command`): each gets a cleaned environment, never
//! signet's own. signet's environment may hold the PKCS#11 PIN
//! (`SIGNET_PKCS11_PIN`, or whatever variable a key URI's
//! `pin-source=env:VAR` names), the HSM's configuration and whatever
//! else the service manager put there; a command needs none of it. So a
//! command gets only the variables on [`PASSED`] (and `LC_*`) that
//! signet has, then the ones its caller sets (`SIGNET_ZONE`, …). A leaf:
//! every stage may use it (ARCHITECTURE.md §1).

use std::ffi::OsStr;

/// The variables a command gets from signet's environment, when signet
/// has them: where programs are, whose home, the locale (also every
/// `LC_*`), the time zone, the place for temporary files.
pub const PASSED: [&str; 8] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"];

/// `PATH` for a command when signet has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Does the variable `name` pass to a command?
pub fn passes(name: &str) -> bool {
    PASSED.contains(&name) || name.starts_with("LC_")
}

/// A command for `program` with the cleaned environment: the variables
/// of signet's that [`passes`] lets through, `PATH` always; the caller
/// adds its own.
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.env_clear();
    let mut path = false;
    for (name, value) in std::env::vars_os() {
        if name.to_str().is_some_and(passes) {
            path |= name == "PATH";
            command.env(name, value);
        }
    }
    if !path {
        command.env("PATH", DEFAULT_PATH);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_variables_pass() {
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "LC_TIME", "TZ", "TMPDIR"] {
            assert!(passes(name), "{name}");
        }
        for name in ["SIGNET_PKCS11_PIN", "SIGNET_PKCS11_MODULE", "SOFTHSM2_CONF", "SIGNET_DB", "LD_PRELOAD", "path"] {
            assert!(!passes(name), "{name}");
        }
    }

    #[test]
    fn the_environment_is_cleared_then_filled_from_the_list() {
        let command = command("true");
        let std = command.as_std();
        assert!(std.get_envs().all(|(name, _)| name.to_str().is_some_and(passes)));
        let path = std.get_envs().find(|(name, _)| *name == "PATH").and_then(|(_, v)| v);
        assert!(path.is_some(), "PATH is always set");
    }
}
