//! This host's side: does the name service switch ask `lanyard`, does PAM load the module.

use std::path::Path;

use super::Step;

/// `passwd:` and `group:` in `path` must both name `lanyard`.
pub fn nsswitch(path: &Path) -> Step {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return Step::fail(
                "nsswitch",
                format!("{}: {e}", path.display()),
                "create nsswitch.conf (see nsswitch.conf(5))",
            );
        }
    };
    let missing: Vec<&str> = ["passwd", "group"].into_iter().filter(|db| !names_lanyard(&text, db)).collect();
    if missing.is_empty() {
        Step::ok("nsswitch", format!("{} names lanyard for passwd and group", path.display()))
    } else {
        Step::fail(
            "nsswitch",
            format!("{} does not name lanyard for {}", path.display(), missing.join(" and ")),
            "add `lanyard` after `files` on the passwd: and group: lines of /etc/nsswitch.conf",
        )
    }
}

/// Whether the `database:` line (comments removed) lists the `lanyard` service.
fn names_lanyard(text: &str, database: &str) -> bool {
    text.lines().map(|l| l.split('#').next().unwrap_or_default()).any(|line| {
        line.split_once(':').is_some_and(|(db, services)| {
            db.trim() == database && services.split_whitespace().any(|word| word == "lanyard")
        })
    })
}

/// Some file in `dir` must load `pam_lanyard.so` (a warning otherwise: logins are optional).
pub fn pam(dir: &Path) -> Step {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Step::warn("pam", format!("{}: {e}", dir.display()), "directory logins need pam_lanyard.so"),
    };
    let mut users: Vec<String> = entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path()).is_ok_and(|text| {
                text.lines().any(|l| l.split('#').next().unwrap_or_default().contains("pam_lanyard.so"))
            })
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    users.sort();
    if users.is_empty() {
        Step::warn(
            "pam",
            format!("no file in {} loads pam_lanyard.so", dir.display()),
            "without pam_lanyard.so in the auth and account stacks, directory users cannot log in",
        )
    } else {
        Step::ok("pam", format!("pam_lanyard.so is in {}", users.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::names_lanyard;

    #[test]
    fn only_an_uncommented_service_word_counts() {
        let text = "passwd: files lanyard\n# group: files lanyard\ngroup: files lanyardx # lanyard\nshadow: lanyard\n";
        assert!(names_lanyard(text, "passwd"));
        assert!(!names_lanyard(text, "group"));
        assert!(!names_lanyard("passwd:files [NOTFOUND=return] lanyard", "group"));
        assert!(names_lanyard("passwd:files [NOTFOUND=return] lanyard", "passwd"));
    }
}
